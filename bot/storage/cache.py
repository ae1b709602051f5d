"""What a worker may remember of the database between queries: the source states it wrote.

While this worker holds a source's lease no one else writes that row, so the
state it last wrote is the truth and `claim_source` needs no query. The memory
is dropped whenever a transaction rolls back (it may hold rolled-back writes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.storage.sources import SourceState


class SourceStateCache:
    """Source states by id; `complete` once all of them were loaded (single worker)."""

    def __init__(self) -> None:
        self._states: dict[str, SourceState] = {}
        self.complete = False

    def get(self, source_id: str) -> SourceState | None:
        return self._states.get(source_id)

    def put(self, states: Iterable[SourceState]) -> None:
        self._states.update((st.source_id, st) for st in states)

    def put_all(self, states: Iterable[SourceState]) -> None:
        """Everything read from the table; a state written meanwhile (`put`) is newer and stays."""
        for st in states:
            self._states.setdefault(st.source_id, st)
        self.complete = True

    def drop(self, source_id: str) -> None:
        self._states.pop(source_id, None)

    def clear(self) -> None:
        self._states.clear()
        self.complete = False
