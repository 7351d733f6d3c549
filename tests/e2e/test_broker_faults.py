"""A 3-node local Kafka (replication factor 3, ``min.insync.replicas=2``), one per module.

First the harness: a table keeps working, for a processor and a view, while one broker is
SIGKILLed and restarted on its ports and data (kill and restart are real).

Then broker faults under load (issue 12 item 6): the broker leading the discovery topic's
partition and a table partition is SIGKILLed under reads and writes and restarted 20 s later;
see tests/support/broker_faults.py for the deployment and the load. What must hold: nothing
crashes or exits; the membership never declares a live member dead because the discovery
topic was briefly unwritable; no view pod replays its partitions or wipes a store; at least
99.9% of ANY reads succeed; every key ends counted at least as often as its clicks were
delivered (at-least-once), none missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

import goka
from goka import codec
from goka._kafka_errors import end_offsets
from goka.localkafka import LocalKafka
from goka.pytest_plugin import local_kafka
from tests.conftest import FAST_GROUP_CONFIG, RunningProcessor, unique
from tests.support.broker_faults import KEYS, partition_metadata, run_broker_faults
from tests.support.counting_member import count
from tests.support.serving import wait_until
from tests.support.topics import high_watermarks

pytestmark = [pytest.mark.broker, pytest.mark.slow]

HARNESS_PARTITIONS = 3
HARNESS_KEYS = [f"user-{i}" for i in range(12)]
HARNESS_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalKafka]:
    """Shared by the module's tests; each leaves every node running."""
    with local_kafka(brokers=3) as kafka:
        yield kafka


# -- the harness ------------------------------------------------------------------------


def replicas(brokers: str, topic: str, partitions: int) -> dict[int, tuple[list[int], list[int]]]:
    """partition -> (replicas, in-sync replicas) of ``topic``."""
    metadata = partition_metadata(AdminClient({"bootstrap.servers": brokers}), topic, partitions)
    return {p: (sorted(m.replicas), sorted(m.isrs)) for p, m in metadata.items()}


def test_cluster_settings(cluster: LocalKafka) -> None:
    assert cluster.node_ids == [1, 2, 3]
    assert len(cluster.bootstrap.split(",")) == 3
    manager = goka.TopicManager(cluster.bootstrap)
    topic = unique("settings")
    manager.ensure_stream(topic, 2)
    assert manager.config(topic)["min.insync.replicas"] == "2"
    all_nodes = ([1, 2, 3], [1, 2, 3])
    assert replicas(cluster.bootstrap, topic, 2) == {0: all_nodes, 1: all_nodes}


def test_processor_and_view_survive_a_broker_killed_and_restarted(cluster: LocalKafka) -> None:
    brokers = cluster.bootstrap
    topic, group = unique("clicks"), unique("counter")
    table = goka.group_table(group)
    manager = goka.TopicManager(brokers, replication_factor=3, min_insync_replicas=2)
    manager.ensure_stream(topic, HARNESS_PARTITIONS)
    graph = goka.define_group(
        group, goka.input(topic, codec.String(), count), goka.persist(codec.Int64())
    )
    processor = goka.Processor(
        brokers,
        graph,
        replication_factor=3,
        min_insync_replicas=2,
        extra_config=FAST_GROUP_CONFIG,
    )
    runner = RunningProcessor(processor)
    expected = dict.fromkeys(HARNESS_KEYS, 0)

    def emit_all(emitter: goka.Emitter[str]) -> None:
        for key in HARNESS_KEYS:
            emitter.emit_sync(key, "click")
            expected[key] += 1

    try:
        goka.TopicManager(brokers).wait_for(table, HARNESS_TIMEOUT)
        assert replicas(brokers, table, HARNESS_PARTITIONS)[0][0] == [1, 2, 3]
        assert goka.TopicManager(brokers).config(table)["min.insync.replicas"] == "2"
        with (
            goka.Emitter(brokers, topic, codec.String()) as emitter,
            goka.View(brokers, table, codec.Int64()) as view,
        ):
            assert view.wait_running(HARNESS_TIMEOUT)
            emit_all(emitter)
            wait_until(
                lambda: dict(view.items()) == expected,
                HARNESS_TIMEOUT,
                "the view saw the first round",
            )

            killed_pid = cluster.pid(2)
            assert killed_pid is not None
            cluster.kill(2)
            assert not cluster.running(2)
            with pytest.raises(ProcessLookupError):
                os.kill(killed_pid, 0)
            emit_all(emitter)  # acks=all is met by the two in-sync replicas left
            wait_until(
                lambda: dict(view.items()) == expected,
                HARNESS_TIMEOUT,
                "the view followed without node 2",
            )

            cluster.restart(2)
            assert cluster.running(2) and cluster.pid(2) != killed_pid
            wait_until(
                lambda: all(
                    isr == [1, 2, 3]
                    for _, isr in replicas(brokers, table, HARNESS_PARTITIONS).values()
                ),
                HARNESS_TIMEOUT,
                "node 2 is back in sync for every table partition",
            )
            emit_all(emitter)
            wait_until(
                lambda: dict(view.items()) == expected,
                HARNESS_TIMEOUT,
                "the view saw the last round",
            )
        assert runner.error is None
    finally:
        assert runner.stop() is None


