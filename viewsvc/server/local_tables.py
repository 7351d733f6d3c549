"""The tables this node holds partitions of, with their held partitions cached briefly so
that a busy server does not rebuild them on every call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from goka.local_table import HeldPartition, LocalTable, TableMeta

__all__ = ["LocalTables"]

_FRESH_FOR = 0.02
"""Seconds a snapshot of held partitions is reused; reads check the store's own offset."""


class LocalTables:
    def __init__(self, tables: Iterable[LocalTable] = ()) -> None:
        self._tables = list(tables)
        self._lock = threading.Lock()
        self._snapshot: dict[str, tuple[LocalTable, TableMeta, dict[int, HeldPartition]]] = {}
        self._taken = -1.0

    def _current(self) -> dict[str, tuple[LocalTable, TableMeta, dict[int, HeldPartition]]]:
        now = time.monotonic()
        if now - self._taken < _FRESH_FOR:
            return self._snapshot
        with self._lock:
            if now - self._taken >= _FRESH_FOR:
                snapshot = {}
                for table in self._tables:
                    meta = table.meta
                    if meta is not None:
                        snapshot[meta.name] = (table, meta, table.held())
                self._snapshot, self._taken = snapshot, time.monotonic()
        return self._snapshot

    def get(self, name: str) -> tuple[LocalTable, TableMeta, dict[int, HeldPartition]] | None:
        """The local table ``name``, its meta and held partitions; None if not held here."""
        return self._current().get(name)

    def metas(self) -> list[TableMeta]:
        return [meta for _, meta, _ in self._current().values()]

    def all_running(self, max_lag: int | None = None) -> bool:
        """Every held partition of every table runs, within ``max_lag`` offsets of the end
        of its table partition if given (readiness)."""
        tables = list(self._current().values())
        if any(table.meta is None for table in self._tables):
            return False
        return all(
            h.state == "running" and (max_lag is None or 0 <= h.lag <= max_lag)
            for _, _, held in tables
            for h in held.values()
        )
