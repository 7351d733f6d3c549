"""The tables this node holds partitions of, with their held partitions cached briefly so
that a busy server does not rebuild them on every call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

from goka.local_table import HeldPartition, LocalTable, TableMeta

__all__ = ["HeldTable", "LocalTables"]

_FRESH_FOR = 0.02
"""Seconds a snapshot of held partitions is reused; reads check the store's own offset."""


class HeldTable(NamedTuple):
    """A local table, its meta and the partitions it held when the snapshot was taken."""

    table: LocalTable
    meta: TableMeta
    partitions: dict[int, HeldPartition]


class LocalTables:
    def __init__(self, tables: Iterable[LocalTable] = ()) -> None:
        self._tables = list(tables)
        self._lock = threading.Lock()
        self._snapshot: dict[str, HeldTable] = {}
        self._taken = -1.0

    def _current(self) -> dict[str, HeldTable]:
        now = time.monotonic()
        if now - self._taken < _FRESH_FOR:
            return self._snapshot
        with self._lock:
            if now - self._taken >= _FRESH_FOR:
                snapshot = {}
                for table in self._tables:
                    meta = table.meta
                    if meta is not None:
                        snapshot[meta.name] = HeldTable(table, meta, table.held())
                self._snapshot, self._taken = snapshot, time.monotonic()
        return self._snapshot

    def get(self, name: str) -> HeldTable | None:
        """The local table ``name``; None if not held here."""
        return self._current().get(name)

    def held(self, name: str, partition: int) -> HeldPartition | None:
        """Partition ``partition`` of the local table ``name``; None if not held here."""
        found = self._current().get(name)
        return found.partitions.get(partition) if found is not None else None

    def metas(self) -> list[TableMeta]:
        return [held.meta for held in self._current().values()]

    def unreachable_for(self) -> float:
        """The longest any holder of these tables has had no broker connection up."""
        return max((table.unreachable_for() for table in self._tables), default=0.0)

    def all_running(self, max_lag: int | None = None) -> bool:
        """Every held partition of every table runs, within ``max_lag`` offsets of the end
        of its table partition if given (readiness)."""
        tables = list(self._current().values())
        if any(table.meta is None for table in self._tables):
            return False
        return all(
            h.state == "running" and (max_lag is None or 0 <= h.lag <= max_lag)
            for held in tables
            for h in held.partitions.values()
        )
