"""The fake Bot API (`tests.support.fake_telegram`) in a process of its own, for benchmarks.

In a thread of the bench's process the fake's work — checking each message's HTML,
encoding its JSON answer — is charged to the bot, and the two take turns on one GIL.
Telegram's servers are elsewhere; so is this one. Scripted and read the same way as
`FakeTelegram` (the methods the benchmarks use), over a pipe: setup and reading the
record afterwards, never per message. `Call.started` / `ended` are `time.monotonic()`,
one clock for every process on Linux, so spans compare as before.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any, Self


def _serve(conn: Connection) -> None:
    from tests.support.fake_telegram import FakeTelegram

    with FakeTelegram() as fake:
        conn.send((fake.token, fake.base_url))
        while True:
            request = conn.recv()
            if request is None:
                break
            name, args, kwargs = request
            try:
                attr = getattr(fake, name)
                conn.send((True, attr(*args, **kwargs) if callable(attr) else attr))
            except Exception as exc:  # reported to the caller
                conn.send((False, f"{type(exc).__name__}: {exc}"))
    conn.close()


class FakeTelegramProcess:
    """`with FakeTelegramProcess() as fake:` — the fake Bot API served by a child process."""

    def __init__(self) -> None:
        self.token = ""
        self.base_url = ""
        self._conn: Connection | None = None
        self._proc: Any = None

    def __enter__(self) -> Self:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="fake-telegram")
        self._proc.start()
        if not self._conn.poll(30):
            raise RuntimeError("the fake Bot API process did not start within 30 s")
        self.token, self.base_url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.send(None)
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(10)
            self._proc = None

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        assert self._conn is not None, "not started"
        self._conn.send((name, args, kwargs))
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"fake Bot API: {name}: {value}")
        return value

    def set_rate_limit(self, *args: Any, **kwargs: Any) -> None:
        self._call("set_rate_limit", *args, **kwargs)

    def set_star_balance(self, *args: Any, **kwargs: Any) -> None:
        self._call("set_star_balance", *args, **kwargs)

    def calls(self, method: str | None = None) -> list[Any]:
        return list(self._call("calls", method))

    def sent_messages(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return list(self._call("sent_messages", *args, **kwargs))

    @property
    def star_balance(self) -> float:
        return float(self._call("star_balance"))
