"""Click-count end to end on the real broker: emitter -> processor -> table -> view."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from examples.clickcount import define_clickcount
from goka import codec
from tests.conftest import RunningProcessor, unique

pytestmark = pytest.mark.broker


def emit_clicks(brokers: str, topic: str, keys: list[str]) -> None:
    with goka.Emitter(brokers, topic, codec.String()) as emitter:
        for key in keys:
            emitter.emit(key, "click")


def wait_for_counts(
    view: goka.View[int], expected: dict[str, int], timeout: float = 60.0
) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = dict(view.items())
        if counts == expected or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def test_clickcount_counts_exactly(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    tmp_path: Path,
) -> None:
    topic = topic_factory("clicks", partitions=4)
    group = unique("counter")
    keys = [f"user-{i % 37}" for i in range(5000)]
    emit_clicks(goka_brokers, topic, keys)

    runner = processor_factory(
        define_clickcount(topic, group), storage=goka.LMDBStorage(tmp_path), batch_size=500
    )
    manager = goka.TopicManager(goka_brokers)
    assert manager.wait_for(goka.group_table(group), 30) == 4  # co-partitioned with the input
    table_config = manager.config(goka.group_table(group))
    assert {name: table_config[name] for name in goka.topics.TABLE_TOPIC_CONFIG} == {
        "cleanup.policy": "compact",
        "segment.ms": "21600000",
        "min.cleanable.dirty.ratio": "0.1",
    }
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(30)
        expected = dict(collections.Counter(keys))
        assert wait_for_counts(view, expected) == expected
        assert view.get("user-0") == expected["user-0"]
        assert view.get("nobody") is None
        assert [k for k, _ in view.items(prefix="user-1")] == sorted(
            k for k in expected if k.startswith("user-1")
        )
    assert runner.stop() is None


def test_restart_with_local_files_replays_only_the_tail(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    tmp_path: Path,
) -> None:
    topic = topic_factory("clicks", partitions=3)
    group = unique("counter")
    graph = define_clickcount(topic, group)
    emit_clicks(goka_brokers, topic, [f"user-{i % 100}" for i in range(3000)])
    first = processor_factory(graph, storage=goka.LMDBStorage(tmp_path))
    goka.TopicManager(goka_brokers).wait_for(goka.group_table(group), 30)
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(30)
        expected = {f"user-{i}": 30 for i in range(100)}
        assert wait_for_counts(view, expected) == expected
        table_records = view.recovered_records
    assert first.stop() is None

    emit_clicks(goka_brokers, topic, [f"user-{i}" for i in range(10)])
    second = processor_factory(graph, storage=goka.LMDBStorage(tmp_path))
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(30)
        expected.update({f"user-{i}": 31 for i in range(10)})
        assert wait_for_counts(view, expected) == expected
    stats = second.processor.stats()["partitions"]
    assert sorted(stats) == [0, 1, 2]
    assert all(s["state"] == "running" for s in stats.values())
    replayed = sum(s["recovered_records"] for s in stats.values())
    assert table_records >= 100
    assert replayed < table_records
    assert second.stop() is None


def test_changelog_holds_the_last_value_per_key_per_batch(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("clicks", partitions=1)
    group = unique("counter")
    emit_clicks(goka_brokers, topic, ["hot"] * 2000 + ["cold"])
    runner = processor_factory(define_clickcount(topic, group), batch_size=5000)
    goka.TopicManager(goka_brokers).wait_for(goka.group_table(group), 30)
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(30)
        assert wait_for_counts(view, {"hot": 2000, "cold": 1}) == {"hot": 2000, "cold": 1}
        changelog_records = view.recovered_records
    assert runner.stop() is None
    # one record per key per batch: far fewer than the 2,001 updates
    assert 2 <= changelog_records < 200
