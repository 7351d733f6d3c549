"""The Emitter against the real broker: partitions, offsets, futures, headers, tombstones,
close, and the errors that name the fix."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import goka
from goka import codec
from goka._delivery import DeliveryFuture
from goka.errors import CodecError, ConfigError, EmitterClosedError, GokaError, TopicError
from goka.partitioner import fnv1a, murmur2
from tests.conftest import unique
from tests.support.topics import read_topic

pytestmark = pytest.mark.broker

READ_TIMEOUT = 30.0


def test_emit_sync_uses_murmur2_and_offsets_increase_per_partition(
    goka_brokers: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("emit", partitions=5)
    keys = [f"user-{i}" for i in range(60)] + ["", "grüße 🙂"]
    offsets: dict[int, list[int]] = {}
    with goka.Emitter(
        goka_brokers, topic, codec.String(), extra_config={"linger.ms": 0}
    ) as emitter:
        assert emitter.partitions == 5
        for key in keys:
            delivery = emitter.emit_sync(key, f"value of {key}")
            assert isinstance(delivery, goka.Delivery)
            assert delivery.partition == murmur2(key.encode(), 5), key
            offsets.setdefault(delivery.partition, []).append(delivery.offset)
    assert len(offsets) == 5  # 62 keys cover every partition
    for partition_offsets in offsets.values():
        assert partition_offsets == sorted(set(partition_offsets))
        assert partition_offsets[0] >= 0

    messages = read_topic(goka_brokers, topic, 5)
    assert sorted((m.key().decode(), m.partition()) for m in messages) == sorted(
        (key, murmur2(key.encode(), 5)) for key in keys
    )
    assert all(m.value().decode() == f"value of {m.key().decode()}" for m in messages)


def test_fnv1a_partitioner(goka_brokers: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory("emit-fnv", partitions=7)
    keys = [f"key-{i}" for i in range(40)]
    with goka.Emitter(goka_brokers, topic, codec.String(), partitioner="fnv1a") as emitter:
        futures = {key: emitter.emit(key, "v") for key in keys}
        deliveries = {key: future.result(timeout=READ_TIMEOUT) for key, future in futures.items()}
    assert {key: d.partition for key, d in deliveries.items()} == {
        key: fnv1a(key.encode(), 7) for key in keys
    }
    # the two partitioners disagree on some of these keys, so the choice is not ignored
    assert any(fnv1a(k.encode(), 7) != murmur2(k.encode(), 7) for k in keys)


def test_emit_futures(goka_brokers: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory("emit-futures", partitions=2)
    calls: list[DeliveryFuture] = []
    lock = threading.Lock()

    def record(future: DeliveryFuture) -> None:
        with lock:
            calls.append(future)

    with goka.Emitter(goka_brokers, topic, codec.Int64()) as emitter:
        future = emitter.emit("a", 1)
        future.add_done_callback(record)
        delivery = future.result(timeout=READ_TIMEOUT)
        assert future.done()
        assert future.exception() is None
        assert delivery == goka.Delivery(murmur2(b"a", 2), delivery.offset)
        assert future.result() == delivery  # again, no waiting

        future.add_done_callback(record)  # already done: called at once, in this thread
        with lock:
            assert calls == [future, future]

        many = [emitter.emit(f"k{i}", i) for i in range(300)]
        for f in many:
            f.add_done_callback(record)
        emitter.flush()
        assert all(f.done() for f in many)
    with lock:
        assert len(calls) == 302
        assert {id(f) for f in calls[2:]} == {id(f) for f in many}  # each exactly once


def test_headers_arrive(goka_brokers: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory("emit-headers", partitions=3)
    headers = {"trace-id": b"abc123", "source": b"test", "empty": b""}
    with goka.Emitter(goka_brokers, topic, codec.JSON()) as emitter:
        emitter.emit_sync("with", {"n": 1}, headers=headers)
        emitter.emit_sync("without", {"n": 2})
    messages = {m.key(): m for m in read_topic(goka_brokers, topic, 3)}
    assert sorted(messages) == [b"with", b"without"]
    assert dict(messages[b"with"].headers()) == headers
    assert [name for name, _ in messages[b"with"].headers()] == list(headers)
    assert not messages[b"without"].headers()
    assert messages[b"with"].value() == b'{"n":1}'


def test_none_value_is_a_tombstone(goka_brokers: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory("emit-tombstone", partitions=2)
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        first = emitter.emit_sync("k", "value")
        second = emitter.emit_sync("k", None)
    assert first.partition == second.partition
    assert second.offset > first.offset
    messages = read_topic(goka_brokers, topic, 2)
    assert [(m.key(), m.value()) for m in messages] == [(b"k", b"value"), (b"k", None)]


@pytest.fixture
def small_message_topic(goka_brokers: str) -> Iterator[str]:
    """A one-partition topic whose broker refuses messages over 2,000 bytes."""
    name = unique("small-messages")
    admin = AdminClient({"bootstrap.servers": goka_brokers})
    spec = NewTopic(name, 1, replication_factor=-1, config={"max.message.bytes": "2000"})
    admin.create_topics([spec])[name].result(READ_TIMEOUT)
    yield name
    goka.TopicManager(goka_brokers).delete([name])


@pytest.mark.kafka_only("Tansu does not enforce a topic's max.message.bytes")
def test_flush_reports_failed_messages_whose_futures_nobody_asked(
    goka_brokers: str, small_message_topic: str
) -> None:
    """The broker refuses a message after emit() returned: flush() raises, naming it, so a
    fire-and-forget emit loses nothing unseen; a failure already asked is not told twice."""
    emitter = goka.Emitter(goka_brokers, small_message_topic, codec.String())
    try:
        emitter.emit("fits", "a")
        emitter.flush()  # apart: the broker refuses a whole batch that holds a big one
        emitter.emit("big", "x" * 5000)  # librdkafka's own limit is 1 MB: only the broker refuses
        with pytest.raises(goka.errors.DeliveryError) as raised:
            emitter.flush()
        text = str(raised.value)
        prefix = (
            f"1 of the messages emitted to topic {small_message_topic!r} since the last flush "
            f"were not delivered, the first: the message with key 'big' to topic "
            f"{small_message_topic!r} partition 0 was not delivered: "
        )
        suffix = (
            "; emit them again (ask a message's future, emit(...).result(), to handle its "
            "failure yourself)"
        )
        assert (text[: len(prefix)], text[-len(suffix) :]) == (prefix, suffix)
        assert text[len(prefix) : -len(suffix)] == "Broker: Message size too large"
        emitter.flush()  # reported once: nothing failed since
        emitter.emit("fits too", "b")
        emitter.flush()

        asked = emitter.emit("big", "y" * 5000)
        error = asked.exception(READ_TIMEOUT)
        assert isinstance(error, goka.errors.DeliveryError)
        assert "the message with key 'big'" in str(error)
        emitter.flush()  # its failure was handed to whoever asked: not reported again
    finally:
        emitter.close()
    delivered = read_topic(goka_brokers, small_message_topic, 1)
    assert [(m.key(), m.value()) for m in delivered] == [(b"fits", b"a"), (b"fits too", b"b")]


def test_close_waits_for_in_flight_messages(
    goka_brokers: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("emit-close", partitions=4)
    emitter = goka.Emitter(goka_brokers, topic, codec.Int64())
    futures = [emitter.emit(f"user-{i % 97}", i) for i in range(5000)]
    emitter.close()
    assert all(f.done() for f in futures)
    deliveries = [f.result(timeout=0) for f in futures]
    assert len(set(deliveries)) == 5000
    messages = read_topic(goka_brokers, topic, 4)
    assert len(messages) == 5000
    assert sorted(int(m.value()) for m in messages) == list(range(5000))
    # per key, messages keep the order they were emitted in
    by_key: dict[bytes, list[int]] = {}
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        by_key.setdefault(m.key(), []).append(int(m.value()))
    assert all(values == sorted(values) for values in by_key.values())


def test_emit_after_close_and_closing_twice(
    goka_brokers: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("emit-closed", partitions=1)
    emitter = goka.Emitter(goka_brokers, topic, codec.String())
    emitter.emit_sync("k", "v")
    emitter.close()
    emitter.close()
    with pytest.raises(EmitterClosedError, match=rf"{topic!r} is closed; create a new Emitter"):
        emitter.emit("k", "v")
    with pytest.raises(EmitterClosedError):
        emitter.emit_sync("k", "v")
    with emitter:
        pass  # __exit__ closes again: fine
    assert len(read_topic(goka_brokers, topic, 1)) == 1


def test_missing_topic(goka_brokers: str) -> None:
    topic = unique("no-such-topic")
    with pytest.raises(TopicError) as info:
        goka.Emitter(goka_brokers, topic, codec.String())
    message = str(info.value)
    assert f"topic {topic!r} does not exist" in message
    assert f"ensure_stream({topic!r}, partitions)" in message
    assert goka.TopicManager(goka_brokers).partitions(topic) is None  # not auto-created


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"partitioner": "crc32"}, r"unknown partitioner 'crc32': use one of 'murmur2', 'fnv1a'"),
        ({"delivery_timeout": 0}, "delivery_timeout must be positive, got 0"),
        ({"delivery_timeout": -1.5}, "delivery_timeout must be positive, got -1.5"),
        (
            {"codec": "string"},
            r"codec: .* is not a codec; pass an instance such as goka\.codec\.String\(\)",
        ),
        (
            {"codec": codec.String},
            r"codec: .* is not a codec; pass an instance such as goka\.codec\.String\(\)",
        ),
        ({"topic": ""}, "topic must be a non-empty string"),
        ({"extra_config": [("linger.ms", 1)]}, "extra_config must be a dict"),
    ],
)
def test_bad_constructor_arguments(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    options: dict[str, Any],
    match: str,
) -> None:
    arguments: dict[str, Any] = {"topic": topic_factory("emit-args", 1), "codec": codec.String()}
    arguments.update(options)
    with pytest.raises(ConfigError, match=match):
        goka.Emitter(goka_brokers, **arguments)


def test_bad_brokers() -> None:
    with pytest.raises(ConfigError, match="not a list of host:port addresses"):
        goka.Emitter("", "t", codec.String())


def test_key_must_be_str(goka_brokers: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory("emit-key", partitions=1)
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for key in [1, b"bytes", None]:
            with pytest.raises(ConfigError, match=f"key must be str, got {type(key).__name__}"):
                emitter.emit(key, "v")  # type: ignore[arg-type]
            with pytest.raises(ConfigError, match="key must be str"):
                emitter.emit_sync(key, "v")  # type: ignore[arg-type]
    assert read_topic(goka_brokers, topic, 1) == []


def test_value_the_codec_refuses_is_not_sent(
    goka_brokers: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("emit-codec", partitions=1)
    with goka.Emitter(goka_brokers, topic, codec.Int64()) as emitter:
        for bad in ["12", 1.5, True, 2**63]:
            with pytest.raises(CodecError, match="int64 codec cannot encode"):
                emitter.emit("k", bad)
        with pytest.raises(CodecError):
            emitter.emit_sync("k", "12")
        delivery = emitter.emit_sync("k", 12)
    assert delivery == goka.Delivery(0, delivery.offset)
    messages = read_topic(goka_brokers, topic, 1)
    assert [(m.key(), m.value()) for m in messages] == [(b"k", b"12")]


def test_errors_are_goka_errors() -> None:
    assert issubclass(EmitterClosedError, GokaError)
    assert issubclass(TopicError, GokaError)
    assert issubclass(CodecError, GokaError)
