"""goka.partitioner against librdkafka's own partitioners, through a real broker.

For each partition count, a fresh topic gets 10,000+ keys (random bytes of length 0..40, ASCII
strings, and a key whose FNV-1a hash is exactly 0x80000000) produced without an explicit
partition, so librdkafka's configured partitioner picks it; every delivery report's partition
must equal the one goka computes:

- ``partitioner=murmur2_random`` (Java-compatible) against :func:`goka.partitioner.murmur2`;
- ``partitioner=fnv1a_random`` against :func:`goka.partitioner.fnv1a` (Sarama's formula).
  librdkafka computes ``abs(int32(hash)) % n`` (``rd_fnv1a`` takes the absolute value first,
  the modulo is unsigned) while Sarama computes ``abs(int32(hash) % n)`` with a truncating
  ``%``; these are equal for every hash (for 0x80000000 both give ``2**31 % n``), so the two
  agree by definition and the test holds librdkafka to it.

The ``*_random`` variants only differ from ``murmur2`` / ``fnv1a`` for null keys; an empty
key ``b""`` is hashed like any other (as in the Java client).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from goka.partitioner import Partitioner, fnv1a, murmur2

pytestmark = pytest.mark.broker

PARTITION_COUNTS = [1, 3, 8, 24, 100]
INT32_MIN_FNV1A_KEY = bytes.fromhex("676f6b6148506a27c4")  # see tests/unit/data


def make_keys(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    keys = [rng.randbytes(rng.randint(0, 40)) for _ in range(10_000)]
    keys += [f"user-{i}".encode() for i in range(500)]
    keys += [b"", b"kafka", "grüße 🙂".encode(), INT32_MIN_FNV1A_KEY]
    return keys


@pytest.fixture
def topic_with(goka_brokers: str) -> Iterator[Callable[[int], str]]:
    """Creates uniquely named topics with n partitions; deletes them after the test."""
    admin = AdminClient({"bootstrap.servers": goka_brokers})
    created: list[str] = []

    def create(partitions: int) -> str:
        name = f"test-partitioner-{uuid.uuid4().hex}"
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)]
        )
        futures[name].result(timeout=30)
        created.append(name)
        return name

    yield create
    if created:
        for future in admin.delete_topics(created).values():
            future.result(timeout=30)


def produce_and_collect(
    brokers: str, topic: str, librdkafka_partitioner: str, keys: list[bytes]
) -> list[tuple[bytes, int]]:
    """Produces every key with no explicit partition; returns (key, partition) per delivery."""
    delivered: list[tuple[bytes, int]] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
            return
        key = msg.key()
        assert isinstance(key, bytes)
        delivered.append((key, msg.partition()))

    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "partitioner": librdkafka_partitioner,
            "linger.ms": 5,
        }
    )
    try:
        for key in keys:
            producer.produce(topic, key=key, value=b"", on_delivery=on_delivery)
            producer.poll(0)
        remaining = producer.flush(30)
    finally:
        producer.close()
    assert remaining == 0, f"{remaining} messages not delivered within 30s"
    assert errors == []
    assert len(delivered) == len(keys)
    return delivered


@pytest.mark.parametrize("partitions", PARTITION_COUNTS)
@pytest.mark.parametrize(
    ("librdkafka_partitioner", "ours"),
    [("murmur2_random", murmur2), ("fnv1a_random", fnv1a)],
    ids=["murmur2", "fnv1a"],
)
def test_partition_equals_librdkafka(
    goka_brokers: str,
    topic_with: Callable[[int], str],
    librdkafka_partitioner: str,
    ours: Partitioner,
    partitions: int,
) -> None:
    topic = topic_with(partitions)
    keys = make_keys(seed=partitions)
    delivered = produce_and_collect(goka_brokers, topic, librdkafka_partitioner, keys)

    mismatches = [
        (key, got, ours(key, partitions)) for key, got in delivered if got != ours(key, partitions)
    ]
    assert mismatches[:10] == [], f"{len(mismatches)} of {len(delivered)} keys differ"
    if partitions > 1:
        assert len({p for _, p in delivered}) == partitions  # every partition was used
