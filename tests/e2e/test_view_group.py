"""A view group on loopback, as OS processes: two click-count processors, view pods of one view
group holding each partition on R=2 pods, and a router. Reads of random keys (consistency ANY)
run all along, through the smart client and through the router, while the group changes the
way a Deployment of 3 view pods does:

1. a pod is SIGTERMed (it drains and exits 0), and a new pod replaces it;
2. a pod is SIGKILLed (it stays in the membership until 3 heartbeats are missed), and a new
   pod replaces it;
3. the group is scaled up to a fourth pod.

No read fails. After every change the membership settles on exactly the placement of
``discovery.placement`` over the live pods: every partition held by R running pods, no pod
holding more (handed-over partitions are dropped once their new holders run them). A joining
pod takes over only placements: each partition's holders change only by the joiner; the
fourth pod gets about 1/N of the placements.

The processors do not serve the table (they announce nothing), so every read is answered by
a view pod; the view pods are told the table's partitioner and codec. Member ids are fixed
(``view-0`` ...; the discovery topic is the test's own), so the placement is too.
``print`` shows the settle times with ``-s``.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

import goka
from discovery import Membership, placement
from goka import codec
from tests.conftest import ProcessGroup, unique
from tests.support.clickcount import start_member
from tests.support.serving import SERVING, health, serving_line, wait_until
from viewsvc.client import Client, ReadError
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import open_channel

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 8
REPLICAS = 2
KEYS = [f"user-{i}" for i in range(1000)]
CLICKS = 2
"""Clicks per key; a count may end higher (at-least-once processing), never lower."""
HEARTBEAT = "0.5"
GRACE = 5.0
READ_TIMEOUT = 5.0
SETTLED_READS = 300
"""Reads made in each settled state, between the changes."""
BOUND = 60.0
"""Bounds every wait: a settle takes seconds (a new pod starts, recovers and announces)."""


class Group:
    """The view pods, the router and the membership of one deployment."""

    def __init__(
        self,
        brokers: str,
        processes: ProcessGroup,
        root: Path,
        table: str,
        discovery_topic: str,
    ) -> None:
        self.brokers = brokers
        self.processes = processes
        self.root = root
        self.table = table
        self.discovery_topic = discovery_topic
        self.view_group = unique("views")
        self.pods: dict[str, tuple[subprocess.Popen[str], str]] = {}
        """Member id -> (process, endpoint) of the pods started, dead ones too."""
        self.live: list[str] = []
        self.membership = Membership(brokers, discovery_topic).start()
        self.membership.wait_synced(BOUND)

    def common(self) -> tuple[str, ...]:
        return (
            "--brokers", self.brokers, "--listen", "127.0.0.1:0", "--heartbeat", HEARTBEAT,
            "--discovery-topic", self.discovery_topic,
        )  # fmt: skip

    def start_router(self) -> str:
        proc = self.processes.start("-m", "viewsvc", "route", *self.common())
        return serving_line(proc, BOUND)[1]

    def start_pods(self, *member_ids: str) -> None:
        """Starts the pods, then waits for each one's ``serving`` line."""
        procs = {member_id: self._start_pod(member_id) for member_id in member_ids}
        for member_id, proc in procs.items():
            announced_id, endpoint = serving_line(proc, BOUND)
            assert announced_id == member_id
            self.pods[member_id] = (proc, endpoint)
            self.live.append(member_id)

    def _start_pod(self, member_id: str) -> subprocess.Popen[str]:
        return self.processes.start(
            "-m", "viewsvc", "serve-view", *self.common(), "--table", self.table,
            "--partitioner", "murmur2", "--value-codec", "int64",
            "--storage", str(self.root / member_id), "--view-group", self.view_group,
            "--replicas", str(REPLICAS), "--member-id", member_id, "--grace", str(GRACE),
        )  # fmt: skip

    def stop_pod(self, member_id: str, signum: signal.Signals) -> int:
        """Sends ``signum``; returns the exit code."""
        proc = self.pods[member_id][0]
        proc.send_signal(signum)
        self.live.remove(member_id)
        return proc.wait(GRACE + 30)

    def member_ids(self) -> set[str]:
        return {member.member_id for member in self.membership.members()}

    def placed(self) -> dict[int, list[str]]:
        """Where the live pods must hold the partitions."""
        return placement(self.live, PARTITIONS, REPLICAS)

    def held(self) -> dict[str, dict[int, str]] | None:
        """Member id -> {partition: state} of the announced pods of the group; None while a
        pod does not announce the table yet."""
        found: dict[str, dict[int, str]] = {}
        for member in self.membership.members():
            if member.role != "view" or member.group != self.view_group:
                continue
            info = member.table(self.table)
            if info is None:
                return None
            found[member.member_id] = {p.partition: p.state for p in info.partitions}
        return found

    def settled(self) -> bool:
        """Exactly the live pods are announced, each holding its placements (no more), all
        running, and each pod says SERVING."""
        held = self.held()
        if held is None or sorted(held) != sorted(self.live):
            return False
        placed = self.placed()
        for member_id, partitions in held.items():
            mine = {p for p, pods in placed.items() if member_id in pods}
            if set(partitions) != mine or set(partitions.values()) != {"running"}:
                return False
        return all(health(self.pods[m][1]) == SERVING for m in self.live)

    def wait_settled(self, what: str) -> float:
        took = wait_until(self.settled, BOUND, f"{what}: live {self.live}, held {self.held()}")
        running: Counter[int] = Counter()
        for partitions in (self.held() or {}).values():
            running.update(p for p, state in partitions.items() if state == "running")
        assert running == Counter({p: REPLICAS for p in range(PARTITIONS)}), running
        print(f"{what}: settled in {took:.1f}s on {self.live}")
        return took

    def close(self) -> None:
        self.membership.stop()