def test_end_offsets_follow_a_leader_change_and_report_no_end_without_a_leader(
    cluster: LocalKafka,
) -> None:
    """The ends an assigned partition recovers to (``goka._recovery``) come from an admin
    client made once per reader. librdkafka's admin ListOffsets answers -1001 for a partition
    whose leader is down (taken for an end, the partition would count as caught up at any
    offset). And asked first after the leader changed and the old one came back, it fails
    with FENCED_LEADER_EPOCH for as long as its metadata is not refreshed: a processor
    assigned such a partition never finished recovering it (seen in CI)."""
    brokers = cluster.bootstrap
    topic = unique("ends")
    goka.TopicManager(brokers, replication_factor=3).ensure_stream(topic, HARNESS_PARTITIONS)
    with goka.Emitter(brokers, topic, codec.String()) as emitter:
        for i, key in enumerate(HARNESS_KEYS):
            emitter.emit_sync(key, str(i))
    admin = AdminClient({"bootstrap.servers": brokers})
    asked = {(topic, p) for p in range(HARNESS_PARTITIONS)}
    expected = {
        (topic, p): end for p, end in high_watermarks(brokers, topic, HARNESS_PARTITIONS).items()
    }
    assert sum(expected.values()) == len(HARNESS_KEYS)
    assert end_offsets(admin, asked, 5.0) == expected  # the cache now holds leaders and epochs

    leader = partition_metadata(admin, topic, HARNESS_PARTITIONS)[0].leader
    cluster.kill(leader)
    try:
        assert end_offsets(admin, asked, 5.0) is None  # no leader elected yet for partition 0
        observer = AdminClient({"bootstrap.servers": brokers})
        wait_until(
            lambda: (
                partition_metadata(observer, topic, HARNESS_PARTITIONS)[0].leader
                not in (leader, -1)
            ),
            HARNESS_TIMEOUT,
            "partition 0 to get another leader",
        )
    finally:
        cluster.restart(leader)
    # nothing asked since the kill: the admin client's cache still has the old leader epochs
    wait_until(
        lambda: end_offsets(admin, asked, 5.0) == expected,
        HARNESS_TIMEOUT,
        f"the ends asked once node {leader} is back",
    )


# -- broker faults under load ------------------------------------------------------------


def test_a_broker_killed_under_load_loses_nothing_and_fails_no_any_read(
    cluster: LocalKafka, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    run = run_broker_faults(cluster, tmp_path / "faults")
    for name in ("reads", "read_success", "leader_moved_s", "surplus", "stale_s"):
        record_property(name, getattr(run, name))
    figures = run.describe()
    print(figures)  # shown with -s
    assert run.exited == {}, figures
    assert run.member_losses == [], figures
    assert run.view_wiped_stores == {"view-0": 0, "view-1": 0}, figures
    assert run.view_rows_replayed == {"view-0": 0, "view-1": 0}, figures
    assert run.reads_during_outage > 0, figures
    assert run.read_success >= 0.999, figures
    assert run.missing_or_short == {}, figures
    assert set(run.counts) == set(run.delivered) == set(KEYS), figures
