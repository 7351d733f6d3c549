"""In-memory storage: a dict per partition; state is lost when the process ends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from goka.storage.base import Storage, StoreOrigin

__all__ = ["MemoryStorage"]


class _MemoryStore:
    def __init__(self) -> None:
        self._rows: dict[bytes, bytes] = {}
        self._offset: int | None = None
        self._origin = StoreOrigin(None, None)
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        return self._rows.get(key)

    def offset(self) -> int | None:
        return self._offset

    def read(self, keys: Sequence[bytes]) -> tuple[list[bytes | None], int | None]:
        with self._lock:
            return [self._rows.get(key) for key in keys], self._offset

    def apply(self, writes: Mapping[bytes, bytes | None], next_offset: int) -> None:
        with self._lock:
            for key, value in writes.items():
                if value is None:
                    self._rows.pop(key, None)
                else:
                    self._rows[key] = value
            self._offset = next_offset
            self._origin = StoreOrigin(self._origin.topic_id, time.time())

    def origin(self) -> StoreOrigin:
        return self._origin

    def record_origin(self, *, topic_id: str | None = None, synced_at: float | None = None) -> None:
        with self._lock:
            old = self._origin
            self._origin = StoreOrigin(topic_id or old.topic_id, synced_at or old.synced_at)

    def wipe(self) -> None:
        with self._lock:
            self._rows.clear()
            self._offset = None
            self._origin = StoreOrigin(None, None)

    def items(
        self, start: bytes | None = None, end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            keys = sorted(
                k for k in self._rows if (start is None or k >= start) and (end is None or k < end)
            )
            rows = [(k, self._rows[k]) for k in keys]
        return iter(rows)

    def count(self) -> int:
        return len(self._rows)

    def close(self) -> None:
        """Nothing to release; the rows stay for the next open() of this factory."""


class MemoryStorage:
    """A storage factory keeping every partition in memory.

    Reopening a partition of the same factory returns its earlier state, as reopening an
    LMDB directory would.
    """

    def __init__(self) -> None:
        self._stores: dict[tuple[str, int], _MemoryStore] = {}
        self._lock = threading.Lock()

    def open(self, table: str, partition: int) -> Storage:
        with self._lock:
            return self._stores.setdefault((table, partition), _MemoryStore())
