"""standby_replicas=1 end to end: one hot standby per partition, placed on the consistent-hash
ring over the announced members of the group, re-placed when a member leaves, and taking
over with only the delta to replay."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from discovery import Membership
from goka import codec
from tests.conftest import ProcessGroup, unique
from tests.support.clickcount import partition_stats, start_member
from tests.support.serving import free_port

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 6
TIMEOUT = 90.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def placement(membership: Membership, table: str) -> dict[int, dict[str, list[str]]]:
    """partition -> {"active": [endpoints], "standby": [endpoints of caught-up standbys]}"""
    result: dict[int, dict[str, list[str]]] = {}
    for partition in range(PARTITIONS):
        kinds: dict[str, list[str]] = {"active": [], "standby": []}
        for owner in membership.owners(table, partition):
            if owner.state == "running" and owner.kind in kinds:
                kinds[owner.kind].append(owner.endpoint)
        result[partition] = kinds
    return result


def one_standby_each(membership: Membership, table: str, endpoints: set[str]) -> bool:
    placed = placement(membership, table)
    return all(
        len(k["active"]) == 1
        and len(k["standby"]) == 1
        and k["active"] != k["standby"]
        and set(k["active"] + k["standby"]) <= endpoints
        for k in placed.values()
    )


def test_one_standby_per_partition_replaced_on_leave_and_taking_over(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    topic = topic_factory("clicks", partitions=PARTITIONS)
    group, discovery_topic = unique("standby"), unique("discovery")
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
            "0.5",
            "--standby-replicas",
            "1",
            stats_file=stats[i],
        )  # fmt: skip
        for i in range(3)
    ]
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for i in range(12_000):
            emitter.emit(f"user-{i % 2400}", "click")
    goka.TopicManager(goka_brokers).wait_for(table, TIMEOUT)
    with goka.View(goka_brokers, table, codec.Int64()) as view:  # every click counted
        assert view.wait_running(TIMEOUT)
        wait_until(lambda: sum(v for _, v in view.items()) >= 12_000, "every click counted")

    with Membership(goka_brokers, discovery_topic) as membership:
        assert membership.wait_synced(30)

        def states(path: Path) -> list[str]:
            return [s["state"] for s in partition_stats(path).values()]

        def settled() -> bool:
            """Every member runs its share and the standbys are placed, as announced and as
            each member's own stats say (a member that joins late rebalances the group)."""
            running = [states(path).count("running") for path in stats]
            return running == [2, 2, 2] and one_standby_each(membership, table, set(endpoints))

        wait_until(settled, "three members running two partitions each, one standby each")
        # bounded: one standby per partition, not every partition everywhere
        wait_until(
            lambda: sum(states(path).count("standby") for path in stats) == PARTITIONS,
            f"exactly {PARTITIONS} standbys across the members",
        )
        assert settled()

        members[2].send_signal(signal.SIGTERM)  # a member leaves: standbys are re-placed
        assert members[2].wait(60) == 0

        def survivor_standbys_caught_up() -> bool:
            held = partition_stats(stats[1])
            standbys = [s for s in held.values() if s["state"] == "standby"]
            return bool(standbys) and all(s["caught_up"] for s in standbys)

        wait_until(
            lambda: (
                one_standby_each(membership, table, set(endpoints[:2]))
                and survivor_standbys_caught_up()
            ),
            "the standbys to be re-placed on the two remaining members and caught up",
        )
        survivor_before = partition_stats(stats[1])
        standby_here = {p for p, s in survivor_before.items() if s["state"] == "standby"}
        # what the standbys hold (a standby placed where its partition ran before has
        # replayed nothing itself, so the held offsets, not its replay count, are the base)
        table_records = sum(survivor_before[p]["table"]["offset"] or 0 for p in standby_here)
        assert table_records >= 100  # enough for "only the delta" to mean something

        members[0].send_signal(signal.SIGKILL)
        wait_until(
            lambda: (
                {p for p, s in partition_stats(stats[1]).items() if s["state"] == "running"}
                == {str(p) for p in range(PARTITIONS)}
            ),
            "the survivor to run every partition",
        )
    after = partition_stats(stats[1])
    replayed = sum(after[p]["recovered_records"] for p in standby_here)
    assert replayed < table_records / 10, (replayed, table_records)
