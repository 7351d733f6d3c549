"""The processor's state for one assigned partition: store, write buffer, offsets, counters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from goka.storage import Storage

__all__ = ["PartitionStats", "PartitionTask"]

PartitionState = Literal["recovering", "running"]


@dataclass
class PartitionStats:
    """A snapshot of one partition of a processor (see ``Processor.stats()``)."""

    partition: int
    state: PartitionState
    input_offsets: dict[str, int]
    """Per input topic, the next offset to process (committed once its batch is stored)."""
    table_offset: int | None
    """The next table-topic offset the local store would apply."""
    recovered_records: int
    """Table records replayed into the local store since the partition was assigned."""
    recovery_seconds: float | None
    messages_in: int
    bytes_in: int


@dataclass(eq=False)
class PartitionTask:
    partition: int
    store: Storage | None
    state: PartitionState = "recovering"
    buffer: dict[bytes, tuple[Any, bytes | None]] = field(default_factory=dict)
    """Table writes of the current batch: raw key -> (decoded value, encoded value or None)."""
    next_input: dict[str, int] = field(default_factory=dict)
    """Per input topic, the offset after the last message whose results are stored."""
    rewind: dict[str, int] = field(default_factory=dict)
    """Per input topic, the first offset fetched while the partition was not running."""
    recovered_records: int = 0
    recovery_started: float = field(default_factory=time.monotonic)
    recovery_seconds: float | None = None
    messages_in: int = 0
    bytes_in: int = 0

    def mark_running(self) -> None:
        self.state = "running"
        self.recovery_seconds = time.monotonic() - self.recovery_started

    def stats(self) -> PartitionStats:
        return PartitionStats(
            partition=self.partition,
            state=self.state,
            input_offsets=dict(self.next_input),
            table_offset=self.store.offset() if self.store is not None else None,
            recovered_records=self.recovered_records,
            recovery_seconds=self.recovery_seconds,
            messages_in=self.messages_in,
            bytes_in=self.bytes_in,
        )
