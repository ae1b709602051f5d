"""Logging: one event per line, text or JSON, with secrets redacted.

Tokens reach URLs (Telegram puts the token in the path), so every record is
passed through a filter that replaces each known secret before it is written.
This happens once, on the handler `setup_logging` installs, for every logger
of the process (ours and the libraries'); nothing else attaches filters.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

REDACTED = "***"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def _clean(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = self._clean(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info:
            record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def handled_noise(record: logging.LogRecord) -> bool:
    """Drop library errors for what Readout handles itself: PTB's AIORateLimiter logs
    every 429 as an error with a traceback; the outbox retries those."""
    return not (
        record.name.startswith("telegram.ext") and str(record.msg).startswith("Rate limit hit after maximum of")
    )


def log_filters(secrets: Iterable[str]) -> list[logging.Filter | Callable[[logging.LogRecord], bool]]:
    """The filters every handler gets: secrets redacted, handled noise dropped."""
    return [handled_noise, RedactSecrets(secrets)]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text or record.exc_info:
            payload["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(*, level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once for the process; logs go to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    for f in log_filters(secrets):
        handler.addFilter(f)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; Telegram URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("aiosqlite").setLevel(logging.INFO)  # DEBUG logs every statement
