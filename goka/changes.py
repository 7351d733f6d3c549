"""Change feeds: the changes applied to the table partitions a process holds, in offset order,
for watchers outside ``goka`` (``viewsvc``'s Watch).

A holder (a processor or a view) keeps one ``ChangeFeed`` per held partition of its table once
``enable()`` was called (by ``local_table()``). Every write to the partition's store goes
through ``ChangeFeed.apply``: the store is written and the changes are published under one
lock, so a watcher that reads the feed's ``position`` knows exactly which applied changes it
has been told about. Each feed keeps the last ``history`` changes, so a watcher resuming from
an offset (after its stream broke, on another replica) gets every change since, once.

Changes come from the records themselves: recovery and standbys publish every record they
read (with its offset, intermediate values of a key included), the active owner the records
of its changelog (one per key and batch, as it writes them).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol

from goka.errors import ConfigError, HistoryUnavailable
from goka.storage import Storage

__all__ = ["Change", "ChangeFeed", "FeedListener", "TableChanges", "consecutive_changes"]

_logger = logging.getLogger("goka.table")

Change = tuple[bytes, bytes | None, int]
"""One change: key, value (None: deleted) and its table-topic offset."""

HISTORY = 10_000
"""Changes each partition's feed keeps for watchers that resume (default)."""


class FeedListener(Protocol):
    """A watcher of a feed. Its methods run in the thread that applies the changes, under the
    feed's lock: they must only hand the changes over (and never call the feed)."""

    def changes(self, changes: Sequence[Change], position: int) -> None:
        """``changes`` (offset order) were applied; every change before ``position`` is now
        published."""

    def ended(self, reason: str) -> None:
        """The feed ends: the partition is no longer held here, or its changes are not
        known; resume elsewhere from the last offsets seen."""


class ChangeFeed:
    """The changes of one table partition, from ``start`` (the store's offset when the feed
    began)."""

    def __init__(self, partition: int, start: int, history: int) -> None:
        self.partition = partition
        self._lock = threading.Lock()
        self._position = start
        self._first = start
        """History is complete from here: every change at or after it is kept."""
        self._history: deque[Change] = deque()
        self._limit = history
        self._listeners: list[FeedListener] = []
        self._closed: str | None = None

    @property
    def position(self) -> int:
        """The offset after the last applied change: every change before it is published."""
        with self._lock:
            return self._position

    @property
    def first(self) -> int:
        """The first offset whose changes the feed still has."""
        with self._lock:
            return self._first

    def apply(
        self,
        store: Storage,
        writes: Mapping[bytes, bytes | None],
        next_offset: int,
        changes: Sequence[Change] | None,
    ) -> None:
        """Write ``writes`` and ``next_offset`` to ``store`` and publish ``changes`` (the
        records they come from; None: not known, which ends the watchers)."""
        with self._lock:
            store.apply(writes, next_offset)
            if changes is None:
                self._forget(
                    f"the changes of partition {self.partition} before offset {next_offset} "
                    "are not known here"
                )
                self._position = self._first = next_offset
                return
            fresh = [c for c in changes if c[2] >= self._position]
            self._position = max(self._position, next_offset)
            history, limit = self._history, self._limit
            history.extend(fresh)
            while len(history) > limit:
                self._first = history.popleft()[2] + 1
            for listener in self._listeners:
                listener.changes(fresh, self._position)

    def resync(self, start: int) -> None:
        """The store's offset is ``start`` (when a feed is reused): if that is not where the
        feed is (the store was wiped and is replayed), its history and watchers end."""
        with self._lock:
            if start != self._position:
                self._forget(
                    f"partition {self.partition}'s store was reset to offset {start} "
                    f"(its feed was at {self._position})"
                )
                self._position = self._first = start

    def subscribe(self, listener: FeedListener, from_offset: int | None) -> int:
        """Add ``listener`` and tell it at once the changes since ``from_offset`` (None: from
        now), before anything applied later; returns the position it starts from.

        Raises HistoryUnavailable if the feed no longer has changes since ``from_offset``, or
        has ended.
        """
        with self._lock:
            if self._closed is not None:
                raise HistoryUnavailable(self.partition, self._first, self._closed)
            backlog: list[Change] = []
            if from_offset is not None and from_offset < self._position:
                if from_offset < self._first:
                    raise HistoryUnavailable(
                        self.partition,
                        self._first,
                        f"partition {self.partition} has changes from offset {self._first} "
                        f"here, not from {from_offset}",
                    )
                for change in reversed(self._history):
                    if change[2] < from_offset:
                        break
                    backlog.append(change)
                backlog.reverse()
            if backlog:
                listener.changes(backlog, self._position)
            self._listeners.append(listener)
            return self._position

    def unsubscribe(self, listener: FeedListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def close(self, reason: str) -> None:
        """End the feed: its listeners are told, and it takes no new ones."""
        with self._lock:
            self._forget(reason)
            self._closed = reason

    def _forget(self, reason: str) -> None:
        listeners, self._listeners = self._listeners, []
        self._history.clear()
        for listener in listeners:
            listener.ended(reason)


class TableChanges:
    """The feeds of one table's held partitions; created empty and disabled, so that a holder
    nobody watches publishes nothing."""

    def __init__(self, history: int = HISTORY) -> None:
        if history < 1:
            raise ConfigError(f"the change history must keep at least 1 change, got {history}")
        self._history = history
        self._lock = threading.Lock()
        self._feeds: dict[int, ChangeFeed] = {}
        self.enabled = False

    def enable(self) -> None:
        """Keep feeds of the partitions opened from now on."""
        self.enabled = True

    def open(self, partition: int, store: Storage) -> ChangeFeed | None:
        """The feed of ``partition`` whose store is ``store`` (None while disabled)."""
        if not self.enabled:
            return None
        with self._lock:
            feed = self._feeds.get(partition)
            if feed is None:
                feed = self._feeds[partition] = ChangeFeed(
                    partition, store.offset() or 0, self._history
                )
            return feed

    def get(self, partition: int) -> ChangeFeed | None:
        with self._lock:
            return self._feeds.get(partition)

    def close(self, partition: int, reason: str) -> None:
        with self._lock:
            feed = self._feeds.pop(partition, None)
        if feed is not None:
            feed.close(reason)


def consecutive_changes(
    partition: int,
    writes: Mapping[bytes, bytes | None],
    first: int | None,
    last: int,
) -> list[Change] | None:
    """The changes of a batch one producer wrote to a table partition nobody else writes, in
    the order produced: their offsets are ``first..last``, one per write. None if the offsets
    do not add up (something else wrote in between), so that watchers are not told wrong
    offsets."""
    if first is None or last - first + 1 != len(writes):
        _logger.warning(
            "partition %d: the batch's %d changelog records have offsets %s..%d; watchers of "
            "the partition resume elsewhere",
            partition, len(writes), first, last,
        )  # fmt: skip
        return None
    return [(key, value, first + i) for i, (key, value) in enumerate(writes.items())]
