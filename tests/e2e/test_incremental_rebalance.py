"""Rebalances that don't stop the world (KIP-848, ``--group-protocol consumer``): three
processors over 16 partitions under continuous input and ACTIVE reads; a fourth joins. The
partitions that stay with their member keep processing (their counts never stand still for
more than a second) and their ACTIVE reads never fail. (Under the classic protocol every
partition is revoked and recovers again: their reads fail while it happens.)"""

from __future__ import annotations

import time
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
    goka_brokers: str, tmp_path: Path
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
        standstill = {p: longest_standstill(traffic.reads[p], joined) for p in stayed}
        assert max(standstill.values()) <= 1.0, f"counts stood still: {standstill}"
    finally:
        if traffic is not None:
            traffic.stop()
        deployment.close()