class Reader:
    """Reads random keys in a thread until stopped: by turns through the smart client and
    through the router. Every failure and wrong answer is kept."""

    def __init__(self, client: Client, router: str, table: str) -> None:
        self._client = client
        self._channel = open_channel(router)
        self._router = table_pb2_grpc.TableServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._table = table
        self._rng = random.Random(7)
        self.reads = 0
        self.phase = "settled"
        """What is happening to the group (set by the test; failures name it)."""
        self.failed: list[str] = []
        self.served_by: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            key, via = self._rng.choice(KEYS), "router" if self.reads % 2 else "client"
            try:
                if via == "router":
                    request = pb.GetRequest(
                        table=self._table,
                        key=key.encode(),
                        options=pb.ReadOptions(consistency=pb.CONSISTENCY_ANY),
                    )
                    response = self._router.Get(request, timeout=READ_TIMEOUT)
                    found, value, served_by = response.found, response.value, response.served_by
                else:
                    result = self._client.get(
                        self._table, key, consistency="any", timeout=READ_TIMEOUT
                    )
                    found, value, served_by = result.found, result.value, result.served_by
            except ReadError as exc:
                self.failed.append(f"{self.phase}, {via}, {key}: {exc}")
            except grpc.RpcError as exc:
                self.failed.append(f"{self.phase}, {via}, {key}: {exc.code()} {exc.details()}")
            else:
                if not found or int(value) < CLICKS:
                    self.failed.append(
                        f"{self.phase}, {via}, {key}: wrong answer {found} {value!r} by {served_by}"
                    )
                self.served_by[served_by] += 1
            self.reads += 1

    def wait_reads(self, count: int) -> None:
        """Waits until ``count`` more reads were made (so reads span a settled state too)."""
        target = self.reads + count
        wait_until(lambda: self.reads >= target or self._stop.is_set(), BOUND, "reads")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(READ_TIMEOUT * 3)
        self._channel.close()
        assert not self._thread.is_alive(), "the reader did not stop"


@pytest.fixture
def clicks(
    goka_brokers: str, topic_factory: Callable[..., str], processes: ProcessGroup, tmp_path: Path
) -> Iterator[str]:
    """Two processors counting KEYS x CLICKS clicks; yields the table (deleted after)."""
    topic = topic_factory("clicks", partitions=PARTITIONS)
    group = unique("counter")
    table = goka.group_table(group)
    try:
        for i in range(2):
            start_member(processes, goka_brokers, topic, group, tmp_path / f"store-{i}")
        with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
            for key in KEYS * CLICKS:
                emitter.emit(key, "click")
        goka.TopicManager(goka_brokers).wait_for(table, BOUND)
        yield table
    finally:
        processes.cleanup()
        goka.TopicManager(goka_brokers).delete([table])


