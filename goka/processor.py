"""The processor: runs a group's callbacks over its share of the input partitions.

Instances of one group share the input partitions through a Kafka consumer group (``range``
assignment, so that partition N of every input lands on the same instance). An assigned
partition first replays its table partitions (input paused, see ``_assignment``), then
processes batches through the commit protocol (see ``_processing``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from goka._assignment import Assignment
from goka._commit_protocol import BatchRunner
from goka._commits import CommitLedger
from goka._config import client_config, static_membership
from goka._consume import consume_available
from goka._crash_points import CrashPoints
from goka._group_protocol import check_group_protocol, group_config, resolve_group_protocol
from goka._group_topics import prepare_topics
from goka._partition import PartitionTask
from goka._processor_table import ProcessorTable
from goka._producer import BatchProducer, DeliveryTimedOut
from goka._reachability import Reachability
from goka._recovery import RecoveryReader
from goka._stall import (
    MembershipInDoubt,
    StallGuard,
    message_timeout_ms,
    session_bounds,
    session_timeout_ms,
)
from goka._transactions import (
    AT_LEAST_ONCE,
    EXACTLY_ONCE,
    TRANSACTION_TIMEOUT_MS,
    TransactionAborted,
    TransactionalProducer,
    check_guarantee,
    transaction_config,
    transactional_id,
)
from goka._visit import Visit
from goka.changes import TableChanges
from goka.errors import ConfigError, GokaError, ProcessorError, VisitAborted
from goka.graph import GroupGraph
from goka.local_table import LocalTable
from goka.observer import ProcessorObserver, ProcessorPlugin
from goka.partitioner import get_partitioner
from goka.storage import LMDBStorage, StorageFactory
from goka.topics import TopicManager, check_topic_settings
from goka.view import View

__all__ = ["GENERATION_HEADER", "WRITER_HEADER", "Processor", "ProcessorState", "RebalanceCallback"]

_logger = logging.getLogger("goka.processor")

INPUT_CONSUMER_DEFAULTS = {
    # a partition resumed after its recovery joins the next fetch, which the broker holds
    # up to fetch.wait.max.ms (librdkafka: 500) while the running partitions have nothing new
    "fetch.wait.max.ms": 100,
    # librdkafka stops fetching a partition for fetch.queue.backoff.ms (1000) once
    # queued.min.messages are queued; a processor draining them faster than that would
    # wait for input that is there
    "fetch.queue.backoff.ms": 50,
}
"""librdkafka settings of the input consumer, on top of librdkafka's defaults
(``extra_config`` overrides them)."""

WRITER_HEADER = "goka-writer"
"""Header of every changelog record the processor writes: the writer's ``member_id``."""
GENERATION_HEADER = "goka-generation"
"""Header of every changelog record: the writer's ``generation`` when it was written, so a
record written after the partition moved to another member can be told apart."""

_RECOVERING_POLL = 0.01
"""Seconds the loop waits for input while partitions recover beside running ones."""

_DROPPED = (MembershipInDoubt, DeliveryTimedOut, TransactionAborted)
"""Failures after which the batches not stored yet are dropped and processed again, without
stopping the processor."""

Guarantee = Literal["at_least_once", "exactly_once"]
GroupProtocol = Literal["classic", "consumer", "auto"]
ProcessorState = Literal["idle", "starting", "running", "stopping", "stopped", "failed"]
RebalanceCallback = Callable[[frozenset[int]], None]
"""Called with the partitions assigned to this instance after every rebalance."""


