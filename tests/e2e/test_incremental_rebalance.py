"""Rebalances that don't stop the world (KIP-848, ``--group-protocol consumer``): three
processors over 16 partitions under continuous input and ACTIVE reads; a fourth joins. The
partitions that stay with their member are never revoked from it, keep counting, and their
ACTIVE reads never fail. (Under the classic protocol every partition is revoked and recovers
again: their reads fail while it happens.) How long their counts stood still is recorded as
the ``standstill_s`` property, not asserted: it is wall-clock time on a shared machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ProcessGroup
from tests.support.serving import Deployment, wait_until
from tests.support.traffic import Traffic, longest_standstill

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.kafka_only("KIP-848's consumer group protocol needs Apache Kafka 4.0+"),
]

PARTITIONS = 16
TIMEOUT = 90.0
PROTOCOL = ("--group-protocol", "consumer")


def test_a_member_joining_leaves_the_partitions_that_stay_running(
    goka_brokers: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    deployment = Deployment(goka_brokers, ProcessGroup(), tmp_path, partitions=PARTITIONS)
    traffic = None
    try:
        deployment.start_processors(3, *PROTOCOL)
        wait_until(
            lambda: len(deployment.active_owners()) == PARTITIONS, TIMEOUT, "3 members running"
        )
        deployment.start_view_and_router()
        deployment.wait_settled(TIMEOUT)
        router = deployment.nodes["router"].endpoint
        traffic = Traffic(
            goka_brokers, deployment.topic, deployment.table, [router], PARTITIONS, "active"
        )
        time.sleep(2.0)  # reads and counts flow
        before = deployment.active_owners()
        members = {node.endpoint: node.name for node in deployment.processors()}
        logged = {name: deployment.log(name).stat().st_size for name in members.values()}
        joined = time.monotonic()
        deployment.start_processors(1, *PROTOCOL)
        deployment.wait_settled(TIMEOUT)
        time.sleep(2.0)  # the partitions that stay go on beside the newcomer's
        traffic.stop()
        after = deployment.active_owners()
        stayed = sorted(p for p in range(PARTITIONS) if before[p] == after[p])
        newcomer = deployment.nodes["processor-3"].endpoint
        assert newcomer in after.values(), f"the fourth member took no partition: {after}"
        assert len(stayed) >= PARTITIONS // 4, f"only {stayed} stayed with their member"
        assert traffic.failed(stayed) == {}
        owner = {p: members[after[p]] for p in stayed}
        revoked = {
            p: p in deployment.released_partitions(owner[p], logged[owner[p]]) for p in stayed
        }
        assert revoked == dict.fromkeys(stayed, False)
        counts = {p: {c for at, c, _ in traffic.reads[p] if at >= joined} - {None} for p in stayed}
        assert [p for p in stayed if len(counts[p]) < 2] == [], "counts that did not move"
        standstill = {p: round(longest_standstill(traffic.reads[p], joined), 3) for p in stayed}
        record_property("standstill_s", standstill)
    finally:
        if traffic is not None:
            traffic.stop()
        deployment.close()
