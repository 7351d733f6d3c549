"""Rebalance callback, stats, stop with a timeout, and recovering ahead of joining."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import goka
from examples.clickcount import define_clickcount
from goka import codec
from tests.conftest import RunningProcessor, unique
from tests.integration.test_clickcount import emit_clicks
from tests.integration.test_processor_errors import committed
from tests.support.groups import set_group_session_timeout
from tests.support.serving import wait_until

pytestmark = pytest.mark.broker

TIMEOUT = 60.0


def wait_processed(runner: RunningProcessor, count: int) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        partitions = runner.processor.stats()["partitions"]
        if sum(int(p.get("messages_in", 0)) for p in partitions.values()) >= count:
            return dict(partitions)
        assert time.monotonic() < deadline, "not processed in time"
        time.sleep(0.05)


def test_stats_rebalance_callback_and_stop(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("clicks", partitions=3)
    group = unique("stats")
    assignments: list[frozenset[int]] = []
    emit_clicks(goka_brokers, topic, [f"user-{i % 30}" for i in range(600)])
    runner = processor_factory(
        define_clickcount(topic, group), rebalance_callback=assignments.append
    )
    partitions = wait_processed(runner, 600)
    assert assignments[-1] == frozenset({0, 1, 2})
    stats = runner.processor.stats()
    assert stats["group"] == group and stats["state"] == "running"
    assert sum(int(p["messages_in"]) for p in partitions.values()) == 600
    for partition, p in partitions.items():
        assert p["state"] == "running"
        [(name, position)] = p["input"].items()
        assert name == topic
        assert position["lag"] == 0 and position["offset"] == position["high_watermark"] > 0
        assert p["table"]["offset"] > 0
        assert p["bytes_in"] == 5 * p["messages_in"]
        assert p["recovery_seconds"] is not None
        assert isinstance(partition, int)

    def committed_in_stats() -> dict[int, int | None]:
        partitions = runner.processor.stats()["partitions"]
        return {n: p["input"][topic]["committed"] for n, p in partitions.items()}

    # "committed" is the offset the broker confirmed: the commit of the last batch arrives
    high = {n: p["input"][topic]["high_watermark"] for n, p in partitions.items()}
    wait_until(lambda: committed_in_stats() == high, TIMEOUT, f"stats report commits of {high}")
    assert {n: committed(goka_brokers, group, topic, n) for n in high} == high
    assert runner.processor.stats()["failed_commits"] == 0

    assert runner.processor.stop(timeout=TIMEOUT) is True
    assert runner.join(TIMEOUT) is None
    assert runner.processor.state == "stopped"
    assert assignments[-1] == frozenset()  # the final revocation is reported too
    assert sorted(runner.processor.stats()["partitions"]) == [0, 1, 2]  # as it stopped


def test_recover_ahead_replays_the_table_before_joining(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    tmp_path: Path,
) -> None:
    topic = topic_factory("clicks", partitions=3)
    group = unique("ahead")
    graph = define_clickcount(topic, group)
    emit_clicks(goka_brokers, topic, [f"user-{i % 300}" for i in range(900)])
    first = processor_factory(graph)  # fills the table; its storage is thrown away
    wait_processed(first, 900)
    assert first.stop() is None

    ahead = processor_factory(graph, storage=goka.LMDBStorage(tmp_path), recover_ahead=True)
    deadline = time.monotonic() + TIMEOUT
    while True:
        partitions = ahead.processor.stats()["partitions"]
        if len(partitions) == 3 and all(p["state"] == "running" for p in partitions.values()):
            break
        assert time.monotonic() < deadline, "the partitions did not start running"
        time.sleep(0.05)
    # everything was replayed before joining: once assigned, the partitions replay nothing
    # (a processor with fresh storage that does not recover ahead replays ~300 records each)
    assert {p: s["recovered_records"] for p, s in partitions.items()} == {0: 0, 1: 0, 2: 0}
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(TIMEOUT)
        assert sum(v for _, v in view.items()) == 900
    assert sorted(p.name for p in (tmp_path / goka.group_table(group)).iterdir()) == ["0", "1", "2"]
    assert ahead.stop() is None


def test_hot_standby_and_recover_ahead_need_a_table(goka_brokers: str) -> None:
    graph = goka.define_group(unique("g"), goka.input("t", codec.String(), lambda c, m: None))
    with pytest.raises(goka.errors.ConfigError, match="no table and no joins"):
        goka.Processor(goka_brokers, graph, hot_standby=True)


def test_cache_entries_must_not_be_negative(goka_brokers: str) -> None:
    graph = goka.define_group(
        unique("g"), goka.input("t", codec.String(), lambda c, m: None), goka.persist(codec.Int64())
    )
    with pytest.raises(goka.errors.ConfigError, match=r"cache_entries must be >= 0"):
        goka.Processor(goka_brokers, graph, cache_entries=-1)


def test_the_group_protocol_follows_what_the_broker_offers(
    goka_brokers: str,
    goka_broker_kind: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    """``auto`` (the default) takes KIP-848 where the broker offers it (Kafka 4), and then the
    broker's session timeout (6 s in LocalKafka), not the client's; else classic, the client's."""
    if goka_broker_kind not in ("kafka", "tansu"):
        pytest.skip("what an external broker offers is not known to the test")
    topic = topic_factory("clicks", partitions=2)
    emit_clicks(goka_brokers, topic, ["user-1", "user-2"])
    runner = processor_factory(
        define_clickcount(topic, unique("protocol")),
        extra_config={"session.timeout.ms": 7000, "heartbeat.interval.ms": 500},
    )
    wait_processed(runner, 2)
    stats = runner.processor.stats()
    expected = ("consumer", 6000) if goka_broker_kind == "kafka" else ("classic", 7000)
    assert (stats["group_protocol"], stats["session_timeout_ms"]) == expected


@pytest.mark.kafka_only("groups have configs of their own from Kafka 4.0 on (KIP-848)")
def test_a_consumer_groups_own_session_timeout_is_the_one_in_force(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic, group = topic_factory("clicks", partitions=2), unique("protocol")
    set_group_session_timeout(goka_brokers, group, 7500)
    emit_clicks(goka_brokers, topic, ["user-1"])
    runner = processor_factory(define_clickcount(topic, group))
    wait_processed(runner, 1)
    stats = runner.processor.stats()
    assert (stats["group_protocol"], stats["session_timeout_ms"]) == ("consumer", 7500)