class Processor:
    """Runs the callbacks of a group definition.

    Args:
        brokers: bootstrap servers (``"host:port,..."`` or a list).
        graph: the group definition from :func:`goka.define_group`.
        storage: where table partitions are kept (default: LMDB in a temporary directory
            that is removed when ``run()`` returns, so every start replays the table).
        partitioner: ``"murmur2"`` (default, Java-compatible) or ``"fnv1a"`` (Goka/Sarama);
            decides the partition of emitted messages, and must be the one the producers of
            the inputs use.
        batch_size: messages consumed and committed together (default 10,000).
        guarantee: ``"at_least_once"`` (default): a failure may process messages again;
            ``"exactly_once"``: each batch's changelog, emitted messages and input offsets
            are one Kafka transaction, and local storage is written only once it committed,
            so every message affects the table and the outputs exactly once, as read by
            ``read_committed`` consumers (librdkafka's default; see
            ``goka._transactions``). Side effects of callbacks outside Kafka are not
            covered. The producer's ``transactional.id`` is ``<group>-<group_instance_id>``
            (or ``<group>-<member_id>``); ``transaction.timeout.ms`` defaults to 10 s.
        group_protocol: the consumer group protocol (see ``goka._group_protocol``):
            ``"classic"`` (eager ``range`` assignment, any broker; every rebalance pauses
            every partition), ``"consumer"`` (KIP-848, Kafka 4.0+: the broker's ``range``
            assignor, incremental rebalances that leave the partitions staying with a member
            running; session timeout and heartbeat are broker settings) or ``"auto"``
            (default: ``consumer`` where the broker offers it, else ``classic``).
        cache_entries: decoded group-table values kept in memory across batches, shared by
            the assigned partitions (default 100,000; 0: none), so that ``ctx.value()`` of
            a recently read or written key skips storage and its codec (Kafka Streams'
            record cache plays this part). Only immutable values are kept (int, float, str,
            bytes, bool).
        poll_timeout: seconds one poll waits for input (default 0.1); bounds how long
            ``stop()`` takes to be noticed.
        delivery_timeout: seconds to wait for a batch's changelog and emitted messages to
            be acknowledged (default 60; librdkafka's ``message.timeout.ms`` is set to at
            most this and to at most the session timeout less one heartbeat interval). A
            batch not acknowledged in time is dropped and processed again once the group
            coordinator accepts a commit, so a broker outage delays processing instead of
            stopping it; a message the broker refuses stops the processor.
        stop_timeout: seconds ``stop()`` waits for ``run()`` to drain and return (default 30).
        hot_standby: keep every table (and joined table) partition this instance does not
            own caught up, so taking one over replays only the delta (default False).
        standby_replicas: instead of every partition, keep this many hot standbys of each
            partition across the group, placed on a consistent-hash ring over the live
            members; needs ``discovery`` to know them (implies hot standby).
        discovery: a plugin told about the processor's partitions, e.g.
            ``discovery.DiscoveryConfig(advertise="host:port")`` to announce them.
        serve: a plugin serving the processor's table partitions (active and standby),
            e.g. ``viewsvc.ServeConfig(listen="0.0.0.0:50051")`` for gRPC; it reads them
            through ``local_table()``.
        recover_ahead: replay every table and joined-table partition before joining the
            consumer group (default False).
        rebalance_callback: called with the assigned partitions after every rebalance.
        member_id: this instance's id in discovery and serving (default:
            ``<group>@<hostname>:<pid>:<random>``).
        group_instance_id: static group membership (KIP-345, ``group.instance.id``): an id
            that stays the same across restarts of this instance, such as the pod name of a
            StatefulSet. An instance that comes back within ``session.timeout.ms`` gets its
            partitions back without a rebalance of the others; one that stops does not leave
            the group, so its partitions wait for it until the session times out. Unique
            within the group (default None: dynamic membership).
        replication_factor: for the table and loop topics this processor creates (-1:
            the broker's ``default.replication.factor``).
        min_insync_replicas: ``min.insync.replicas`` of the topics this processor creates
            (None: the broker's default).
        table_config: topic configs of the table topic it creates, on top of
            ``goka.topics.TABLE_TOPIC_CONFIG`` (``cleanup.policy`` stays ``compact``).
        extra_config: librdkafka settings for every client (e.g. ``session.timeout.ms``).
    """

    def __init__(
        self,
        brokers: str | Iterable[str],
        graph: GroupGraph,
        *,
        storage: StorageFactory | None = None,
        partitioner: str = "murmur2",
        batch_size: int = 10_000,
        guarantee: Guarantee = "at_least_once",
        group_protocol: GroupProtocol = "auto",
        cache_entries: int = 100_000,
        poll_timeout: float = 0.1,
        delivery_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        hot_standby: bool = False,
        standby_replicas: int | None = None,
        recover_ahead: bool = False,
        rebalance_callback: RebalanceCallback | None = None,
        replication_factor: int = -1,
        min_insync_replicas: int | None = None,
        table_config: Mapping[str, str] | None = None,
        extra_config: Mapping[str, Any] | None = None,
        discovery: ProcessorPlugin | None = None,
        serve: ProcessorPlugin | None = None,
        member_id: str | None = None,
        group_instance_id: str | None = None,
    ) -> None:
        if not isinstance(graph, GroupGraph):
            raise ConfigError(
                f"graph must come from goka.define_group(...), got {type(graph).__name__}"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.guarantee = check_guarantee(guarantee)
        self.group_protocol = check_group_protocol(group_protocol)
        """The group protocol asked for; ``auto`` is resolved when ``run()`` starts."""
        if group_protocol != "classic":
            group_config("consumer", extra_config or {})  # raises for a classic setting
        self._session: dict[str, int] = {}
        """The session settings in force (see ``GroupSettings.session``), once resolved."""
        if self.guarantee == EXACTLY_ONCE and "transactional.id" in (extra_config or {}):
            raise ConfigError(
                "transactional.id would apply to every client of the processor: it is "
                "derived from the group and group_instance_id (or member_id)"
            )
        isolation = (extra_config or {}).get("isolation.level", "read_committed")
        if self.guarantee == EXACTLY_ONCE and isolation != "read_committed":
            raise ConfigError(
                f"isolation.level={isolation} would read aborted transactions: exactly_once "
                "needs read_committed (librdkafka's default)"
            )
        if cache_entries < 0:
            raise ConfigError(f"cache_entries must be >= 0 (0: no cache), got {cache_entries}")
        if min(poll_timeout, delivery_timeout, stop_timeout) <= 0:
            raise ConfigError("poll_timeout, delivery_timeout and stop_timeout must be positive")
        if rebalance_callback is not None and not callable(rebalance_callback):
            raise ConfigError(f"rebalance_callback {rebalance_callback!r} is not callable")
        if standby_replicas is not None:
            if standby_replicas < 1:
                raise ConfigError(f"standby_replicas must be >= 1, got {standby_replicas}")
            if discovery is None:
                raise ConfigError(
                    "standby_replicas needs discovery to know the live members of the group: "
                    "pass discovery=discovery.DiscoveryConfig(...), or use hot_standby=True "
                    "for standbys of every partition"
                )
            hot_standby = True
        if (hot_standby or recover_ahead) and graph.table is None and not graph.joins:
            raise ConfigError(
                f"group {graph.group!r} has no table and no joins: hot_standby and "
                "recover_ahead have nothing to keep"
            )
        if member_id is not None and not member_id:
            raise ConfigError("member_id must not be empty (None: generated)")
        static_membership(group_instance_id)  # raises for an id Kafka would refuse
        if "group.instance.id" in (extra_config or {}):
            raise ConfigError(
                "group.instance.id would apply to every client of the processor: pass "
                "group_instance_id= instead"
            )
        self.group_instance_id = group_instance_id
        self.graph = graph
        self.member_id = member_id or (
            f"{graph.group}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self._config = client_config(brokers, extra_config)
        self.brokers = brokers
        self.extra_config = extra_config
        self._partitioner = get_partitioner(partitioner)
        self.partitioner = partitioner
        self._temp_storage: str | None = None
        if storage is None:  # created on first use, removed when run() returns
            self._temp_storage = os.path.join(
                tempfile.gettempdir(), f"goka-{graph.group}-{uuid.uuid4().hex[:12]}"
            )
            storage = LMDBStorage(self._temp_storage)
        self._storage = storage
        self._batch_size = batch_size
        self._cache_entries = cache_entries
        self._poll_timeout = poll_timeout
        self._delivery_timeout = delivery_timeout
        self._stop_timeout = stop_timeout
        self._hot_standby = hot_standby
        self.changes = TableChanges()
        """The change feeds of the held table partitions, once ``local_table()`` enabled
        them (see ``goka.changes``)."""
        self.standby_replicas = standby_replicas
        for name, plugin, example in (
            ("discovery", discovery, "discovery.DiscoveryConfig(advertise='host:port')"),
            ("serve", serve, "viewsvc.ServeConfig(listen='0.0.0.0:50051')"),
        ):
            if plugin is not None and not callable(getattr(plugin, "attach", None)):
                raise ConfigError(
                    f"{name} must be a plugin with attach(processor), e.g. {example}; "
                    f"got {plugin!r}"
                )
        self.discovery = discovery
        self._serve = serve
        self._observer: ProcessorObserver | None = None
        """The discovery plugin's observer, which places standbys."""
        self.partition_count: int | None = None
        """The partition count of the inputs and table, known once ``run()`` checked them."""
        self.generation = -1
        """Increases with every assignment this instance receives: the time of the latest
        one in milliseconds since the epoch (librdkafka does not expose the group
        generation); -1 before the first."""
        self.assignments = 0
        """How many assignments this instance received (every rebalance that included it)."""
        self.revoked_partitions = 0
        """Partitions taken from this member by rebalances, revoked or lost, in all."""
        self._recover_ahead = recover_ahead
        self._rebalance_callback = rebalance_callback
        check_topic_settings(replication_factor, min_insync_replicas, table_config)
        self._topic_manager = functools.partial(
            TopicManager,
            self.brokers,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
            table_config=table_config,
            extra_config=self.extra_config,
        )
        self._state: ProcessorState = "idle"
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._assignment: Assignment | None = None
        self._lookups: dict[str, View[Any]] = {}
        self._visits: queue.SimpleQueue[Visit] = queue.SimpleQueue()
        self._visit: Visit | None = None
        self._commits = CommitLedger(graph.group)
        self.reachability = Reachability()
        """Whether the input consumer has a broker connection up (see goka._reachability)."""
        self._crash_points = CrashPoints()  # raises for a GOKA_CRASH_AT it does not know
        self._in_doubt = False
        """Batches were dropped because the membership may be lost: nothing is processed
        until a commit goes through or a new assignment arrives (see ``goka._stall``)."""
        self._assigned_in_doubt = False
        """An assignment arrived while in doubt: the poll that served it ends the doubt."""
        self._final_stats: dict[str, Any] | None = None

    @property
    def state(self) -> ProcessorState:
        return self._state

    def stop(self, timeout: float | None = None) -> bool:
        """Drain the current batch, commit, leave the group, close storage. Thread-safe.

        Waits up to ``timeout`` seconds (default: ``stop_timeout``) for ``run()`` to return
        when called from another thread; returns whether it did.
        """
        self._stopping.set()
        if self._state == "idle":
            return True
        if threading.current_thread() is self._run_thread:
            return False  # called from a callback: run() returns after this batch
        return self._finished.wait(self._stop_timeout if timeout is None else timeout)

    def stats(self) -> dict[str, Any]:
        """A plain dict of the processor's state; thread-safe. See the README for the keys.

        After ``run()`` returned: the partitions as they were when it stopped.
        """
        if self._final_stats is not None:
            return {**self._final_stats, "state": self._state}
        assignment, runner = self._assignment, self._runner
        producer = runner.transaction if runner is not None else None
        partitions = assignment.stats() if assignment is not None else {}
        reader = assignment.reader if assignment is not None else None
        unreachable = self.reachability.unreachable_for()
        cut_off = unreachable > 0
        for partition, stats in partitions.items():
            for topic, entry in stats.get("input", {}).items():
                entry["committed"] = self._commits.confirmed(topic, partition)
                if cut_off:
                    entry["lag"] = None
            if cut_off and "table" in stats:
                stats["table"]["lag"] = None  # no broker reachable: how far behind is unknown
        return {
            "group": self.graph.group,
            "state": self._state,
            "group_instance_id": self.group_instance_id,
            "guarantee": self.guarantee,
            "group_protocol": self.group_protocol,
            "session_timeout_ms": session_timeout_ms(self._session_config()),
            "transactions": producer.transactions if producer is not None else 0,
            "aborted_transactions": producer.aborts if producer is not None else 0,
            "assignments": self.assignments,
            "revoked_partitions": self.revoked_partitions,
            "failed_commits": self._commits.failed,
            "stalls": runner.guard.stalls if runner is not None else 0,
            "dropped_batches": runner.dropped if runner is not None else 0,
            "wiped_stores": sum(reader.wiped.values()) if reader is not None else 0,
            # to the millisecond, rounded up: never 0 while the lag is reported unknown
            "brokers_unreachable_s": math.ceil(unreachable * 1000) / 1000,
            "partitions": partitions,
            "lookups": {table: view.state for table, view in self._lookups.items()},
        }

    def local_table(self) -> LocalTable:
        """Thread-safe reads of the group-table partitions this instance holds (active and
        standby), for servers such as ``viewsvc`` (see ``goka.local_table``); from now on
        their changes are published too (``goka.changes``), for watchers."""
        self.changes.enable()
        return ProcessorTable(self)

    def visit_all(self, name: str, meta: Any = None, timeout: float | None = None) -> int:
        """Run visitor ``name`` with ``meta`` over every key of this instance's running
        partitions, interleaved with normal input; returns the number of keys visited.

        Raises VisitAborted if a rebalance or a stop cuts it short, TimeoutError after
        ``timeout`` seconds (the visit then goes on in the background).
        """
        edge = next((v for v in self.graph.visitors if v.name == name), None)
        if edge is None:
            declared = [v.name for v in self.graph.visitors]
            raise ConfigError(
                f"group {self.graph.group!r} has no visitor {name!r} (declared: {declared}); "
                "add goka.visitor(name, callback) to define_group"
            )
        if self.graph.table is None:
            raise ConfigError(f"group {self.graph.group!r} has no table to visit")
        if self._state != "running":
            raise VisitAborted(f"the processor is {self._state}, not running")
        visit = Visit(edge, meta)
        self._visits.put(visit)
        return visit.wait(timeout)

    def run(self) -> None:
        """Process until ``stop()``; raises ProcessorError (with the cause) on failure."""
        if self._state != "idle":
            raise ProcessorError("a Processor runs once; create a new one to run again")
        self._state = "starting"
        self._run_thread = threading.current_thread()
        try:
            self._run()
            self._state = "stopped"
        except BaseException as exc:
            self._state = "failed"
            if isinstance(exc, ProcessorError):
                raise
            if isinstance(exc, GokaError | KafkaException):
                raise ProcessorError(f"group {self.graph.group!r} stopped: {exc}") from exc
            raise
        finally:
            if self._temp_storage is not None:
                shutil.rmtree(self._temp_storage, ignore_errors=True)
            self._finished.set()

    _run_thread: threading.Thread | None = None
    _runner: BatchRunner | None = None

    # -- setup ---------------------------------------------------------------------------

    def _start_lookups(self) -> None:
        for edge in self.graph.lookups:
            view = View(
                self.brokers,
                edge.table,
                edge.codec,
                storage=self._storage,
                partitioner=self.partitioner,
                extra_config=self.extra_config,
            )
            self._lookups[edge.table] = view.start()
        for table, view in self._lookups.items():
            while not view.wait_running(self._poll_timeout):
                if self._stopping.is_set():
                    return
                if view.error is not None:
                    raise ProcessorError(f"lookup table {table!r} failed: {view.error}")

    # -- the loop ------------------------------------------------------------------------

    def _session_config(self) -> dict[str, Any]:
        """The client config with the group's session settings in force (once resolved)."""
        return {**self._config, **self._session}

    def _producer(self) -> BatchProducer:
        config = {**self._config, "enable.idempotence": True, "linger.ms": 5}
        message_timeout = message_timeout_ms(self._session_config(), self._delivery_timeout)
        if self.guarantee == AT_LEAST_ONCE:
            return BatchProducer({**config, "message.timeout.ms": message_timeout})
        transactional = transactional_id(self.graph.group, self.group_instance_id, self.member_id)
        return TransactionalProducer(
            transaction_config(config, transactional, message_timeout), self._delivery_timeout
        )

    def _run(self) -> None:
        manager = self._topic_manager()
        partitions, produced = prepare_topics(manager, self.graph)
        self.partition_count = partitions
        group = self.graph.group
        with contextlib.ExitStack() as cleanup:  # undone in reverse order, on any exit
            cleanup.callback(self._stop_lookups)
            self._start_lookups()
            settings = resolve_group_protocol(self.group_protocol, group, self._config)
            self.group_protocol, self._session = settings.protocol, settings.session
            producer = self._producer()
            cleanup.callback(producer.close, self._delivery_timeout)
            reader = None
            if self.graph.table is not None or self.graph.joins:
                reader = RecoveryReader({**self._config, "group.id": f"{group}-table-reader"})
                cleanup.callback(reader.close)
            inputs: list[str] = [edge.topic for edge in self.graph.inputs]
            if self.graph.loop_topic is not None:
                inputs.append(self.graph.loop_topic)
            assignment = Assignment(
                self.graph, self._storage, reader, inputs, self._hot_standby, partitions,
                cache=self._cache_entries > 0, incremental=self.group_protocol == "consumer",
                changes=self.changes,
            )  # fmt: skip
            self._assignment = assignment
            cleanup.callback(assignment.close)
            # discovery first: see stop_observers
            self._observer = self.discovery.attach(self) if self.discovery is not None else None
            served = self._serve.attach(self) if self._serve is not None else None
            observers = [o for o in (self._observer, served) if o is not None]

            def changed() -> None:
                for observer in observers:
                    observer.changed()

            assignment.on_change = changed
            started: list[ProcessorObserver] = []

            def stop_observers() -> None:
                # in plugin order: discovery's tombstone goes out before the server drains,
                # so readers have moved on when it stops answering
                for observer in started:
                    observer.stopped()

            cleanup.callback(stop_observers)  # after the consumer left the group
            for observer in observers:
                started.append(observer)
                observer.started()
            consumer_config = group_config(
                self.group_protocol,
                {
                    **INPUT_CONSUMER_DEFAULTS,
                    **self._config,
                    "group.id": group,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "isolation.level": "read_committed",  # librdkafka's default, made sure
                    "on_commit": self._on_commit,
                    **self.reachability.client_config(),
                    **static_membership(self.group_instance_id),
                },
            )
            consumer = Consumer(consumer_config)
            self.reachability.attach(consumer, consumer_config)
            cleanup.callback(self._close_consumer, consumer)  # revokes: commits, leaves group
            # before the consumer leaves the group: what was not sent yet never is, so nothing
            # of an unsettled batch reaches a table partition after another member has it
            cleanup.callback(producer.purge_unsent)
            cleanup.callback(self._abort_visits)
            cleanup.callback(self._keep_final_stats)
            _, stall_bound = session_bounds(self._session_config())
            guard = StallGuard(stall_bound, lambda: self._prove_membership(consumer, assignment))
            runner = BatchRunner(
                self.graph, producer, self._partitioner, produced, self._lookups,
                self._delivery_timeout, guard, self._cache_entries, self._crash_points,
                metadata=consumer,
            )  # fmt: skip
            self._runner = runner
            # on a failure, first of all: what was processed before it is stored
            cleanup.callback(self._settle_before_release)
            if self._recover_ahead:
                assignment.recover_ahead(self._stopping, self._poll_timeout)
            self._update_standby(assignment)
            consumer.subscribe(
                inputs,
                on_assign=lambda c, tps: self._on_assign(c, tps, assignment),
                on_revoke=lambda c, tps: self._on_release(c, tps, assignment, commit=True),
                on_lost=lambda c, tps: self._on_release(c, tps, assignment, commit=False),
            )
            self._state = "running"
            while not self._stopping.is_set():
                self._process_once(consumer, runner, assignment)
            self._state = "stopping"
            try:
                runner.settle()
            except _DROPPED as exc:
                runner.drop()
                _logger.warning(
                    "group %s: the last batch is not stored (%s); the next owner of its "
                    "partitions processes it again",
                    group,
                    exc,
                )

    def _process_once(
        self, consumer: Consumer, runner: BatchRunner, assignment: Assignment
    ) -> None:
        """One turn of the loop: recovery, a visit chunk, an input batch, commits."""
        self._check_failures(runner)
        if self._in_doubt and not self._leave_doubt(consumer, assignment):
            # nothing is processed; polling serves the rebalance that may come
            fetched = consume_available(consumer, self._batch_size, self._poll_timeout)
            self._hold_back(fetched, assignment)
            if self._assigned_in_doubt:
                # resumed only now: had the callback resumed them, the poll could have
                # handed out their first messages after it, held back above and lost
                self._resume_after_doubt(consumer, assignment)
            return
        self._update_standby(assignment)
        try:
            runner.guard.tick()
            recovering = assignment.step(consumer, self._batch_size, self._poll_timeout)
            if self._visit_step(runner, assignment) or runner.sealed:
                wait = 0.0  # work is waiting: take only the input that is there
            elif recovering:  # recovery records and input both: look at each every 10 ms
                wait = min(self._poll_timeout, _RECOVERING_POLL)
            else:
                wait = self._poll_timeout
            messages = consume_available(consumer, self._batch_size, wait)
            # with nothing more to overlap with, the sealed batch is stored now
            stored = runner.run(messages, assignment.tasks) if messages else runner.settle()
        except _DROPPED as exc:
            self._enter_doubt(consumer, runner, assignment, exc)
            return
        for task in stored:
            self._update_watermarks(consumer, task)
        failed = runner.pending_error
        self._commit(consumer, assignment.tasks.values(), sync=failed is not None)
        if failed is not None:
            raise failed

    # -- doubt about the membership (see goka._stall) --------------------------------------

    def _prove_membership(self, consumer: Consumer, assignment: Assignment) -> bool:
        """A synchronous commit of the running partitions' stored offsets: the group
        coordinator accepts it only from a current member of the current generation."""
        wanted = {
            (topic, task.partition): offset
            for task in list(assignment.tasks.values())
            if task.state == "running"
            # where processing began stands in for what is not stored yet: it is committed
            # already, or where the consumer started from
            for topic, offset in {**task.start, **task.commit_offsets()}.items()
        }
        if not wanted:
            return True  # nothing was processed: nothing to write either
        offsets = [TopicPartition(topic, p, offset) for (topic, p), offset in wanted.items()]
        try:
            self._commit_now(consumer, offsets)
        except KafkaException:
            return False
        return True

    def _enter_doubt(
        self, consumer: Consumer, runner: BatchRunner, assignment: Assignment, reason: Exception
    ) -> None:
        runner.drop()
        paused = self._running_inputs(assignment)
        if paused:
            consumer.pause(paused)
        self._in_doubt = True
        _logger.warning(
            "group %s: the batches not stored yet are dropped and processed again (%s); "
            "nothing is processed until the group coordinator accepts a commit or assigns "
            "partitions anew",
            self.graph.group,
            reason,
        )

    def _leave_doubt(self, consumer: Consumer, assignment: Assignment) -> bool:
        if not self._prove_membership(consumer, assignment):
            return False
        self._resume_after_doubt(consumer, assignment)
        _logger.info("group %s: the group coordinator accepted a commit: processing again",
                     self.graph.group)  # fmt: skip
        return True

    def _resume_after_doubt(self, consumer: Consumer, assignment: Assignment) -> None:
        """The running partitions, paused since the doubt began, go on from what is stored
        (their dropped batches are processed again)."""
        for task in assignment.tasks.values():
            if task.state != "running":
                continue
            positions = {**task.rewind, **task.resume_offsets()}
            task.rewind.clear()
            for topic, offset in positions.items():
                consumer.seek(TopicPartition(topic, task.partition, offset))
        resumed = self._running_inputs(assignment)
        if resumed:
            consumer.resume(resumed)
        self._in_doubt = self._assigned_in_doubt = False

    def _hold_back(self, messages: list[Any], assignment: Assignment) -> None:
        """Messages fetched while in doubt are not processed: a partition that has no
        position to resume from yet resumes at the first of them."""
        tasks = assignment.tasks
        for msg in messages:
            task = tasks.get(msg.partition())
            if task is not None and msg.error() is None:
                task.rewind.setdefault(msg.topic(), msg.offset())

    def _running_inputs(self, assignment: Assignment) -> list[TopicPartition]:
        return [
            TopicPartition(topic, task.partition)
            for task in assignment.tasks.values()
            if task.state == "running"
            for topic in assignment.inputs
        ]

    def _update_standby(self, assignment: Assignment) -> None:
        if not self._hot_standby:
            return
        wanted = self._observer.standby_partitions() if self._observer is not None else None
        if self.standby_replicas is not None and wanted is None:
            wanted = set()  # no placement yet: no standbys rather than all
        if assignment.set_standby(wanted):
            assignment.on_change()

    def _check_failures(self, runner: BatchRunner) -> None:
        if runner.failure is not None:
            raise ProcessorError(
                f"group {self.graph.group!r} failed: {runner.failure}"
            ) from runner.failure
        for table, view in self._lookups.items():
            if view.error is not None:
                raise ProcessorError(f"lookup table {table!r} failed: {view.error}") from view.error

    def _update_watermarks(self, consumer: Consumer, task: PartitionTask) -> None:
        for topic in task.next_input:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, task.partition), cached=True
            )
            if high >= 0:
                task.input_high[topic] = high

    def _commit(self, consumer: Consumer, tasks: Iterable[PartitionTask], *, sync: bool) -> None:
        wanted = {
            (topic, task.partition): offset
            for task in list(tasks)
            for topic, offset in task.commit_offsets().items()
        }
        offsets = self._commits.due(wanted, sync=sync)
        if not offsets:
            return
        if self.guarantee == EXACTLY_ONCE:  # committed with their batch's transaction
            self._commits.sent(offsets)
            self._commits.settled(None, offsets)
            return
        if sync:
            self._commit_now(consumer, offsets)
            return
        self._commits.sent(offsets)
        consumer.commit(offsets=offsets, asynchronous=True)  # settled in _on_commit

    def _commit_now(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """Commit synchronously; raises KafkaException if the broker refused any offset (the
        ledger has it either way)."""
        self._commits.sent(offsets)
        try:
            result = consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self._commits.settled(exc.args[0], offsets)
            raise
        self._commits.settled(None, result or offsets)
        refused = [tp.error for tp in result or () if tp.error is not None]
        if refused:
            raise KafkaException(refused[0])

    def _visit_step(self, runner: BatchRunner, assignment: Assignment) -> bool:
        """Runs one chunk of the current visit (starting the next queued one); True if one
        is in progress."""
        if self._visit is None:
            try:
                self._visit = self._visits.get_nowait()
            except queue.Empty:
                return False
            self._visit.begin(assignment.tasks)
        visit = self._visit
        try:
            more = visit.step(runner, assignment.tasks, self._batch_size)
        except BaseException as exc:
            visit.abort(exc)
            self._visit = None
            raise
        if not more:
            self._visit = None
        return more

    # -- rebalances ----------------------------------------------------------------------

    def _on_assign(
        self, consumer: Consumer, assigned: list[TopicPartition], assignment: Assignment
    ) -> None:
        _logger.info(
            "group %s: assigned %s", self.graph.group, sorted({tp.partition for tp in assigned})
        )
        self.generation = max(self.generation + 1, int(time.time() * 1000))
        self.assignments += 1
        if self._runner is not None:
            self._runner.changelog_headers = [
                (WRITER_HEADER, self.member_id.encode()),
                (GENERATION_HEADER, str(self.generation).encode()),
            ]
        if self._in_doubt:  # a new assignment: the group has this member again
            # under the incremental protocol the partitions that stay are not assigned anew:
            # paused since the doubt began, resumed once this poll returned
            self._assigned_in_doubt = True
        if self.guarantee == EXACTLY_ONCE:
            self._wait_for_stable_offsets(consumer, assigned)
        assignment.assign(consumer, assigned)
        self._notify_rebalance(assignment)

    def _wait_for_stable_offsets(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        """Exactly-once: wait until no transaction of a previous owner that holds offsets of
        these partitions is open (the broker answers read_committed offset requests only
        then), before their tables recover: a zombie's transaction that commits after the
        recovery ended would otherwise add changelog records the recovered store lacks."""
        if not assigned:
            return
        timeout = 2 * int(self._config.get("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS))
        try:
            consumer.committed(assigned, timeout=timeout / 1000)
        except KafkaException as exc:
            raise ProcessorError(
                f"group {self.graph.group!r}: the committed offsets of the assigned "
                f"partitions did not become stable within {timeout / 1000:.0f}s (a "
                f"transaction of a previous owner stays open): {exc.args[0].str()}"
            ) from exc

    def _on_release(
        self,
        consumer: Consumer,
        partitions: list[TopicPartition],
        assignment: Assignment,
        *,
        commit: bool,
    ) -> None:
        numbers = sorted({tp.partition for tp in partitions})
        _logger.info(
            "group %s: partitions %s %s", self.graph.group, numbers, "revoked" if commit else "lost"
        )
        self.revoked_partitions += len(numbers)
        if self._visit is not None and self._visit.touches(numbers):
            self._visit.abort(VisitAborted(f"partitions {numbers} were revoked by a rebalance"))
            self._visit = None
        tasks = [assignment.tasks[p] for p in numbers if p in assignment.tasks]
        settled = self._settle_before_release()
        if commit and settled:
            try:
                self._commit(consumer, tasks, sync=True)
            except KafkaException as exc:
                _logger.warning(
                    "group %s: committing revoked partitions failed (%s); their last batch "
                    "will be processed again by the next owner",
                    self.graph.group,
                    exc,
                )
        for task in assignment.unassign(consumer, partitions):
            for topic in task.next_input:
                self._commits.forget(topic, task.partition)
        self._notify_rebalance(assignment)

    def _settle_before_release(self) -> bool:
        """Store the sealed batch before partitions are released (or the processor stops on
        another error); False if that failed: the failure then stops the processor, and the
        batch is processed again by the next owner."""
        runner = self._runner
        if runner is None:
            return True
        try:
            runner.settle()
        except _DROPPED as exc:
            runner.drop()  # processed again by the next owner; nothing to stop for
            _logger.warning(
                "group %s: the last batch is not stored before its partitions are released "
                "(%s); the next owner processes it again",
                self.graph.group,
                exc,
            )
            return False
        except GokaError as exc:
            _logger.warning(
                "group %s: the last batch was not stored before its partitions were released: %s",
                self.graph.group,
                exc,
            )
            runner.fail(exc)
            return False
        return True

    def _notify_rebalance(self, assignment: Assignment) -> None:
        if self._rebalance_callback is not None:
            self._rebalance_callback(frozenset(assignment.tasks))

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self._commits.settled(error, partitions)

    def _keep_final_stats(self) -> None:
        self._final_stats = self.stats()

    def _abort_visits(self) -> None:
        if self._visit is not None:
            self._visit.abort(VisitAborted("the processor stopped"))
        while True:
            try:
                self._visits.get_nowait().abort(VisitAborted("the processor stopped"))
            except queue.Empty:
                return

    def _close_consumer(self, consumer: Consumer) -> None:
        try:
            consumer.close()  # revokes (commits) and leaves the group
        except (KafkaException, RuntimeError) as exc:
            _logger.warning("group %s: closing the consumer failed: %s", self.graph.group, exc)

    def _stop_lookups(self) -> None:
        for view in self._lookups.values():
            view.stop()
