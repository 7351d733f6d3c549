"""The 3-node local Kafka: a table with replication factor 3 keeps working, for a processor
and a view, while one broker is SIGKILLed and restarted on its ports and data.

The full fault suite builds on this harness; here it proves that kill and restart are real.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient

import goka
from goka import codec
from goka.localkafka import LocalKafka
from goka.pytest_plugin import local_kafka
from tests.conftest import FAST_GROUP_CONFIG, RunningProcessor, unique

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 3
KEYS = [f"user-{i}" for i in range(12)]
TIMEOUT = 90.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalKafka]:
    with local_kafka(brokers=3) as kafka:
        yield kafka


def count(ctx: goka.Context, _: str) -> None:
    ctx.set_value((ctx.value() or 0) + 1)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def replicas(brokers: str, topic: str) -> dict[int, tuple[list[int], list[int]]]:
    """partition -> (replicas, in-sync replicas) of ``topic``."""
    metadata = AdminClient({"bootstrap.servers": brokers}).list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions.values()
    return {p.id: (sorted(p.replicas), sorted(p.isrs)) for p in partitions}


def test_cluster_settings(cluster: LocalKafka) -> None:
    assert cluster.node_ids == [1, 2, 3]
    assert len(cluster.bootstrap.split(",")) == 3
    manager = goka.TopicManager(cluster.bootstrap)
    topic = unique("settings")
    manager.ensure_stream(topic, 2)
    assert manager.config(topic)["min.insync.replicas"] == "2"
    all_nodes = ([1, 2, 3], [1, 2, 3])
    assert replicas(cluster.bootstrap, topic) == {0: all_nodes, 1: all_nodes}


def test_processor_and_view_survive_a_broker_killed_and_restarted(cluster: LocalKafka) -> None:
    brokers = cluster.bootstrap
    topic, group = unique("clicks"), unique("counter")
    table = goka.group_table(group)
    manager = goka.TopicManager(brokers, replication_factor=3, min_insync_replicas=2)
    manager.ensure_stream(topic, PARTITIONS)
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
    expected = dict.fromkeys(KEYS, 0)

    def emit_all(emitter: goka.Emitter[str]) -> None:
        for key in KEYS:
            emitter.emit_sync(key, "click")
            expected[key] += 1

    try:
        goka.TopicManager(brokers).wait_for(table, TIMEOUT)
        assert replicas(brokers, table)[0][0] == [1, 2, 3]
        assert goka.TopicManager(brokers).config(table)["min.insync.replicas"] == "2"
        with (
            goka.Emitter(brokers, topic, codec.String()) as emitter,
            goka.View(brokers, table, codec.Int64()) as view,
        ):
            assert view.wait_running(TIMEOUT)
            emit_all(emitter)
            wait_until(lambda: dict(view.items()) == expected, "the view saw the first round")

            killed_pid = cluster.pid(2)
            assert killed_pid is not None
            cluster.kill(2)
            assert not cluster.running(2)
            with pytest.raises(ProcessLookupError):
                os.kill(killed_pid, 0)
            emit_all(emitter)  # acks=all is met by the two in-sync replicas left
            wait_until(lambda: dict(view.items()) == expected, "the view followed without node 2")

            cluster.restart(2)
            assert cluster.running(2) and cluster.pid(2) != killed_pid
            wait_until(
                lambda: all(isr == [1, 2, 3] for _, isr in replicas(brokers, table).values()),
                "node 2 is back in sync for every table partition",
            )
            emit_all(emitter)
            wait_until(lambda: dict(view.items()) == expected, "the view saw the last round")
        assert runner.error is None
    finally:
        assert runner.stop() is None
