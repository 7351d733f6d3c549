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

    def not_running(self, max_lag: int | None = None) -> str | None:
        """Why not every held partition of every table runs within ``max_lag`` offsets of
        the end of its table partition (readiness); None when they all do. The reasons hold
        no figure that changes from one check to the next, so that a change of reason is
        worth a log line."""
        tables = self._current()
        if any(table.meta is None for table in self._tables):
            return "the partition count of a table is not known yet"
        for name, held in tables.items():
            for h in held.partitions.values():
                if h.state != "running":
                    return f"partition {h.partition} of {name} is {h.state}"
                if max_lag is not None and h.lag < 0:
                    return f"the lag of partition {h.partition} of {name} is unknown"
                if max_lag is not None and h.lag > max_lag:
                    return f"partition {h.partition} of {name} is over {max_lag} offsets behind"
        return None
