"""Which partitions a processor holds, and in which state: recovering, running or standby.

An assigned partition recovers its group-table and joined-table partitions from their local
stores' offsets to the end of the topics (input paused), then runs: the group table is then
written only by this processor, while joined tables keep being followed. With hot standby,
every partition not assigned is kept caught up passively, so taking it over replays only the
delta. Stores stay open while a partition is assigned or on standby; local files survive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from goka._partition import PartitionTask
from goka._recovery import RecoveryReader
from goka.changes import ChangeFeed, TableChanges
from goka.graph import GroupGraph
from goka.storage import Storage, StorageFactory

__all__ = ["Assignment"]

_logger = logging.getLogger("goka.processor")


@dataclass
class _Stores:
    table: Storage | None
    joins: dict[str, Storage]
    feed: ChangeFeed | None = None
    """The group table's change feed (None: not watched, or no table)."""
    standby_records: int = 0
    caught_up: bool = False
    """A standby reached the end of its table partition at least once."""

    def all(self) -> list[tuple[str | None, Storage]]:
        pairs: list[tuple[str | None, Storage]] = [(None, self.table)] if self.table else []
        return pairs + list(self.joins.items())


@dataclass
class Assignment:
    graph: GroupGraph
    storage: StorageFactory
    reader: RecoveryReader | None
    inputs: list[str]
    hot_standby: bool
    partition_count: int
    cache: bool = False
    """Give running partitions a value cache (see ``PartitionTask.cache``)."""
    incremental: bool = False
    """The group protocol hands partitions out incrementally (KIP-848's ``consumer``
    protocol): each rebalance callback lists only what is added or taken away, and the
    partitions that stay keep running through it."""
    changes: TableChanges = field(default_factory=TableChanges)
    """The feeds of the group table's partitions, for watchers (see ``goka.changes``)."""
    on_change: Callable[[], None] = lambda: None
    """Called after partitions are assigned, released, or start running."""
    tasks: dict[int, PartitionTask] = field(default_factory=dict)
    split: dict[int, list[str]] = field(default_factory=dict)
    """Assigned partitions that are not processed because the assignment gave this member
    only some inputs' partition N (partition -> the inputs assigned): co-partitioning or
    nothing, never two writers of one table partition."""
    _assigned: set[tuple[str, int]] = field(default_factory=set)
    """The input topic partitions assigned to this member now."""
    _stores: dict[int, _Stores] = field(default_factory=dict)
    _standby: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- opening and following stores ---------------------------------------------------

    def _open(self, partition: int) -> _Stores:
        stores = self._stores.get(partition)
        if stores is None:
            table = self.graph.table
            stores = _Stores(
                table=self.storage.open(table, partition) if table is not None else None,
                joins={e.table: self.storage.open(e.table, partition) for e in self.graph.joins},
            )
            if stores.table is not None:
                stores.feed = self.changes.open(partition, stores.table)
            self._stores[partition] = stores
        return stores

    def _close(self, partition: int) -> None:
        stores = self._stores.pop(partition, None)
        if stores is None:
            return
        self.changes.close(partition, f"partition {partition} is no longer held here")
        for topic, store in stores.all():
            if self.reader is not None:
                self.reader.remove(topic or self._table_topic, partition)
            store.close()

    @property
    def _table_topic(self) -> str:
        return self.graph.table or ""

    def _follow(
        self, partition: int, stores: _Stores, *, assigned: bool = False
    ) -> set[tuple[str, int]]:
        """(Re)start following every table partition of ``stores``; returns them.

        An ``assigned`` partition's own table is written by nobody while it recovers, so it is
        read to its very end (see ``goka._recovery``).
        """
        followed = set()
        if self.reader is not None:
            for topic, store in stores.all():
                name = topic or self._table_topic
                own = topic is None
                self.reader.add(
                    name,
                    partition,
                    store,
                    exact_end=assigned and own,
                    feed=stores.feed if own else None,
                )
                followed.add((name, partition))
        return followed

    # -- rebalances ---------------------------------------------------------------------

    def _topics_of(self, partition: int) -> list[str]:
        return sorted({topic for topic, number in self._assigned if number == partition})

    def assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        """Take ``assigned`` on: the whole assignment (classic protocol) or what it adds
        (incremental); a partition recovers once every input's partition of its number is
        assigned here."""
        added = {(tp.topic, tp.partition) for tp in assigned}
        if self.incremental:
            consumer.incremental_assign(assigned)
            self._assigned |= added
        else:
            consumer.assign(assigned)
            self._assigned = added
        consumer.pause(assigned)
        partitions = sorted({tp.partition for tp in assigned})
        if self.incremental:  # the partitions that stay run on; classic: every one anew
            partitions = [p for p in partitions if p not in self.tasks]
        idle = self._idle()
        started = []
        for partition in partitions:
            topics = self._topics_of(partition)
            if topics != sorted(set(self.inputs)):
                self.split[partition] = topics
                _logger.error(
                    "group %s: partition %d is assigned for %s only, not for %s: it is not "
                    "processed (stays paused) until an assignment gives this member every "
                    "input's partition %d. The members of the group subscribe to different "
                    "inputs, as during a rolling deploy that adds or removes an input; finish "
                    "the deploy, or give the new inputs a new group",
                    self.graph.group,
                    partition,
                    topics,
                    sorted(set(self.inputs) - set(topics)),
                    partition,
                )
                continue
            self.split.pop(partition, None)
            self._standby.discard(partition)
            stores = self._open(partition)
            task = PartitionTask(
                partition,
                stores.table,
                join_stores=stores.joins,
                feed=stores.feed,
                cache={} if self.cache and stores.table is not None else None,
            )
            task.pending = self._follow(partition, stores, assigned=True)
            with self._lock:
                self.tasks[partition] = task
            if not task.pending:
                self._run(consumer, task)
                started.append(task)
        if idle:
            self._wake_fetchers(consumer, started)
        self.on_change()

    def unassign(self, consumer: Consumer, revoked: list[TopicPartition]) -> list[PartitionTask]:
        """Give ``revoked`` up (all of the assignment under the classic protocol): their
        partitions stop processing; returns their tasks. A partition some of whose inputs
        stay assigned stays paused (``split``) until the rest comes back."""
        taken = {(tp.topic, tp.partition) for tp in revoked}
        if self.incremental:
            consumer.incremental_unassign(revoked)
        self._assigned -= taken
        numbers = sorted({partition for _, partition in taken})
        released = self._release(numbers)
        for partition in numbers:
            remaining = self._topics_of(partition)
            if remaining:
                self.split[partition] = remaining
        return released

    def _release(self, partitions: list[int]) -> list[PartitionTask]:
        released = []
        for partition in partitions:
            self.split.pop(partition, None)
            with self._lock:
                task = self.tasks.pop(partition, None)
            if task is None:
                continue
            _mark_in_sync(task)
            released.append(task)
            if self.hot_standby:
                self._standby.add(partition)
                self._follow(partition, self._stores[partition])
            else:
                self._close(partition)
        self.on_change()
        return released

    def set_standby(self, wanted: set[int] | None) -> bool:
        """Follow the ``wanted`` partitions (None: all) that are not assigned, as hot
        standbys, and stop following other standbys; True if the standby set changed."""
        target = set(range(self.partition_count)) if wanted is None else set(wanted)
        target -= set(self.tasks)
        if target == self._standby:
            return False
        for partition in sorted(self._standby - target):
            self._standby.discard(partition)
            self._close(partition)  # the local files stay for a later return
        for partition in sorted(target - self._standby):
            self._standby.add(partition)
            self._follow(partition, self._open(partition))
        return True

    def recover_ahead(self, stopping: threading.Event, timeout: float) -> None:
        """Replay every table and join partition to the end (before joining the group)."""
        pending: set[tuple[str, int]] = set()
        for partition in range(self.partition_count):
            pending |= self._follow(partition, self._open(partition))
        while pending and not stopping.is_set() and self.reader is not None:
            result = self.reader.read(10_000, timeout)
            self._count_standby(result.records)
            pending -= result.caught_up
        if not self.hot_standby:
            for partition in range(self.partition_count):
                self._close(partition)
        else:
            self._standby.update(range(self.partition_count))

    # -- recovery ------------------------------------------------------------------------

    def step(self, consumer: Consumer, max_records: int, timeout: float) -> bool:
        """Reads one chunk of followed table partitions; True while any partition recovers.

        Waits up to ``timeout`` for records only while a partition recovers and none runs:
        partitions that are just followed (joins, standbys) or still recover must not slow
        the input of running ones down.
        """
        reader = self.reader
        if reader is None:
            return False
        if not reader.partitions:
            reader.serve()  # nothing to read, but its statistics must not pile up
            return False
        idle = self._idle()
        started = []
        recovering = any(task.state == "recovering" for task in self.tasks.values())
        result = reader.read(max_records, timeout if recovering and idle else 0.0)
        for (_, partition), records in result.records.items():
            task = self.tasks.get(partition)
            if task is not None and task.state == "recovering":
                task.recovered_records += records
        self._count_standby(result.records)
        for topic, partition in result.caught_up:
            if partition in self._standby and topic == self._table_topic:
                self._stores[partition].caught_up = True
            task = self.tasks.get(partition)
            if task is None or task.state != "recovering":
                continue
            task.pending.discard((topic, partition))
            if not task.pending:
                if self.graph.table is not None:  # we write it from now on; joins go on
                    reader.remove(self.graph.table, partition)
                self._run(consumer, task)
                started.append(task)
        if idle:
            self._wake_fetchers(consumer, started)
        return any(task.state == "recovering" for task in self.tasks.values())

    def _count_standby(self, records: dict[tuple[str, int], int]) -> None:
        for (_, partition), count in records.items():
            if partition in self._standby:
                self._stores[partition].standby_records += count

    def _run(self, consumer: Consumer, task: PartitionTask) -> None:
        task.mark_running()
        _logger.info(
            "group %s partition %d running after replaying %d table records",
            self.graph.group,
            task.partition,
            task.recovered_records,
        )
        consumer.resume([TopicPartition(topic, task.partition) for topic in self.inputs])
        for topic, offset in task.rewind.items():
            consumer.seek(TopicPartition(topic, task.partition, offset))
        task.rewind.clear()
        self.on_change()

    def _idle(self) -> bool:
        """No partition runs: every input partition is paused."""
        return not any(task.state == "running" for task in self.tasks.values())

    def _wake_fetchers(self, consumer: Consumer, started: list[PartitionTask]) -> None:
        """Have the first partitions that run after all were paused fetched now, not in up
        to a second.

        librdkafka's resume() does not wake the thread of the broker that leads a partition
        (librdkafka 2.x, rd_kafka_toppar_pause_resume); with every partition it fetches
        paused, that thread sleeps up to a second before it sees a resumed one. A
        ListOffsets request goes to that very thread and wakes it, and is answered at once
        as no fetch is outstanding: one request per leader, from this thread (sent from
        another, it can reach the broker thread before the resume does and wake it for
        nothing). Once partitions run, their fetches keep the threads going, and a partition
        resumed later joins a fetch within ``fetch.wait.max.ms``.
        """
        if not started:
            return
        woken: set[int] = set()
        try:
            for topic in self.inputs:
                leaders = consumer.list_topics(topic, timeout=1.0).topics[topic].partitions
                for task in started:
                    partition = leaders.get(task.partition)
                    leader = partition.leader if partition is not None else -1
                    if leader not in woken:
                        woken.add(leader)
                        consumer.get_watermark_offsets(
                            TopicPartition(topic, task.partition), timeout=1.0
                        )
        except KafkaException as exc:  # only the wake-up is lost: the fetch starts later
            _logger.debug("group %s: waking the fetchers failed: %s", self.graph.group, exc)

    # -- stats and shutdown ---------------------------------------------------------------

    def stats(self) -> dict[int, dict[str, Any]]:
        with self._lock:
            tasks = list(self.tasks.values())
        highs = self.reader.high_watermarks if self.reader is not None else {}
        result = {task.partition: task.stats() for task in tasks}
        for partition, topics in list(self.split.items()):
            result[partition] = {
                "state": "split",
                "assigned_inputs": topics,
                "missing_inputs": sorted(set(self.inputs) - set(topics)),
            }
        for task in tasks:
            table = result[task.partition]["table"]
            if task.state == "recovering" and table["offset"] is not None:
                high = highs.get((self._table_topic, task.partition))
                table["high_watermark"] = high
                table["lag"] = max(0, high - table["offset"]) if high is not None else None
        for partition in sorted(self._standby.copy()):  # copy(): atomic against the loop
            stores = self._stores.get(partition)
            if stores is None or partition in result:
                continue
            offset = stores.table.offset() if stores.table else None
            high = highs.get((self._table_topic, partition))
            result[partition] = {
                "state": "standby",
                "caught_up": stores.caught_up,
                "table": {
                    "offset": offset,
                    "high_watermark": high,
                    "lag": max(0, high - (offset or 0)) if high is not None else None,
                },
                "joins": {table: store.offset() for table, store in stores.joins.items()},
                "recovered_records": stores.standby_records,
            }
        return dict(sorted(result.items()))

    def table_store(self, partition: int) -> Storage | None:
        """The open group-table store of an assigned or standby partition; thread-safe."""
        stores = self._stores.get(partition)
        return stores.table if stores is not None else None

    def close(self) -> None:
        with self._lock:
            for task in self.tasks.values():
                _mark_in_sync(task)
            self.tasks.clear()
        self._standby.clear()
        for partition in list(self._stores):
            self._close(partition)


def _mark_in_sync(task: PartitionTask) -> None:
    """A running partition's store is in sync with its table partition, which nobody else
    writes, as of its last stored batch: recorded for the stale-store check of the next
    recovery (see ``goka._stale_stores``)."""
    if task.state == "running" and task.store is not None:
        task.store.record_origin(synced_at=time.time())
