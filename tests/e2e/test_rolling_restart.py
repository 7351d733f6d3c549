"""A rolling restart (static membership and KIP-848's incremental rebalances): the three
members of a StatefulSet restarted one by one, under continuous clicks and ANY reads through
a router. No read fails (a member's standbys answer for the partitions of the one away), no
click is lost, and no partition of a member not being restarted is revoked: the broker keeps
a static member's partitions for it through its session timeout, and gives them back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import ProcessGroup
from tests.support.clickcount import running, stats_of
from tests.support.groups import set_group_session_timeout
from tests.support.serving import Deployment, wait_until
from tests.support.traffic import Traffic
from viewsvc.client import Client

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.kafka_only("static membership is the coordinator's (Kafka's) work"),
]

PARTITIONS = 8
MEMBERS = 3
TIMEOUT = 90.0
SESSION_MS = 30_000
"""The group's session timeout: long enough for a member to be back (LocalKafka's 6 s may
not be on a loaded machine), so the broker waits for it instead of moving its partitions."""


def standbys_caught_up(deployment: Deployment) -> bool:
    """Every partition has a running active owner and a caught-up standby."""
    for partition in range(PARTITIONS):
        owners = deployment.membership.owners(deployment.table, partition)
        kinds = {o.kind for o in owners if o.state == "running"}
        if kinds != {"active", "standby"}:
            return False
    return True


def test_a_rolling_restart_fails_no_any_read_loses_nothing_and_revokes_nothing_else(
    goka_brokers: str, tmp_path: Path
) -> None:
    deployment = Deployment(goka_brokers, ProcessGroup(), tmp_path, partitions=PARTITIONS)
    traffic = None
    try:
        set_group_session_timeout(goka_brokers, deployment.group, SESSION_MS)
        deployment.start_processors(MEMBERS, "--standby-replicas", "1", stats=True, static=True)
        names = [node.name for node in deployment.processors()]
        stats = {name: deployment.stats_file(name) for name in names}
        deployment.start_view_and_router(views=0)
        deployment.wait_settled(TIMEOUT)
        wait_until(lambda: standbys_caught_up(deployment), TIMEOUT, "a standby per partition")
        router = deployment.nodes["router"].endpoint
        traffic = Traffic(
            goka_brokers, deployment.topic, deployment.table, [router], PARTITIONS, "any"
        )
        time.sleep(1.0)  # reads and counts flow
        for name in names:
            others = [n for n in names if n != name]
            held = {n: running(stats[n]) for n in names}
            revoked = {n: stats_of(stats[n])["revoked_partitions"] for n in others}
            deployment.restart_processor(name, TIMEOUT)
            wait_until(
                lambda name=name, held=held: (
                    running(stats[name]) == held[name]
                    and deployment.settled()
                    and standbys_caught_up(deployment)
                ),
                TIMEOUT,
                f"{name} back on its partitions {sorted(held[name])}",
            )
            assert {n: running(stats[n]) for n in others} == {n: held[n] for n in others}
            after = {n: stats_of(stats[n])["revoked_partitions"] for n in others}
            assert after == revoked, f"restarting {name} revoked partitions of others"
        delivered = traffic.stop()
        assert traffic.failed() == {}
        assert sum(len(reads) for reads in traffic.reads.values()) > 100 * PARTITIONS
        with Client([router], timeout=5.0) as client:

            def all_counted() -> bool:
                keys = list(delivered)
                results = client.get_many(deployment.table, keys, consistency="active")
                counts = [int(r.value) if r.found else 0 for r in results]
                return all(c >= delivered[k] for k, c in zip(keys, counts, strict=True))

            wait_until(all_counted, TIMEOUT, "every delivered click counted")
    finally:
        if traffic is not None:
            traffic.stop()
        deployment.close()
