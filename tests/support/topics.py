"""Reading a topic whole, and its end offsets, as the tests check what reached it."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from tests.conftest import unique

READ_TIMEOUT = 60.0


def read_topic(
    brokers: str, topic: str, partitions: int, *, isolation: str = "read_committed"
) -> list[Any]:
    """Every message of ``topic``, from the beginning to the end of each partition (an EOF
    event, so that transaction markers and aborted records count as read), as a consumer
    with ``isolation.level=isolation`` sees them."""
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": unique("test-reader"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,  # the end of a partition is reported sooner
            "isolation.level": isolation,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        messages: list[Any] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + READ_TIMEOUT
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"read {len(messages)} messages, no end yet"
            for msg in consumer.consume(10_000, 0.2):
                error = msg.error()
                if error is None:
                    messages.append(msg)
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                else:
                    raise AssertionError(f"consumer error: {error}")
        return messages
    finally:
        consumer.close()


def high_watermarks(brokers: str, topic: str, partitions: int) -> dict[int, int]:
    """partition -> the high watermark of ``topic``'s ``partitions``, asked of the leaders."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": unique("watermarks")})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()
