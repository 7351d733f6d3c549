"""A processor stops with an error that names the cause, and commits nothing past it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import goka
from goka import codec
from goka.errors import ProcessorError
from tests.conftest import RunningProcessor, unique

pytestmark = pytest.mark.broker


def committed(brokers: str, group: str, topic: str, partition: int, timeout: float = 10.0) -> int:
    """The committed offset, once no transaction holding one is open (read_committed)."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(topic, partition)], timeout=timeout)
        return int(tp.offset)
    finally:
        consumer.close()


def produce_raw(brokers: str, topic: str, values: list[bytes], key: bytes = b"k") -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": brokers})
    for value in values:
        producer.produce(topic, value, key, partition=0)
    assert producer.flush(10) == 0


def keep(ctx: goka.Context, msg: str) -> None:
    ctx.set_value(msg)


def latest_value(group: str, topic: str) -> goka.GroupGraph:
    """A group whose table keeps each key's latest message."""
    return goka.define_group(
        group, goka.input(topic, codec.String(), keep), goka.persist(codec.String())
    )


def count(ctx: goka.Context, msg: Any) -> None:
    ctx.set_value((ctx.value() or 0) + 1)


def test_undecodable_input_stops_with_topic_partition_offset_and_codec(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("numbers", partitions=1)
    group = unique("strict")
    produce_raw(goka_brokers, topic, [b"1", b"2", b"3", b"not-a-number", b"5", b"6"])
    graph = goka.define_group(
        group, goka.input(topic, codec.Int64(), count), goka.persist(codec.Int64())
    )
    runner = processor_factory(graph, batch_size=100)
    error = runner.join(60)
    assert isinstance(error, ProcessorError)
    message = str(error)
    assert f"topic {topic!r}" in message
    assert "partition 0" in message
    assert "offset 3" in message
    assert "'int64'" in message
    # the three good messages were stored and committed; nothing past the bad one
    assert committed(goka_brokers, group, topic, 0) == 3
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(30)
        assert view.get("k") == 3


def test_callback_exception_stops_processor_and_commits_nothing_of_the_batch(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("events", partitions=1)
    group = unique("fragile")
    produce_raw(goka_brokers, topic, [b"a", b"b", b"boom", b"c"])

    def fragile(ctx: goka.Context, msg: str) -> None:
        if msg == "boom":
            raise RuntimeError("cannot handle boom")
        count(ctx, msg)

    graph = goka.define_group(
        group, goka.input(topic, codec.String(), fragile), goka.persist(codec.Int64())
    )
    error = processor_factory(graph).join(60)
    assert isinstance(error, ProcessorError)
    assert "RuntimeError: cannot handle boom" in str(error)
    assert "offset 2" in str(error)
    assert isinstance(error.__cause__, RuntimeError)
    assert committed(goka_brokers, group, topic, 0) < 0  # nothing committed


def test_emit_to_undeclared_topic_names_the_fix(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("events", partitions=1)
    produce_raw(goka_brokers, topic, [b"x"])

    def emit_elsewhere(ctx: goka.Context, msg: str) -> None:
        ctx.emit("undeclared", ctx.key, msg)

    graph = goka.define_group(unique("g"), goka.input(topic, codec.String(), emit_elsewhere))
    error = processor_factory(graph).join(60)
    assert isinstance(error, ProcessorError)
    assert "not configured for output" in str(error)
    assert "goka.output('undeclared', codec)" in str(error)


def test_inputs_that_are_not_copartitioned_are_refused(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    first = topic_factory("a", partitions=2)
    second = topic_factory("b", partitions=3)
    graph = goka.define_group(
        unique("g"),
        goka.input(first, codec.String(), count),
        goka.input(second, codec.String(), count),
        goka.persist(codec.Int64()),
    )
    error = processor_factory(graph).join(60)
    assert isinstance(error, ProcessorError)
    assert f"{first!r} has 2" in str(error)
    assert f"{second!r} has 3" in str(error)
    assert "co-partitioned" in str(error)


def test_missing_input_topic_and_mismatched_table_are_refused(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    missing = unique("missing")
    graph = goka.define_group(unique("g"), goka.input(missing, codec.String(), count))
    error = processor_factory(graph).join(60)
    assert isinstance(error, ProcessorError)
    assert missing in str(error) and "ensure_stream" in str(error)

    topic = topic_factory("events", partitions=2)
    group = unique("g")
    goka.TopicManager(goka_brokers).ensure_table(goka.group_table(group), 3)
    graph = goka.define_group(
        group, goka.input(topic, codec.String(), count), goka.persist(codec.Int64())
    )
    error = processor_factory(graph).join(60)
    assert isinstance(error, ProcessorError)
    assert "has 3 partitions but 2 are needed: tables must be co-partitioned" in str(error)


@pytest.mark.parametrize("edge", [goka.join, goka.lookup])
def test_a_missing_joined_or_looked_up_table_is_refused_before_anything_is_created(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    edge: Callable[..., Any],
) -> None:
    topic = topic_factory("events", partitions=2)
    missing = goka.group_table(unique("never-started"))
    group = unique("g")
    graph = goka.define_group(
        group,
        goka.input(topic, codec.String(), count),
        edge(missing, codec.String()),
        goka.persist(codec.Int64()),
    )
    error = processor_factory(graph).join(60)
    assert isinstance(error, ProcessorError)
    kind = "joined" if edge is goka.join else "lookup"
    assert f"{kind} table {missing!r} of group {group!r} does not exist: start the processor" in (
        str(error)
    )
    assert goka.TopicManager(goka_brokers).partitions(goka.group_table(group)) is None


@pytest.mark.parametrize("policy", ["compact,delete", "delete"])
def test_a_table_topic_not_exactly_compacted_is_refused(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    policy: str,
) -> None:
    topic = topic_factory("events", partitions=2)
    group = unique("g")
    table = goka.group_table(group)
    admin = AdminClient({"bootstrap.servers": goka_brokers})
    created = NewTopic(table, 2, -1, config={"cleanup.policy": policy})
    admin.create_topics([created])[table].result(30)
    try:
        graph = goka.define_group(
            group, goka.input(topic, codec.String(), count), goka.persist(codec.Int64())
        )
        error = processor_factory(graph).join(60)
        assert isinstance(error, ProcessorError)
        assert f"topic {table!r} has cleanup.policy={policy}, but it must be exactly compact" in (
            str(error)
        )
        assert f"--entity-name {table} --add-config cleanup.policy=compact" in str(error)
        assert goka.TopicManager(goka_brokers).config(table)["cleanup.policy"] == policy
    finally:
        goka.TopicManager(goka_brokers).delete([table])


def test_created_topics_take_the_replication_settings(goka_brokers: str) -> None:
    manager = goka.TopicManager(
        goka_brokers,
        replication_factor=1,
        min_insync_replicas=1,
        table_config={"segment.ms": "60000"},
    )
    table, stream = unique("table"), unique("stream")
    try:
        manager.ensure_table(table, 2)
        manager.ensure_stream(stream, 2)
        assert manager.config(table)["min.insync.replicas"] == "1"
        assert manager.config(table)["segment.ms"] == "60000"
        assert manager.config(table)["min.cleanable.dirty.ratio"] == "0.1"
        assert manager.config(stream)["min.insync.replicas"] == "1"
    finally:
        manager.delete([table, stream])


@pytest.mark.kafka_only("Tansu does not enforce a topic's max.message.bytes")
def test_a_batch_whose_changelog_is_refused_is_not_committed_and_the_one_before_is(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    """Batches of one message: the changelog of 'big' is refused by the broker while the
    next batch ('c') is already processed; the processor stops, and the committed offset
    and the table are those of the batch before ('b')."""
    topic = topic_factory("values", partitions=1)
    group = unique("refused")
    graph = latest_value(group, topic)
    produce_raw(goka_brokers, topic, [b"a", b"b"])
    runner = processor_factory(graph, batch_size=1, table_config={"max.message.bytes": "2000"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partitions = runner.processor.stats()["partitions"]
        if sum(p.get("messages_in", 0) for p in partitions.values()) == 2:
            break
        time.sleep(0.05)
    produce_raw(goka_brokers, topic, [b"x" * 5000, b"c"])
    error = runner.join(60)
    assert isinstance(error, ProcessorError)
    assert isinstance(error.__cause__, goka.errors.DeliveryError)
    assert (
        f"group {group!r} stopped: delivery of key b'k' (5000 bytes of value) to topic "
        f"{goka.group_table(group)!r} partition 0 failed: "
    ) in str(error)
    assert "larger than the topic's max.message.bytes" in str(error)
    assert "is not committed" in str(error)
    assert committed(goka_brokers, group, topic, 0) == 2
    with goka.View(goka_brokers, goka.group_table(group), codec.String()) as view:
        assert view.wait_running(30)
        assert dict(view.items()) == {"k": "b"}


def test_a_value_over_the_producers_message_max_bytes_names_group_topic_key_and_size(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    """librdkafka refuses a message over ``message.max.bytes`` before sending it: the
    processor stops naming what was too large, and commits nothing of the batch."""
    topic = topic_factory("values", partitions=1)
    group = unique("too-large")
    graph = latest_value(group, topic)
    produce_raw(goka_brokers, topic, [b"y" * 5000], key=b"user-1")
    runner = processor_factory(graph, extra_config={"message.max.bytes": "4000"})
    error = runner.join(60)
    assert isinstance(error, ProcessorError)
    assert isinstance(error.__cause__, goka.errors.DeliveryError)
    assert (
        f"group {group!r} stopped: delivery of key b'user-1' (5000 bytes of value) to topic "
        f"{goka.group_table(group)!r} partition 0 failed: "
    ) in str(error)
    assert "raise them, or keep the value smaller" in str(error)
    assert committed(goka_brokers, group, topic, 0) < 0  # nothing committed
