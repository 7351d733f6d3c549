"""The storage interface: one store per table partition.

A store holds encoded rows (key bytes -> value bytes) and the table-topic offset its rows
reflect. ``apply`` writes a batch of rows and the new offset atomically, so the store always
equals a prefix of the table partition and knows which one (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Storage", "StorageFactory", "StoreOrigin", "key_range", "prefix_end"]


@dataclass(frozen=True)
class StoreOrigin:
    """Which topic a store copies, and when it was last known to match it; lets recovery
    tell a store that no longer matches its topic (see ``goka._stale_stores``)."""

    topic_id: str | None
    """The id of the table topic the rows came from (None: not known)."""
    synced_at: float | None
    """Seconds since the epoch when the store last applied records or was caught up (None:
    never): every record after its offset was written later."""


class Storage(Protocol):
    """Rows of one table partition plus the offset they reflect."""

    def get(self, key: bytes) -> bytes | None:
        """The stored value of ``key``, or None."""
        ...

    def offset(self) -> int | None:
        """The next table-topic offset to apply (last applied + 1), None if nothing applied."""
        ...

    def read(self, keys: Sequence[bytes]) -> tuple[list[bytes | None], int | None]:
        """The values of ``keys`` (None if absent) and ``offset()``, from one consistent
        snapshot, so served values come with the offset they reflect."""
        ...

    def apply(self, writes: Mapping[bytes, bytes | None], next_offset: int) -> None:
        """Apply ``writes`` (None deletes) and set the offset, in one atomic step; the
        origin's ``synced_at`` becomes now."""
        ...

    def origin(self) -> StoreOrigin:
        """What the store recorded about its topic (all None for a new store)."""
        ...

    def record_origin(self, *, topic_id: str | None = None, synced_at: float | None = None) -> None:
        """Record the topic's id or the time the store was in sync (None: keep as it is)."""
        ...

    def wipe(self) -> None:
        """Remove every row, the offset and the origin: the store is new again."""
        ...

    def items(
        self, start: bytes | None = None, end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Rows with ``start <= key < end`` (either bound optional), in byte order of keys."""
        ...

    def count(self) -> int:
        """Number of rows."""
        ...

    def close(self) -> None:
        """Release resources; the data stays where it is (for LMDB: on disk)."""
        ...


class StorageFactory(Protocol):
    """Opens the store of one partition of one table."""

    def open(self, table: str, partition: int) -> Storage: ...


def key_range(
    prefix: str | None, start: str | None, end: str | None
) -> tuple[bytes | None, bytes | None]:
    """The byte range ``[low, high)`` of keys with ``prefix`` within ``[start, end)``."""
    low = start.encode() if start is not None else None
    high = end.encode() if end is not None else None
    if prefix is not None:
        raw_prefix = prefix.encode()
        low = raw_prefix if low is None else max(low, raw_prefix)
        limit = prefix_end(raw_prefix)
        if limit is not None:
            high = limit if high is None else min(high, limit)
    return low, high


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
