"""Recovery: replays table-topic partitions into their local stores, one transaction per
partition and read.

Used by processors to recover their own and joined table partitions before processing, to
keep joined and hot-standby partitions following, and by views.

A partition has caught up when a partition-EOF event says so. librdkafka sends one only after
a fetch at the end of the partition returns nothing, so for partitions that others keep
writing (joined tables, views, standbys) it may never come, on Kafka as on any broker; there,
reaching the high watermark queried when the partition was added counts too. On reaching it
the reader goes on once more to the end the latest fetch response reported: on Kafka that is
the queried end unless records arrived meanwhile (the copy is then fresher), and the dev
broker (Tansu), whose ListOffsets answer is the base offset of the last batch + 1, would
otherwise be caught up one batch short. A processor recovering its own table partition, which
nobody else writes, waits for the EOF event only: starting on a store missing a batch would
lose its updates, so it does not rely on any broker's ListOffsets answer.

Table topics written in transactions (exactly-once processors) hold transaction markers,
control records librdkafka reads but does not hand out; after a transaction the offset past
the last record is one short of the partition's end. An EOF event carries the end, which the
store then keeps as its offset, so a copy that has everything has no lag. Every reader uses
``isolation.level=read_committed`` (librdkafka's default): records of aborted transactions
are never applied, and an open transaction holds the end (the last stable offset) back until
it is committed or aborted. A processor's own table partition is caught up only at its high
watermark, past any such transaction (one a killed previous owner left open may have the
next owner's committed records after it; see ``RecoveryReader._open_transactions``).

Before reading on from a store's offset, the store is checked against its topic (see
``goka._stale_stores``): one that no longer matches is wiped and replayed from the start.

The reader also tells whether the brokers can be reached (``reachability``, see
``goka._reachability``): while none is, the copies it keeps may be behind without knowing by
how much, so their lag is unknown, not 0.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from goka._consume import consume_available
from goka._kafka_errors import end_offsets, high_watermark, raise_if_permanent
from goka._reachability import Reachability
from goka._stale_stores import TopicFactsCache, mismatch
from goka.changes import Change, ChangeFeed
from goka.storage import Storage

__all__ = ["ReadResult", "RecoveryReader", "TopicPartitionKey"]

_logger = logging.getLogger("goka.table")

TopicPartitionKey = tuple[str, int]

_END_TIMEOUT = 5.0
"""Seconds an end-offset query of the exact-end check may take (it is asked again)."""


@dataclass
class ReadResult:
    caught_up: set[TopicPartitionKey] = field(default_factory=set)
    """Partitions that reached the end of their topic in this read."""
    records: dict[TopicPartitionKey, int] = field(default_factory=dict)
    """Records read per partition in this read (before coalescing by key)."""


class RecoveryReader:
    def __init__(self, config: dict[str, Any]) -> None:
        self.reachability = Reachability()
        consumer_config = {
            # an EOF event needs a fetch at the end to come back empty, which the broker
            # holds for fetch.wait.max.ms (librdkafka: 500): shorter, so a recovery ends
            # soon after its last record and followers see new records sooner
            "fetch.wait.max.ms": 100,
            **config,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            **self.reachability.client_config(),
            # a store's offset outside its partition is reported, not silently reset:
            # the store no longer matches the topic (see goka._stale_stores)
            "auto.offset.reset": "error",
        }
        self._consumer = Consumer(consumer_config)
        self.reachability.attach(self._consumer, consumer_config)
        self._stores: dict[TopicPartitionKey, Storage] = {}
        self._feeds: dict[TopicPartitionKey, ChangeFeed] = {}
        """The partitions whose records are published, and their feeds."""
        self.skipped_records = 0
        self._targets: dict[TopicPartitionKey, int] = {}
        """The high watermark of each partition when it was added; reaching it catches up."""
        self._rechecked: set[TopicPartitionKey] = set()
        """Partitions whose target was moved to the end fetch responses report."""
        self._exact: set[TopicPartitionKey] = set()
        """Partitions added with ``exact_end``."""
        self._held_open: dict[TopicPartitionKey, float] = {}
        """Exact-end partitions at an end an open transaction holds back, with when to look
        again whether it ended (see ``_open_transactions``)."""
        self._watermark_timeout = 30.0
        self._known_topics: set[str] = set()
        self._facts = TopicFactsCache(config, self._watermark_timeout)
        self._caught_up: set[TopicPartitionKey] = set()
        """Followed partitions that reached the end of their topic and are still followed."""
        self.wiped: dict[TopicPartitionKey, int] = {}
        """Stores wiped because they no longer matched their topic, per partition."""
        self.high_watermarks: dict[TopicPartitionKey, int] = {}
        """The end of each followed partition as last seen (from fetches and EOF events)."""

    @property
    def partitions(self) -> set[TopicPartitionKey]:
        return set(self._stores)

    def __contains__(self, key: TopicPartitionKey) -> bool:
        return key in self._stores

    def add(
        self,
        topic: str,
        partition: int,
        store: Storage,
        *,
        exact_end: bool = False,
        feed: ChangeFeed | None = None,
    ) -> None:
        """Start reading ``partition`` of ``topic`` from the offset its store has applied.

        Adding a partition that is already read restarts it from the store's offset, so a
        caught-up event follows (EOF events are only sent once per reaching the end). With
        ``exact_end``, only an EOF event reports it caught up (see the module docstring).
        With a ``feed``, every record applied is published to it.
        """
        self.remove(topic, partition)
        if topic not in self._known_topics:
            # librdkafka learns a partition's leader from metadata; one it has not seen yet
            # waits for the next refresh (about a second) before its first fetch
            try:
                self._consumer.list_topics(topic, self._watermark_timeout)
                self._known_topics.add(topic)
            except KafkaException as exc:  # only the head start is lost
                _logger.debug("metadata of table topic %s not fetched: %s", topic, exc)
        self._check_store(topic, partition, store)
        start = store.offset()
        self._stores[topic, partition] = store
        if feed is not None:
            feed.resync(start or 0)
            self._feeds[topic, partition] = feed
        position = OFFSET_BEGINNING if start is None else start
        self._consumer.incremental_assign([TopicPartition(topic, partition, position)])
        if exact_end:
            self._exact.add((topic, partition))
            return
        self._targets[topic, partition] = high_watermark(
            self._consumer, TopicPartition(topic, partition), self._watermark_timeout
        )

    def _check_store(self, topic: str, partition: int, store: Storage) -> None:
        """Wipe ``store`` if it no longer matches the topic; record the topic's id with it."""
        if store.offset() is not None:
            facts = self._facts.get(topic)
            reason = mismatch(store, facts)
            if reason is not None and facts.topic_id is not None:
                # the cached id may be the one of a topic recreated since: ask once more
                self._facts.forget(topic)
                facts = self._facts.get(topic)
                reason = mismatch(store, facts)
            if reason is not None:
                self._wipe(topic, partition, store, reason)
        topic_id = self._facts.get(topic).topic_id
        if topic_id is not None:
            store.record_origin(topic_id=topic_id)

    def _wipe(self, topic: str, partition: int, store: Storage, reason: str) -> None:
        _logger.warning(
            "table %s partition %d: the local store does not match the topic (%s); it is "
            "wiped and replayed from the start",
            topic,
            partition,
            reason,
        )
        store.wipe()
        self.wiped[topic, partition] = self.wiped.get((topic, partition), 0) + 1

    def _out_of_range(self, where: TopicPartitionKey, error: KafkaError) -> None:
        """The broker has no record at the store's offset: the topic was truncated, or
        recreated with fewer records. The store is wiped and read again from the start."""
        store = self._stores[where]
        self._wipe(*where, store, f"its offset {store.offset()} is outside the partition: "
                   f"{error.str()}")  # fmt: skip
        self._consumer.incremental_unassign([TopicPartition(*where)])
        self._consumer.incremental_assign([TopicPartition(*where, OFFSET_BEGINNING)])

    def remove(self, topic: str, partition: int) -> None:
        store = self._stores.get((topic, partition))
        if store is not None and (topic, partition) in self._caught_up:
            store.record_origin(synced_at=time.time())  # it was in sync until now
        self._caught_up.discard((topic, partition))
        self.high_watermarks.pop((topic, partition), None)
        self._exact.discard((topic, partition))
        self._held_open.pop((topic, partition), None)
        self._targets.pop((topic, partition), None)
        self._rechecked.discard((topic, partition))
        self._feeds.pop((topic, partition), None)
        if self._stores.pop((topic, partition), None) is not None:
            self._consumer.incremental_unassign([TopicPartition(topic, partition)])

    def serve(self) -> None:
        """Serves the clients' events without reading: their statistics (reachability, and
        the broker lists watched by goka._rebootstrap) come only with polls."""
        self._consumer.poll(0)
        self._facts.serve()

    def read(self, max_records: int, timeout: float) -> ReadResult:
        result = ReadResult()
        if not self._stores:
            self.serve()
            return result
        self._facts.serve()
        writes: dict[TopicPartitionKey, dict[bytes, bytes | None]] = {}
        last: dict[TopicPartitionKey, int] = {}
        stores, records = self._stores, result.records
        messages = consume_available(self._consumer, max_records, timeout)
        for msg in messages:  # the hot loop of recovery: no allocation or lookup it can spare
            where = (msg.topic(), msg.partition())
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if where in stores:
                        result.caught_up.add(where)
                        # the end may lie past the last record, after a transaction's
                        # marker: the store has applied everything up to it
                        end = msg.offset()
                        if end > max(last.get(where, -1) + 1, stores[where].offset() or 0):
                            last[where] = end - 1
                    continue
                if error.code() == KafkaError._AUTO_OFFSET_RESET and where in stores:
                    self._out_of_range(where, error)
                    continue
                raise_if_permanent(error, f"reading table topic {where[0]!r}", msg, self._consumer)
                continue
            if where not in stores:
                continue  # removed meanwhile; its store has been handed back
            key = msg.key()
            if key is None:
                self.skipped_records += 1
                _logger.warning(
                    "table %s partition %d offset %d has no key; ignored", *where, msg.offset()
                )
            else:
                partition_writes = writes.get(where)
                if partition_writes is None:
                    partition_writes = writes[where] = {}
                partition_writes[key] = msg.value()
            last[where] = msg.offset()
            records[where] = records.get(where, 0) + 1
        feeds = self._feeds
        changes = _changes(messages, feeds) if feeds else {}
        for where, offset in last.items():
            feed = feeds.get(where)
            if feed is None:
                self._stores[where].apply(writes.get(where, {}), offset + 1)
            else:
                feed.apply(
                    self._stores[where], writes.get(where, {}), offset + 1, changes.get(where, [])
                )
            _, high = self._consumer.get_watermark_offsets(TopicPartition(*where), cached=True)
            self.high_watermarks[where] = max(high, offset + 1)
        for where, target in list(self._targets.items()):
            applied = self._stores[where].offset() or 0
            if applied < target:
                continue
            # the queried end may be one batch short (see the module docstring); the end
            # that fetch responses report is exact: reaching it once more is caught up
            fetched = self.high_watermarks.get(where, 0)
            if where not in self._rechecked and fetched > applied:
                self._rechecked.add(where)
                self._targets[where] = fetched
                continue
            result.caught_up.add(where)
            del self._targets[where]  # reported once, like an EOF event
            self._rechecked.discard(where)
        if self._held_open or result.caught_up & self._exact:
            held, freed = self._open_transactions(result.caught_up & self._exact)
            result.caught_up = (result.caught_up - held) | freed
        now = time.time()
        for where in result.caught_up:
            self._targets.pop(where, None)
            self._rechecked.discard(where)
            self.high_watermarks[where] = self._stores[where].offset() or 0
            self._caught_up.add(where)
            self._stores[where].record_origin(synced_at=now)
        return result

    def _open_transactions(
        self, at_eof: set[TopicPartitionKey]
    ) -> tuple[set[TopicPartitionKey], set[TopicPartitionKey]]:
        """Of the exact-end partitions at an EOF event, those an open transaction holds back;
        and of those held back before, the ones whose transaction has ended since.

        A read_committed reader's end is the last stable offset: a transaction still open
        (of a previous owner killed or cut off mid-batch, until the broker aborts it after
        ``transaction.timeout.ms``) holds it back, and records the next owner committed after
        it lie beyond. A store recovered to there would miss them while the committed input
        offsets count them as processed: their updates would be lost. So such a partition is
        caught up only once its end is the high watermark. Partitions held back are looked at
        again every second: after an abort, nothing but aborted records and markers may
        follow, and no EOF event comes for those.
        """
        now = time.monotonic()
        due = {w for w, at in self._held_open.items() if at <= now and w not in at_eof}
        asked = at_eof | due
        if not asked:
            return set(), set()
        ends = end_offsets(self._facts.admin(), asked, _END_TIMEOUT)
        if ends is None:  # the brokers cannot say now: asked again in a second
            self._held_open.update(dict.fromkeys(asked, now + 1.0))
            return asked, set()
        held, freed = set(), set()
        for where in asked:
            store, end = self._stores[where], ends[where]
            if where in due:
                position = self._consumer.position([TopicPartition(*where)])[0].offset
                if position >= end > (store.offset() or 0):  # read past what followed the abort
                    feed = self._feeds.get(where)
                    if feed is None:
                        store.apply({}, end)
                    else:
                        feed.apply(store, {}, end, [])
            if (store.offset() or 0) >= end:
                if self._held_open.pop(where, None) is not None and where in due:
                    freed.add(where)
                continue
            if where not in self._held_open:
                _logger.info(
                    "table %s partition %d: an open transaction holds its end at %d, records "
                    "reach %d: waiting for it to end", *where, store.offset() or 0, end
                )  # fmt: skip
            self._held_open[where] = now + 1.0
            held.add(where)
        return held, freed

    def close(self) -> None:
        for where in list(self._stores):
            self.remove(*where)
        self._stores.clear()
        self._consumer.close()


def _changes(
    messages: list[Any], feeds: dict[TopicPartitionKey, ChangeFeed]
) -> dict[TopicPartitionKey, list[Change]]:
    """The records of ``messages`` of the partitions with a feed, as changes: a second pass,
    so that the hot loop costs nothing more when nobody watches."""
    changes: dict[TopicPartitionKey, list[Change]] = {}
    for msg in messages:
        if msg.error() is not None:
            continue
        where = (msg.topic(), msg.partition())
        key = msg.key()
        if key is not None and where in feeds:
            changes.setdefault(where, []).append((key, msg.value(), msg.offset()))
    return changes