def joined(before: dict[int, list[str]], after: dict[int, list[str]], joiner: str) -> int:
    """Checks that only the joiner took placements over; returns how many it has."""
    for partition in range(PARTITIONS):
        assert set(after[partition]) - set(before[partition]) <= {joiner}, (
            f"partition {partition} moved from {before[partition]} to {after[partition]}, "
            f"not only to {joiner}"
        )
    return sum(joiner in pods for pods in after.values())


def test_reads_never_fail_while_view_pods_leave_crash_and_join(
    goka_brokers: str, clicks: str, processes: ProcessGroup, tmp_path: Path
) -> None:
    group = Group(goka_brokers, processes, tmp_path, clicks, unique("discovery"))
    try:
        router = group.start_router()
        group.start_pods("view-0", "view-1", "view-2")
        print()
        group.wait_settled("3 pods started")
        targets = [router, *(endpoint for _, endpoint in group.pods.values())]
        with Client(targets, timeout=READ_TIMEOUT) as client:
            assert client.wait_ready(BOUND)
            wait_until(
                lambda: all(
                    r.found and int(r.value) >= CLICKS
                    for r in client.get_many(clicks, KEYS, timeout=READ_TIMEOUT)
                ),
                BOUND,
                "every click counted and in the view pods",
            )
            reader = Reader(client, router, clicks)
            try:
                phases = run_changes(group, reader)
            finally:
                reader.stop()
        print(f"{reader.reads} reads, {len(reader.failed)} failed; answered by "
              f"{dict(sorted(reader.served_by.items()))}")  # fmt: skip
        assert not reader.failed, f"{len(reader.failed)} reads failed, e.g. {reader.failed[:3]}"
        assert set(reader.served_by) <= set(group.pods)
        assert all(reads > 0 for reads in phases.values()), f"a change without reads: {phases}"
    finally:
        group.close()
        processes.cleanup()  # before the topic goes: no announcement recreates it
        goka.TopicManager(goka_brokers).delete([group.discovery_topic])


def run_changes(group: Group, reader: Reader) -> dict[str, int]:
    """The changes, each followed by a settle; returns the reads made during each."""
    phases: dict[str, int] = {}

    def change(what: str) -> int:
        reader.phase = what
        return reader.reads

    def settle(what: str, reads_before: int) -> None:
        group.wait_settled(what)
        phases[what] = reader.reads - reads_before
        reader.phase = f"settled after {what}"
        reader.wait_reads(SETTLED_READS)

    reader.wait_reads(SETTLED_READS)
    # 1. a pod leaves gracefully: it drains and exits 0; a new one replaces it
    reads, started = change("view-0 left"), time.monotonic()
    assert group.stop_pod("view-0", signal.SIGTERM) == 0
    print(f"SIGTERM view-0: exited 0 after {time.monotonic() - started:.1f}s")
    settle("view-0 left", reads)
    before, reads = group.placed(), change("view-3 replaced it")
    group.start_pods("view-3")
    settle("view-3 replaced it", reads)
    joined(before, group.placed(), "view-3")

    # 2. a pod crashes: the membership drops it after 3 missed heartbeats; a new one replaces it
    reads = change("view-1 SIGKILLed")
    assert group.stop_pod("view-1", signal.SIGKILL) == -signal.SIGKILL
    listed = wait_until(lambda: "view-1" not in group.member_ids(), BOUND, "view-1 to expire")
    print(f"SIGKILL view-1: listed for {listed:.1f}s more (no tombstone: 3 heartbeats)")
    settle("view-1 SIGKILLed", reads)
    before, reads = group.placed(), change("view-4 replaced it")
    group.start_pods("view-4")
    settle("view-4 replaced it", reads)
    joined(before, group.placed(), "view-4")

    # 3. scale up to a fourth pod: it takes over about 1/N of the placements
    before, reads = group.placed(), change("view-5 scaled up")
    group.start_pods("view-5")
    settle("view-5 scaled up", reads)
    took = joined(before, group.placed(), "view-5")
    print(f"view-5 holds {took} of {PARTITIONS * REPLICAS} placements over 4 pods")
    assert 2 <= took <= 6, took  # about 16 / 4 = 4 (exactly 4 for these member ids)
    return phases
