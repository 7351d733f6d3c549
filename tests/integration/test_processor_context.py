"""What a callback sees and does: metadata, table reads and writes, emits, deletes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

import goka
from goka import codec
from goka.partitioner import murmur2
from goka.storage import StorageFactory
from tests.conftest import RunningProcessor, unique

pytestmark = pytest.mark.broker


def read_all(brokers: str, topic: str, partitions: int, expected: int) -> list[Any]:
    consumer = Consumer(
        {"bootstrap.servers": brokers, "group.id": unique("reader"), "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            messages += [m for m in consumer.consume(1000, 0.2) if m.error() is None]
    finally:
        consumer.close()
    return messages


@pytest.fixture(params=["lmdb", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageFactory:
    return goka.LMDBStorage(tmp_path) if request.param == "lmdb" else goka.MemoryStorage()


def test_context_state_emit_and_delete(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    storage: StorageFactory,
) -> None:
    commands = topic_factory("commands", partitions=3)
    echoes = topic_factory("echoes", partitions=5)
    group = unique("ctx")
    seen: list[dict[str, Any]] = []

    def handle(ctx: goka.Context, msg: dict[str, Any]) -> None:
        seen.append(
            {
                "key": ctx.key,
                "topic": ctx.topic,
                "partition": ctx.partition,
                "offset": ctx.offset,
                "timestamp": ctx.timestamp,
                "headers": ctx.headers,
                "before": ctx.value(),
            }
        )
        if msg["op"] == "set":
            ctx.set_value({"n": msg["n"]})
            assert ctx.value() == {"n": msg["n"]}  # reads see the batch's own writes
        elif msg["op"] == "delete":
            ctx.delete()
            assert ctx.value() is None
        ctx.emit(echoes, ctx.key, msg, headers={"source": ctx.topic.encode()})

    graph = goka.define_group(
        group,
        goka.input(commands, codec.JSON(), handle),
        goka.output(echoes, codec.JSON()),
        goka.persist(codec.JSON()),
    )
    before = datetime.now(UTC)
    with goka.Emitter(goka_brokers, commands, codec.JSON()) as emitter:
        first = emitter.emit("a", {"op": "set", "n": 1}, headers={"trace": b"t1"})
        emitter.emit("b", {"op": "set", "n": 2})
        second = emitter.emit("a", {"op": "set", "n": 3})
        emitter.emit("b", {"op": "delete"})
        emitter.emit("c", {"op": "noop"})
    runner = processor_factory(graph, storage=storage)

    echoed = read_all(goka_brokers, echoes, 5, 5)
    assert len(echoed) == 5
    for message in echoed:
        assert message.partition() == murmur2(message.key(), 5)
        assert message.headers() == [("source", commands.encode())]
    goka.TopicManager(goka_brokers).wait_for(goka.group_table(group), 30)
    with goka.View(goka_brokers, goka.group_table(group), codec.JSON()) as view:
        assert view.wait_running(30)
        deadline = time.monotonic() + 30
        while view.get("a") != {"n": 3} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert view.get("a") == {"n": 3}
        assert view.get("b") is None
        assert view.get("c") is None
    assert runner.stop() is None

    assert sorted(s["key"] for s in seen) == ["a", "a", "b", "b", "c"]
    first_a, second_a = [s for s in seen if s["key"] == "a"]
    assert first_a["topic"] == commands
    assert (first_a["partition"], first_a["offset"]) == first.result(10)
    assert (second_a["partition"], second_a["offset"]) == second.result(10)
    assert first_a["partition"] == murmur2(b"a", 3)
    assert first_a["headers"] == {"trace": b"t1"}
    assert first_a["before"] is None
    assert first_a["timestamp"] is not None and first_a["timestamp"] >= before.replace(
        microsecond=0
    )
    assert second_a["before"] == {"n": 1}
    assert [s["before"] for s in seen if s["key"] == "b"] == [None, {"n": 2}]


def test_group_without_table_refuses_state_access(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("events", partitions=1)
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        emitter.emit("k", "v")

    def stateful(ctx: goka.Context, msg: str) -> None:
        ctx.value()

    error = processor_factory(
        goka.define_group(unique("stateless"), goka.input(topic, codec.String(), stateful))
    ).join(60)
    assert error is not None
    assert "has no table" in str(error) and "goka.persist(codec)" in str(error)


@pytest.mark.parametrize("cache_entries", [0, 4, 100_000])
def test_reads_see_every_earlier_write_across_pipelined_batches(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    tmp_path: Path,
    cache_entries: int,
) -> None:
    """Batches of 7 (the changelog of one in flight while the next runs) over 20 keys: with no
    value cache, one that evicts all the time, and one that holds everything, every read
    sees the count of every earlier message of its key, and the table ends exact."""
    topic = topic_factory("clicks", partitions=3)
    group = unique("pipelined")
    keys = [f"user-{i}" for i in range(20)]
    clicks = [keys[(i * 7) % 20] for i in range(300)]
    seen: dict[str, list[int]] = {}

    def count(ctx: goka.Context, msg: str) -> None:
        before = ctx.value() or 0
        seen.setdefault(ctx.key, []).append(before)
        ctx.set_value(before + 1)
        if before % 3 == 2:  # a delete now and then: the next read must see it
            ctx.delete()

    graph = goka.define_group(
        group, goka.input(topic, codec.String(), count), goka.persist(codec.Int64())
    )
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for key in clicks:
            emitter.emit(key, "click")
    runner = processor_factory(
        graph, storage=goka.LMDBStorage(tmp_path), batch_size=7, cache_entries=cache_entries
    )
    deadline = time.monotonic() + 60
    while sum(map(len, seen.values())) < len(clicks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.stop() is None

    expected = {key: [n % 3 for n in range(clicks.count(key))] for key in keys}
    assert seen == expected
    stats = runner.processor.stats()["partitions"]
    assert sum(p["messages_in"] for p in stats.values()) == len(clicks)
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(30)
        assert dict(view.items()) == {
            key: clicks.count(key) % 3 for key in keys if clicks.count(key) % 3
        }


def test_a_value_changed_in_place_without_set_value_is_not_kept(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    """Only immutable values are cached and a batch whose changelog is in flight is read as
    stored: changing a dict read from the table, without set_value, changes nothing for
    the next message, whichever batch it is in."""
    topic = topic_factory("commands", partitions=1)
    group = unique("in-place")
    befores: list[Any] = []

    def handle(ctx: goka.Context, op: str) -> None:
        value = ctx.value()
        befores.append(None if value is None else dict(value))
        value = value or {"n": 0}
        value["n"] += 1
        if op == "set":
            ctx.set_value(value)

    graph = goka.define_group(
        group, goka.input(topic, codec.String(), handle), goka.persist(codec.JSON())
    )
    ops = ["set", "peek", "peek", "set", "peek"]
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for op in ops:
            emitter.emit("a", op)
    runner = processor_factory(graph, batch_size=1)
    deadline = time.monotonic() + 60
    while len(befores) < len(ops) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.stop() is None
    assert befores == [None, {"n": 1}, {"n": 1}, {"n": 1}, {"n": 2}]
