"""A producer that tells one batch's messages from the next one's.

Step 2 of the commit protocol: nothing of a batch is applied to local storage and no input
offset of it is committed until every message of the batch (its changelog and what its
callbacks emitted) has been acknowledged. Each message is counted in the :class:`Deliveries`
of the batch that produced it, so waiting for one batch does not wait for the messages the
next batch has produced meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Producer

from goka._host import Headers
from goka._rebootstrap import Rebootstrap
from goka.errors import DeliveryError

__all__ = ["BatchProducer", "Deliveries", "DeliveryTimedOut"]


class DeliveryTimedOut(DeliveryError):
    """A batch's messages were not acknowledged in time (brokers unreachable, or the process
    stalled past ``message.timeout.ms``): the processor drops the batch and processes it
    again rather than stopping."""


class Deliveries:
    """The outstanding messages of one batch, and what their acknowledgements said."""

    __slots__ = ("error", "outstanding", "table_first", "table_offsets", "timed_out")

    def __init__(self) -> None:
        self.outstanding = 0
        self.error: str | None = None
        self.timed_out = False
        """The first failure was librdkafka giving a message up after message.timeout.ms."""
        self.table_offsets: dict[int, int] = {}
        """The last acknowledged table offset per partition."""
        self.table_first: dict[int, int] = {}
        """The first acknowledged table offset per partition."""

    def delivered(self, err: KafkaError | None, msg: Any) -> None:
        """librdkafka's delivery report of an emitted message, served by this thread's
        poll()."""
        self.outstanding -= 1
        if err is not None:
            self._failed(err, msg)

    def table_delivered(self, err: KafkaError | None, msg: Any) -> None:
        """The delivery report of a changelog record: keeps the partition's last offset."""
        self.outstanding -= 1
        if err is not None:
            self._failed(err, msg)
            return
        partition, offset = msg.partition(), msg.offset()
        if offset > self.table_offsets.get(partition, -1):
            self.table_offsets[partition] = offset
        if offset < self.table_first.get(partition, offset + 1):
            self.table_first[partition] = offset

    def _failed(self, err: KafkaError, msg: Any) -> None:
        if self.error is None:
            self.error = _refused(err, msg.topic(), msg.partition(), msg.key(), msg.value())
            self.timed_out = err.code() == KafkaError._MSG_TIMED_OUT


def _refused(
    err: KafkaError, topic: str, partition: int, key: bytes | None, value: bytes | None
) -> str:
    """What failed, naming the message: its key (the start of it) and its size."""
    shown = repr(key[:48]) + ("..." if len(key) > 48 else "") if key is not None else "None"
    size = len(value) if value is not None else 0
    text = (
        f"delivery of key {shown} ({size} bytes of value) to topic {topic!r} partition "
        f"{partition} failed: {err.str()}"
    )
    if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        text += (
            " (larger than the topic's max.message.bytes or the producer's "
            "message.max.bytes: raise them, or keep the value smaller)"
        )
    return text


class BatchProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self._rebootstrap = Rebootstrap()
        self._producer = self._new_producer(config)
        self._open = Deliveries()

    def _new_producer(self, config: dict[str, Any]) -> Producer:
        """A producer given its bootstrap servers again if it forgets every broker
        (librdkafka#5301, see goka._rebootstrap); its statistics are served by ``serve``."""
        producer = Producer({**self._rebootstrap.client_config(), **config})
        self._rebootstrap.attach(producer, str(config.get("bootstrap.servers", "")))
        return producer

    def serve(self) -> None:
        """Serves the producer's events (deliveries, statistics) while no batch is waited
        for: the processor calls it on every turn of its loop without a batch to store."""
        self._producer.poll(0)

    def produce(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        partition: int,
        headers: Headers | None = None,
    ) -> None:
        """Send a message of the batch being filled."""
        self._send(topic, partition, ((key, value),), headers, self._open.delivered)

    def produce_changelog(
        self,
        topic: str,
        partition: int,
        writes: Iterable[tuple[bytes, bytes | None]],
        headers: Headers | None = None,
    ) -> None:
        """Send one partition's table writes (key, encoded value or None) in the batch being
        filled; their acknowledgements carry the partition's changelog offset."""
        self._send(topic, partition, writes, headers, self._open.table_delivered)

    def _send(
        self,
        topic: str,
        partition: int,
        messages: Iterable[tuple[bytes, bytes | None]],
        headers: Headers | None,
        delivered: Callable[[KafkaError | None, Any], None],
    ) -> None:
        """One loop for every message: a changelog is thousands per batch."""
        produce, poll = self._producer.produce, self._producer.poll
        sent = 0
        for key, value in messages:
            while True:
                try:
                    produce(
                        topic,
                        value,
                        key,
                        partition=partition,
                        headers=cast(Any, headers),
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    poll(0.05)  # local queue full: serve delivery reports, retry
                except KafkaException as exc:  # refused before sending, e.g. too large
                    error = exc.args[0]
                    raise DeliveryError(
                        f"{_refused(error, topic, partition, key, value)}; the batch is not "
                        "committed and will be processed again after a restart"
                    ) from exc
            sent += 1
        self._open.outstanding += sent

    def seal(self) -> Deliveries:
        """End the batch being filled: its messages are counted in the returned Deliveries,
        later ones in the next."""
        sealed, self._open = self._open, Deliveries()
        return sealed

    def wait(self, deliveries: Deliveries, timeout: float) -> dict[int, int]:
        """Wait until every message of ``deliveries`` is acknowledged; returns the last table
        offset per partition.

        Raises DeliveryError if a message failed, DeliveryTimedOut if one was not
        acknowledged in time.
        """
        deadline = time.monotonic() + timeout
        while deliveries.outstanding and deliveries.error is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._producer.poll(min(left, 1.0))
        if deliveries.error is not None and deliveries.timed_out:
            raise DeliveryTimedOut(deliveries.error)
        if deliveries.error is not None:
            raise DeliveryError(
                f"{deliveries.error}; the batch is not committed and will be processed again "
                "after a restart"
            )
        if deliveries.outstanding:
            raise DeliveryTimedOut(
                f"{deliveries.outstanding} messages were not acknowledged within {timeout}s"
            )
        return deliveries.table_offsets

    def purge_unsent(self) -> None:
        """Drops the messages not sent to a broker yet (their deliveries fail with
        _PURGE_QUEUE, so no batch holding one is stored); those in flight are not recalled."""
        self._producer.purge(in_queue=True, in_flight=False, blocking=True)
        self._producer.poll(0)

    def close(self, timeout: float) -> None:
        self._producer.flush(timeout)
