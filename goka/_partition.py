"""The processor's state for one assigned partition: stores, write buffer, value cache,
offsets, counters."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from goka.changes import ChangeFeed
from goka.storage import Storage

__all__ = ["CACHEABLE", "PartitionState", "PartitionTask"]

PartitionState = Literal["recovering", "running", "standby"]

CACHEABLE = frozenset({int, float, str, bytes, bool, type(None)})
"""The value types the value cache keeps: immutable, so a callback that changes a value it
read without calling set_value cannot make the cache differ from the store."""


@dataclass(eq=False)
class PartitionTask:
    partition: int
    store: Storage | None
    """The group table's store of this partition (None: the group has no table)."""
    join_stores: dict[str, Storage] = field(default_factory=dict)
    feed: ChangeFeed | None = None
    """Where the table writes it stores are published (None: nobody watches)."""
    state: PartitionState = "recovering"
    pending: set[tuple[str, int]] = field(default_factory=set)
    """Table partitions still replaying before this partition may process."""
    buffer: dict[bytes, bytes | None] = field(default_factory=dict)
    """Table writes of the current batch: raw key -> encoded value (None: deleted)."""
    inflight: dict[bytes, bytes | None] = field(default_factory=dict)
    """The writes of the sealed batch, stored once its messages are acknowledged."""
    cache: dict[bytes, Any] | None = None
    """Decoded values of the group table (None: no such key), of CACHEABLE types, oldest
    first; None: no cache. They are the values as processed: written by ``set_value``
    before the batch is stored, which is safe as a batch that is not stored either stops
    the processor, and this task with it, or is dropped with this cache. Only the
    processor writes its table partition while it runs, so what was read from the store
    stays true until the partition is released."""
    next_input: dict[str, int] = field(default_factory=dict)
    """Per input topic, the offset after the last message whose results are stored."""
    start: dict[str, int] = field(default_factory=dict)
    """Per input topic, the offset of the first message processed since the assignment:
    where processing resumes while nothing of the topic is stored yet."""
    input_high: dict[str, int] = field(default_factory=dict)
    """Per input topic, the high watermark last seen by the consumer."""
    rewind: dict[str, int] = field(default_factory=dict)
    """Per input topic, the first offset fetched while the partition was not running."""
    deferred: dict[str, dict[int, int]] = field(default_factory=dict)
    """Per input topic, offset -> completions of ``ctx.defer_commit()`` not yet called."""
    deferred_lock: threading.Lock = field(default_factory=threading.Lock)
    recovered_records: int = 0
    recovery_started: float = field(default_factory=time.monotonic)
    recovery_seconds: float | None = None
    messages_in: int = 0
    bytes_in: int = 0
    batch_messages: int = 0
    batch_bytes: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    skipped: int = 0
    dead_lettered: int = 0

    def stored(self, cache_limit: int) -> None:
        """The inflight writes have been applied to the store; drop the oldest cache entries
        beyond ``cache_limit``."""
        self.inflight = {}  # not cleared: the store was handed it
        cache = self.cache
        if cache is not None and len(cache) > cache_limit:
            for key in list(itertools.islice(cache, len(cache) - cache_limit)):
                del cache[key]

    def mark_running(self) -> None:
        self.state = "running"
        self.recovery_seconds = time.monotonic() - self.recovery_started

    def defer(self, topic: str, offset: int) -> None:
        with self.deferred_lock:
            pending = self.deferred.setdefault(topic, {})
            pending[offset] = pending.get(offset, 0) + 1

    def complete(self, topic: str, offset: int) -> None:
        with self.deferred_lock:
            pending = self.deferred.get(topic, {})
            left = pending.get(offset, 0) - 1
            if left > 0:
                pending[offset] = left
            else:
                pending.pop(offset, None)

    def resume_offsets(self) -> dict[str, int]:
        """Per input topic, where processing resumes when the batches not stored yet are
        dropped: the next stored offset, or the first processed one."""
        return {**self.start, **self.next_input}

    def commit_offsets(self) -> dict[str, int]:
        """Per input topic, the offset that may be committed: the next stored offset, held
        back to the first message with uncompleted ``defer_commit()`` calls."""
        with self.deferred_lock:
            offsets = dict(self.next_input)
            for topic, pending in self.deferred.items():
                if pending and topic in offsets:
                    offsets[topic] = min(offsets[topic], min(pending))
        return offsets

    def stats(self) -> dict[str, Any]:
        table_offset = self.store.offset() if self.store is not None else None
        return {
            "state": self.state,
            "input": {
                topic: {
                    "offset": offset,
                    "high_watermark": self.input_high.get(topic),
                    "lag": max(0, self.input_high[topic] - offset)
                    if topic in self.input_high
                    else None,
                }
                for topic, offset in self.next_input.items()
            },
            "table": {  # the owner writes the table: once running, nothing is behind
                "offset": table_offset,
                "high_watermark": table_offset,
                "lag": 0 if self.state == "running" else None,
            },
            "joins": {table: store.offset() for table, store in self.join_stores.items()},
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "messages_out": self.messages_out,
            "bytes_out": self.bytes_out,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "recovered_records": self.recovered_records,
            "recovery_seconds": self.recovery_seconds,
        }
