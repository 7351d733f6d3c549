"""Watching a table in a thread while the test does other things, and what the table topic
says the watch should have received."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.support.topics import read_topic
from viewsvc.client import Change, Client, WatchIterator

__all__ = ["Watcher", "topic_changes"]


class Watcher:
    """Runs ``client.watch(table, **kwargs)`` in a thread, keeping every change."""

    def __init__(self, client: Client, table: str, **kwargs: Any) -> None:
        self.changes: list[Change] = []
        self.error: BaseException | None = None
        self.stream: WatchIterator = client.watch(table, **kwargs)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for change in self.stream:
                with self._lock:
                    self.changes.append(change)
        except BaseException as exc:  # the test reports it
            self.error = exc

    def received(self) -> list[Change]:
        with self._lock:
            return list(self.changes)

    def by_partition(self) -> dict[int, list[tuple[bytes, bytes | None, int]]]:
        """The changes (not snapshot rows) per partition, as (key, value, offset)."""
        found: dict[int, list[tuple[bytes, bytes | None, int]]] = {}
        for change in self.received():
            if not change.snapshot:
                found.setdefault(change.partition, []).append(
                    (change.key, change.value, change.offset)
                )
        return found

    def close(self) -> None:
        self.stream.close()
        self._thread.join(10)


def topic_changes(
    brokers: str,
    table: str,
    partitions: int,
    starts: dict[int, int],
    match: Callable[[bytes], bool],
) -> dict[int, list[tuple[bytes, bytes | None, int]]]:
    """Per partition, the table topic's records of the matching keys from ``starts``."""
    found: dict[int, list[tuple[bytes, bytes | None, int]]] = {}
    for msg in read_topic(brokers, table, partitions, isolation="read_committed"):
        partition, offset, key = msg.partition(), msg.offset(), msg.key()
        if key is not None and offset >= starts.get(partition, 0) and match(key):
            found.setdefault(partition, []).append((key, msg.value(), offset))
    return found
