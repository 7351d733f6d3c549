"""Consuming without the batch wait: librdkafka's batch consume waits its whole timeout unless
the batch fills up, which would add up to that timeout to the latency of every message."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer

__all__ = ["consume_available"]


def consume_available(consumer: Consumer, max_messages: int, timeout: float) -> list[Any]:
    """Up to ``max_messages`` messages (and events) that are there now; if there are none,
    waits up to ``timeout`` seconds for the first one only."""
    messages: list[Any] = consumer.consume(max_messages, 0)
    if messages or timeout <= 0:
        return messages
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(max_messages - 1, 0)] if max_messages > 1 else [first]
