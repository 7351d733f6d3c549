"""Discovery across processes: three announcing click-count members, a membership table read
by this (other) process, a SIGKILL, and a graceful stop.

The bounds come from the design: a member is dead after 3 missed heartbeats, and a killed
member's partitions move after the session timeout; SLACK covers polling and the broker's
rebalance (about 3 s on the dev broker).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from discovery import Membership
from goka import codec
from tests.conftest import ROOT, ProcessGroup, unique
from tests.support.clickcount import running, start_member
from tests.support.serving import free_port, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

HEARTBEAT = 2.0
SESSION_TIMEOUT = 6.0  # FAST_GROUP_ARGS
SLACK = 5.0
PARTITIONS = 6


def active_owners(membership: Membership, table: str) -> dict[int, tuple[str, str, int]]:
    """partition -> (active owner, its state, its lag), for partitions with an active owner."""
    owners = {}
    for partition in range(PARTITIONS):
        found = membership.owners(table, partition)
        if found and found[0].kind == "active":
            owners[partition] = (found[0].endpoint, found[0].state, found[0].lag)
    return owners


def test_membership_follows_settling_sigkill_and_graceful_stop(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    topic = topic_factory("clicks", partitions=PARTITIONS)
    group = unique("announced")
    discovery_topic = unique("discovery")
    table = goka.group_table(group)
    endpoints = [f"127.0.0.1:{free_port()}" for _ in range(3)]  # announced only
    stats = [tmp_path / f"member-{i}.json" for i in range(3)]
    members = [
        start_member(
            processes,
            goka_brokers,
            topic,
            group,
            tmp_path / f"store-{i}",
            "--advertise",
            endpoints[i],
            "--discovery-topic",
            discovery_topic,
            "--heartbeat",
            str(HEARTBEAT),
            stats_file=stats[i],
        )  # fmt: skip
        for i in range(3)
    ]
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for i in range(3000):
            emitter.emit(f"user-{i % 300}", "click")

    with Membership(goka_brokers, discovery_topic) as membership:
        assert membership.wait_synced(30)

        def settled() -> bool:
            held = [running(path) for path in stats]
            return all(held) and sorted(p for h in held for p in h) == [
                str(p) for p in range(PARTITIONS)
            ]

        wait_until(settled, 90, "the group to settle with every partition running")

        def announced_settled() -> bool:
            owners = active_owners(membership, table)
            return (
                len(membership.members()) == 3
                and len(owners) == PARTITIONS
                and all(state == "running" and lag == 0 for _, state, lag in owners.values())
            )

        took = wait_until(announced_settled, 3 * HEARTBEAT + SLACK, "announcements to settle")
        assert took <= 3 * HEARTBEAT + SLACK
        owners = active_owners(membership, table)
        assert {endpoint for endpoint, _, _ in owners.values()} == set(endpoints)
        assert membership.locate(table, "user-7").owners[0].endpoint in endpoints

        members[0].send_signal(signal.SIGKILL)
        members[0].wait(30)

        def taken_over() -> bool:
            live = {m.endpoint for m in membership.members()}
            owners = active_owners(membership, table)
            return (
                endpoints[0] not in live
                and len(owners) == PARTITIONS
                and all(e != endpoints[0] and s == "running" for e, s, _ in owners.values())
            )

        bound = 3 * HEARTBEAT + SESSION_TIMEOUT + SLACK
        wait_until(taken_over, bound, "the survivors to own every partition")

        members[1].send_signal(signal.SIGTERM)
        assert members[1].wait(60) == 0
        gone = wait_until(
            lambda: endpoints[1] not in {m.endpoint for m in membership.members()},
            HEARTBEAT,  # the tombstone removes it at once, not after 3 missed heartbeats
            "the tombstone to remove the stopped member",
        )
        assert gone < HEARTBEAT

    listing = subprocess.run(
        [sys.executable, "-m", "viewsvc", "members", "--brokers", goka_brokers,
         "--topic", discovery_topic, "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    [member] = json.loads(listing.stdout)["members"]
    assert member["endpoint"] == endpoints[2] and member["role"] == "processor"
    [held] = member["tables"]
    assert held["topic"] == table and held["partition_count"] == PARTITIONS
    assert held["partitioner"] == "murmur2" and held["value_codec"] == "int64"
