"""Reads over gRPC while a partition's owner is SIGKILLed: three click-count processors
serving their partitions, a view server holding a full copy and a router, each an OS process.

With consistency ANY the view answers while the partition moves: no read fails. With ACTIVE
only the owner may answer: reads fail until a survivor runs the partition, then succeed again;
the test measures that time (``print`` shows it with ``-s``; the report has it as the
``active_recovery_seconds`` property). Each test kills one owner of the shared deployment.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator

import pytest

import goka
from goka import codec
from goka.partitioner import murmur2
from tests.conftest import ProcessGroup
from tests.support.serving import Deployment, ServingNode, wait_until
from viewsvc.client import Client, Consistency, GetResult, ReadError

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 6
KEYS = [f"user-{i}" for i in range(300)]
CLICKS = 2
"""Clicks per key; a count may end higher after a failover (at-least-once), never lower."""
READ_TIMEOUT = 2.0
BOUND = 60.0
"""Bounds every wait: the group notices a killed member after the 6 s session timeout."""


@pytest.fixture(scope="module")
def deployment(goka_brokers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("grpc-failover")
    deployment = Deployment(goka_brokers, ProcessGroup(), root, partitions=PARTITIONS)
    try:
        deployment.start_processors(3)
        with goka.Emitter(goka_brokers, deployment.topic, codec.String()) as emitter:
            for key in KEYS * CLICKS:
                emitter.emit(key, "click")
        wait_until(
            lambda: len(deployment.active_owners()) == PARTITIONS,
            90,
            "the processors to run every partition",
        )
        deployment.start_view_and_router()
        deployment.wait_settled(BOUND)
        with client_of(deployment) as client:
            consistencies: tuple[Consistency, ...] = ("active", "any")
            for consistency in consistencies:  # the owners, then the view as well
                wait_until(
                    every_click_counted(client, deployment.table, consistency),
                    BOUND,
                    f"every click to be counted ({consistency})",
                )
        yield deployment
    finally:
        deployment.close()
        shutil.rmtree(root, ignore_errors=True)


def client_of(deployment: Deployment) -> Client:
    nodes = deployment.nodes
    client = Client([nodes["router"].endpoint, nodes["view"].endpoint], timeout=READ_TIMEOUT)
    if not client.wait_ready(BOUND):
        client.close()
        raise AssertionError(f"no membership from the router or the view in {BOUND}s")
    return client


def counted(results: list[GetResult]) -> bool:
    return all(r.found and int(r.value) >= CLICKS for r in results)


def every_click_counted(client: Client, table: str, consistency: Consistency) -> Callable[[], bool]:
    return lambda: counted(client.get_many(table, KEYS, consistency=consistency))


def partition_of(key: str) -> int:
    return murmur2(key.encode(), PARTITIONS)


def victim(deployment: Deployment) -> tuple[ServingNode, set[int]]:
    """A live processor owning partitions, and those partitions."""
    deployment.wait_settled(BOUND)
    owners = deployment.active_owners()
    node = min(
        (n for n in deployment.processors() if n.alive and n.endpoint in owners.values()),
        key=lambda n: n.name,
    )
    return node, {p for p, endpoint in owners.items() if endpoint == node.endpoint}


def kill(node: ServingNode) -> float:
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait(30)
    return time.monotonic()


def reassigned(deployment: Deployment, dead: ServingNode) -> bool:
    owners = deployment.active_owners()
    return len(owners) == PARTITIONS and dead.endpoint not in owners.values()


def test_any_reads_never_fail_while_an_owner_is_killed(
    deployment: Deployment, record_property: Callable[[str, object], None]
) -> None:
    node, partitions = victim(deployment)
    killed_keys = [key for key in KEYS if partition_of(key) in partitions]
    rng = random.Random(1)
    failed: list[tuple[str, str]] = []
    reads = 0

    def read(client: Client) -> None:
        nonlocal reads
        key = rng.choice(killed_keys if reads % 2 else KEYS)
        reads += 1
        try:
            result = client.get(deployment.table, key, consistency="any")
        except ReadError as exc:
            failed.append((key, str(exc)))
            return
        if not counted([result]):
            failed.append((key, f"wrong answer {result}"))

    with client_of(deployment) as client:
        for _ in range(50):
            read(client)
        killed_at = kill(node)
        while not reassigned(deployment, node):
            assert time.monotonic() - killed_at < BOUND, (
                f"partitions {partitions} not reassigned: {deployment.describe()}"
            )
            read(client)
        moved = time.monotonic() - killed_at
        for _ in range(50):  # and right after the move
            read(client)
    print(
        f"\nANY: {reads} reads, {len(failed)} failed; partitions {sorted(partitions)} ran on "
        f"a survivor {moved:.1f}s after SIGKILL of their owner"
    )
    record_property("any_reads", reads)
    record_property("any_reads_failed", len(failed))
    record_property("any_reassigned_seconds", round(moved, 2))
    assert not failed, f"{len(failed)} of {reads} reads failed, e.g. {failed[:3]}"


def test_active_reads_succeed_again_once_the_partition_is_reassigned(
    deployment: Deployment, record_property: Callable[[str, object], None]
) -> None:
    node, partitions = victim(deployment)
    partition = min(partitions)
    keys = [key for key in KEYS if partition_of(key) == partition]
    with client_of(deployment) as client:
        assert client.get(deployment.table, keys[0], consistency="active").found
        killed_at = kill(node)
        failures = 0
        while True:
            assert time.monotonic() - killed_at < BOUND, (
                f"ACTIVE reads of partition {partition} still fail after {BOUND}s: "
                f"{deployment.describe()}"
            )
            try:
                result = client.get(deployment.table, keys[failures % len(keys)],
                                    consistency="active")  # fmt: skip
                break
            except ReadError:
                failures += 1
                time.sleep(0.05)
        took = time.monotonic() - killed_at
    print(
        f"\nACTIVE: reads of partition {partition} succeeded again {took:.1f}s after SIGKILL "
        f"of its owner ({failures} reads failed meanwhile)"
    )
    record_property("active_recovery_seconds", round(took, 2))
    record_property("active_failed_reads", failures)
    assert counted([result])
    survivors = {
        deployment.processor_ids().get(n.endpoint) for n in deployment.processors() if n.alive
    }
    assert result.served_by in survivors
