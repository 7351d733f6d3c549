"""A producer that sends one batch's changelog and emitted messages and waits for all of them.

Step 2 of the commit protocol: nothing is applied to local storage and no input offset is
committed until every message of the batch has been acknowledged.
"""

from __future__ import annotations

from typing import Any, cast

from confluent_kafka import KafkaError, Producer

from goka._host import Headers
from goka.errors import DeliveryError

__all__ = ["BatchProducer"]


class BatchProducer:
    def __init__(self, config: dict[str, Any], table: str | None) -> None:
        self._producer = Producer({**config, "on_delivery": self._on_delivery})
        self._table = table
        self._table_offsets: dict[int, int] = {}
        self._error: str | None = None
        self.messages_out = 0
        self.bytes_out = 0

    def produce(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        partition: int,
        headers: Headers | None = None,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, value, key, partition=partition, headers=cast(Any, headers)
                )
                break
            except BufferError:
                self._producer.poll(0.05)  # local queue full: serve delivery reports, retry
        self.messages_out += 1
        self.bytes_out += len(key) + (len(value) if value is not None else 0)

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            if self._error is None:
                self._error = (
                    f"delivery to topic {msg.topic()!r} partition {msg.partition()} failed: "
                    f"{err.str()}"
                )
            return
        if msg.topic() == self._table:
            partition, offset = msg.partition(), msg.offset()
            if offset > self._table_offsets.get(partition, -1):
                self._table_offsets[partition] = offset

    def wait(self, timeout: float) -> dict[int, int]:
        """Wait for every outstanding message; returns the last table offset per partition.

        Raises DeliveryError if a message failed or was not acknowledged within ``timeout``.
        """
        remaining = self._producer.flush(timeout)
        if self._error is not None:
            raise DeliveryError(
                f"{self._error}; the batch is not committed and will be processed again "
                "after a restart"
            )
        if remaining:
            raise DeliveryError(
                f"{remaining} messages were not acknowledged within {timeout}s; check that "
                "the brokers are reachable, or raise delivery_timeout"
            )
        offsets, self._table_offsets = self._table_offsets, {}
        return offsets

    def close(self, timeout: float) -> None:
        self._producer.flush(timeout)
