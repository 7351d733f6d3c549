"""A processor recovering its own table partition reads it to its very end, past a
transaction left open by a previous owner killed mid-batch: the records the next owner
committed after it are recovered too, once the open one ends (see goka._recovery). A
read_committed reader's end is the last stable offset, which the open transaction holds back;
caught up there, the store would miss them while the committed input offsets count them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from goka._kafka_errors import high_watermark
from goka._recovery import RecoveryReader
from goka.storage import MemoryStorage
from tests.conftest import unique

pytestmark = [
    pytest.mark.broker,
    pytest.mark.kafka_only("Tansu hands aborted transactions to read_committed readers"),
]

TIMEOUT = 60.0


def transactional(brokers: str) -> Producer:
    producer = Producer({"bootstrap.servers": brokers, "transactional.id": unique("writer")})
    producer.init_transactions(30)
    producer.begin_transaction()
    return producer


@pytest.fixture
def reader(goka_brokers: str) -> Iterator[RecoveryReader]:
    reader = RecoveryReader({"bootstrap.servers": goka_brokers, "group.id": unique("reader")})
    yield reader
    reader.close()


@pytest.mark.parametrize("successor", [True, False], ids=["committed-after", "nothing-after"])
def test_an_open_transaction_holds_the_recovery_until_it_ends_and_nothing_after_it_is_lost(
    goka_brokers: str, topic_factory: Callable[..., str], reader: RecoveryReader, successor: bool
) -> None:
    topic = topic_factory("table", partitions=1)
    killed = transactional(goka_brokers)  # the owner killed mid-batch: never commits
    killed.produce(topic, key=b"user-1", value=b"killed", partition=0)
    killed.flush(30)
    if successor:  # the next owner, committing after it
        after = transactional(goka_brokers)
        after.produce(topic, key=b"user-1", value=b"7", partition=0)
        after.produce(topic, key=b"user-2", value=b"3", partition=0)
        after.commit_transaction(30)

    store = MemoryStorage().open(topic, 0)
    reader.add(topic, 0, store, exact_end=True)
    held_until = time.monotonic() + 3.0  # several EOF events and checks of the end
    while time.monotonic() < held_until:
        assert not reader.read(1000, 0.1).caught_up, "caught up at the last stable offset"
    assert store.get(b"user-1") is None  # nothing beyond the open transaction yet

    killed.abort_transaction(30)  # as the broker does after transaction.timeout.ms
    deadline = time.monotonic() + TIMEOUT
    while not reader.read(1000, 0.1).caught_up:
        assert time.monotonic() < deadline, "not caught up after the transaction ended"
    expected = (b"7", b"3") if successor else (None, None)
    assert (store.get(b"user-1"), store.get(b"user-2")) == expected
    ends = Consumer({"bootstrap.servers": goka_brokers, "group.id": unique("ends")})
    try:  # past the records and the transactions' markers
        end = high_watermark(ends, TopicPartition(topic, 0), 30)
        assert store.offset() == end == (5 if successor else 2)
    finally:
        ends.close()
