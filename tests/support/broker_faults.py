"""Broker faults under load on a 3-node Kafka cluster (replication factor 3,
``min.insync.replicas=2``), with the whole deployment as OS processes: 3 click-count
processors with a hot standby each, serving; 2 view pods of one view group holding every
partition twice (R=2); a router. An emitter keeps writing and a client keeps reading random
keys with consistency ANY through the router and the view pods while the broker leading the
discovery topic's partition (and, by choice, a partition of the table) is SIGKILLed and
restarted on its data ``down_seconds`` later.

``run_broker_faults`` measures; the e2e test asserts on what it returns and
``bench/broker_faults.py`` records it in bench/RESULTS.md:

- every node stays up, and the membership (followed from the discovery topic by this process,
  with the rules every node uses) never loses a live member, though the discovery topic is
  unwritable until its partition has a new leader;
- the share of ANY reads that failed (an error, or a count below what was emitted before the
  load began);
- every key's final count against the clicks delivered for it (at-least-once: never fewer);
- rows each view pod applied more than were written to the table meanwhile (a pod that
  replayed its partitions applies them again), and stores wiped.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, PartitionMetadata

import goka
from goka import codec
from goka._delivery import DeliveryFuture
from goka._kafka_errors import high_watermark
from goka.localkafka import LocalKafka
from tests.conftest import ProcessGroup
from tests.support.serving import Deployment, Samples, wait_until
from viewsvc.client import Client, ReadError

__all__ = ["FaultRun", "run_broker_faults"]

PARTITIONS = 6
KEYS = [f"user-{i}" for i in range(300)]
BOUND = 120.0
"""Bounds every wait (a leader election after a SIGKILL takes broker.session.timeout.ms,
4 s on goka.localkafka; the group notices nothing as long as that is within its session)."""
READ_TIMEOUT = 2.0
EMIT_INTERVAL = 0.005
"""Seconds between two clicks of the load: about 200 a second."""
READ_INTERVAL = 0.002
"""Seconds between two ANY reads: a few hundred a second. Back to back they kept a core busy
(client, router and view pods), and on a 2-core CI machine the restarted broker then took
over 90 s to register."""


@dataclass
class FaultRun:
    """What one run measured (see the module)."""

    killed_broker: int = 0
    table_partition: int = -1
    """The table partition led by the killed broker too."""
    leader_moved_s: float = 0.0
    """From the SIGKILL until the discovery partition had another leader."""
    down_s: float = 0.0
    in_sync_again_s: float = 0.0
    """From the restart until every replica of the discovery and table topics is in sync."""
    reads: int = 0
    failed_reads: list[str] = field(default_factory=list)
    reads_during_outage: int = 0
    delivered: Counter[str] = field(default_factory=Counter)
    """Clicks acknowledged by the brokers, per key (those emitted before the load too)."""
    undelivered: int = 0
    """Clicks whose delivery failed (the emitter's to retry; not counted in ``delivered``)."""
    counts: dict[str, int] = field(default_factory=dict)
    member_losses: list[str] = field(default_factory=list)
    """Moments the membership missed a live node: '<seconds into the load>: <names>'."""
    stale_s: float = 0.0
    """Seconds the membership was stale (held while the discovery topic was silent)."""
    exited: dict[str, int | None] = field(default_factory=dict)
    """Nodes that were no longer running at the end, with their exit codes."""
    exit_logs: dict[str, str] = field(default_factory=dict)
    """The end of each exited node's stderr."""
    view_rows_replayed: dict[str, int] = field(default_factory=dict)
    """Per view pod: rows applied during the run minus table records written meanwhile."""
    view_wiped_stores: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        """The figures, one per line (the failed reads and member losses: the first 10)."""
        figures = {
            name: getattr(self, name)
            for name in (
                "killed_broker", "table_partition", "leader_moved_s", "down_s", "in_sync_again_s",
                "reads", "reads_during_outage", "read_success", "undelivered", "surplus",
                "stale_s", "exited", "view_rows_replayed", "view_wiped_stores", "seconds",
            )
        }  # fmt: skip
        figures["failed_reads"] = self.failed_reads[:10]
        figures["member_losses"] = self.member_losses[:10]
        figures["missing_or_short"] = dict(list(self.missing_or_short.items())[:10])
        figures.update((f"log of {name}", f"\n{text}") for name, text in self.exit_logs.items())
        return "\n".join(f"{name}: {value}" for name, value in figures.items())

    @property
    def read_success(self) -> float:
        return 1 - len(self.failed_reads) / max(1, self.reads)

    @property
    def missing_or_short(self) -> dict[str, tuple[int, int]]:
        """Keys whose count is below their delivered clicks: key -> (count, delivered)."""
        return {
            key: (self.counts.get(key, 0), clicks)
            for key, clicks in self.delivered.items()
            if self.counts.get(key, 0) < clicks
        }

    @property
    def surplus(self) -> int:
        """Clicks counted more than once (at-least-once after a batch was processed again)."""
        return sum(self.counts.values()) - sum(self.delivered.values())


class _Load:
    """An emitter clicking round the keys and a client reading random keys with ANY, each
    in a thread, until ``stop()``; and a watcher of the membership and the nodes."""

    def __init__(self, deployment: Deployment, run: FaultRun, floor: dict[str, int]) -> None:
        self._deployment, self._run, self._floor = deployment, run, floor
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.outage = threading.Event()
        self._threads = [
            threading.Thread(target=self._guarded(body), name=body.__name__, daemon=True)
            for body in (self._emit, self._read, self._watch)
        ]
        self.errors: list[BaseException] = []
        self.started = time.monotonic()

    def _guarded(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # reported by stop()
                self.errors.append(exc)

        return run

    def start(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(BOUND)
        assert not self.errors, f"the load failed: {self.errors!r}"

    def _emit(self) -> None:
        run = self._run

        def acknowledged(key: str) -> Callable[[DeliveryFuture], None]:
            def done(future: DeliveryFuture) -> None:
                with self._lock:
                    if future.exception() is None:
                        run.delivered[key] += 1
                    else:
                        run.undelivered += 1

            return done

        with goka.Emitter(self._deployment.brokers, self._deployment.topic, codec.String()) as out:
            i = 0
            while not self._stopping.is_set():
                key = KEYS[i % len(KEYS)]
                out.emit(key, "click").add_done_callback(acknowledged(key))
                i += 1
                time.sleep(EMIT_INTERVAL)
            out.flush(BOUND)

    def _read(self) -> None:
        run, table, rng = self._run, self._deployment.table, random.Random(7)
        with client_of(self._deployment) as client:
            while not self._stopping.is_set():
                key = rng.choice(KEYS)
                try:
                    result = client.get(table, key, consistency="any")
                except ReadError as exc:
                    failure: str | None = f"{key}: {exc}"
                else:
                    ok = result.found and int(result.value) >= self._floor[key]
                    failure = None if ok else f"{key}: answered {result}"
                run.reads += 1
                run.reads_during_outage += self.outage.is_set()
                if failure is not None:
                    run.failed_reads.append(failure)
                time.sleep(READ_INTERVAL)

    def _watch(self) -> None:
        """Every 0.1 s: is every live node in the membership, is it stale."""
        deployment, run = self._deployment, self._run
        while not self._stopping.wait(0.1):
            live = {node.endpoint: name for name, node in deployment.nodes.items() if node.alive}
            announced = {m.endpoint for m in deployment.membership.members()}
            missing = sorted(name for endpoint, name in live.items() if endpoint not in announced)
            if missing:
                run.member_losses.append(f"{time.monotonic() - self.started:.1f}: {missing}")
            if deployment.membership.stale:
                run.stale_s += 0.1


def client_of(deployment: Deployment) -> Client:
    targets = [deployment.nodes["router"].endpoint, *(v.endpoint for v in deployment.views())]
    client = Client(targets, timeout=READ_TIMEOUT)
    if not client.wait_ready(BOUND):
        client.close()
        raise AssertionError(f"no membership from {targets} in {BOUND}s")
    return client


def partition_metadata(
    admin: AdminClient, topic: str, partitions: int
) -> dict[int, PartitionMetadata]:
    """partition -> metadata of ``topic``'s ``partitions`` partitions, as the cluster
    reports now.

    Asks until the answering node lists them all: one that has not yet applied the topic's
    creation from the metadata log lists none (another client may have asked one that had).
    """
    deadline = time.monotonic() + BOUND
    while True:
        info = admin.list_topics(topic, timeout=10).topics.get(topic)
        if info is not None and info.error is None and len(info.partitions) == partitions:
            return dict(info.partitions)
        assert time.monotonic() < deadline, f"no node listed the partitions of {topic!r}: {info}"
        time.sleep(0.1)


def leaders(admin: AdminClient, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    """partition -> (leader, in-sync replicas) of ``topic``, as the cluster reports now."""
    metadata = partition_metadata(admin, topic, partitions)
    return {p: (m.leader, len(m.isrs)) for p, m in metadata.items()}


def views_caught_up(deployment: Deployment) -> dict[str, tuple[int, int]]:
    """Once nothing more is written: waits until every view pod applied the table topic to
    its end; returns per pod (rows applied, stores wiped) and, under ``""``, (the table's
    end offsets summed, 0)."""
    positions: dict[str, tuple[int, int]] = {}
    reader = Consumer({"bootstrap.servers": deployment.brokers, "group.id": "watermarks"})
    ends: dict[int, int] = {}

    def caught_up() -> bool:
        for p in range(deployment.partitions):
            ends[p] = high_watermark(reader, TopicPartition(deployment.table, p), timeout=10)
        for view in deployment.views():
            rows, offsets, wiped = view_position(deployment.metrics_of(view.name), deployment.table)
            if offsets != ends:
                return False
            positions[view.name] = (rows, wiped)
        return True

    try:
        wait_until(caught_up, BOUND, f"the view pods to apply the table to its end {ends}")
    finally:
        reader.close()
    return {**positions, "": (sum(ends.values()), 0)}


def view_position(samples: Samples, table: str) -> tuple[int, dict[int, int], int]:
    """(rows applied, partition -> applied offset, stores wiped) of a view pod."""
    rows = wiped = 0
    offsets: dict[int, int] = {}
    for (name, labels), value in samples.items():
        label = dict(labels)
        if label.get("table") != table:
            continue
        if name == "goka_view_applied_rows_total":
            rows += int(value)
        elif name == "goka_view_wiped_stores_total":
            wiped += int(value)
        elif name == "goka_partition_applied_offset":
            offsets[int(label["partition"])] = int(value)
    return rows, offsets, wiped


def run_broker_faults(kafka: LocalKafka, root: Path, down_seconds: float = 20.0) -> FaultRun:
    """One run of the scenario of the module on ``kafka`` (3 nodes), its files (the nodes'
    stores and logs) in ``root``."""
    started = time.monotonic()
    brokers, run = kafka.bootstrap, FaultRun(down_s=down_seconds)
    deployment = Deployment(brokers, ProcessGroup(), root, partitions=PARTITIONS)
    try:
        deployment.start_processors(3, "--standby-replicas", "1")
        with goka.Emitter(brokers, deployment.topic, codec.String()) as emitter:
            for key in KEYS:
                emitter.emit_sync(key, "click")
                run.delivered[key] += 1
        floor = dict(run.delivered)
        wait_until(
            lambda: len(deployment.active_owners()) == PARTITIONS,
            BOUND,
            "the processors to run every partition",
        )
        deployment.start_view_and_router(
            "--view-group", "faults", "--replicas", "2", views=2, metrics=True
        )
        deployment.wait_settled(BOUND)
        with client_of(deployment) as client:
            wait_until(
                lambda: all(
                    r.found and int(r.value) >= floor[r.key.decode()]
                    for r in client.get_many(deployment.table, KEYS, consistency="any")
                ),
                BOUND,
                "every click to be counted",
            )
        before = views_caught_up(deployment)

        load = _Load(deployment, run, floor).start()
        wait_until(lambda: run.reads >= 200, BOUND, "reads under load")
        admin = AdminClient({"bootstrap.servers": brokers})
        discovery = leaders(admin, deployment.discovery_topic, 1)[0][0]
        table = leaders(admin, deployment.table, deployment.partitions)
        run.killed_broker = discovery
        run.table_partition = min(p for p, (leader, _) in table.items() if leader == discovery)
        kafka.kill(discovery)
        killed = time.monotonic()
        load.outage.set()
        run.leader_moved_s = wait_until(
            lambda: leaders(admin, deployment.discovery_topic, 1)[0][0] not in (discovery, -1),
            BOUND,
            "the discovery partition to get another leader",
        )
        time.sleep(max(0.0, killed + down_seconds - time.monotonic()))  # the outage itself
        kafka.restart(discovery)
        run.in_sync_again_s = wait_until(
            lambda: all(
                isr == 3
                for topic, partitions in (
                    (deployment.discovery_topic, 1),
                    (deployment.table, deployment.partitions),
                )
                for _, isr in leaders(admin, topic, partitions).values()
            ),
            BOUND,
            "every replica back in sync",
        )
        load.outage.clear()
        delivered_then = sum(run.delivered.values())
        wait_until(
            lambda: sum(run.delivered.values()) >= delivered_then + 500,
            BOUND,
            "more clicks delivered after the restart",
        )
        load.stop()

        with client_of(deployment) as client:
            read_error: list[str] = []

            def counted() -> bool:
                try:
                    results = client.get_many(deployment.table, KEYS, consistency="active")
                except ReadError as exc:  # a partition between owners
                    read_error[:] = [str(exc)]
                    return False
                read_error.clear()
                run.counts = {r.key.decode(): int(r.value) for r in results if r.found}
                return not run.missing_or_short

            try:
                wait_until(counted, BOUND, "every delivered click to be counted")
            except AssertionError as exc:
                raise AssertionError(
                    f"{exc}; the last read failed with {read_error}\n{run.describe()}"
                ) from exc
        after = views_caught_up(deployment)
        written = after[""][0] - before[""][0]
        for view in deployment.views():
            run.view_rows_replayed[view.name] = after[view.name][0] - before[view.name][0] - written
            run.view_wiped_stores[view.name] = after[view.name][1]
    finally:
        run.exited = {
            name: node.proc.returncode for name, node in deployment.nodes.items() if not node.alive
        }
        run.exit_logs = {name: deployment.log(name).read_text()[-2000:] for name in run.exited}
        deployment.close()
    run.seconds = time.monotonic() - started
    return run
