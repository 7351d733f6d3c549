"""The Emitter: puts key/value messages into a topic.

The partition of each message is computed here with the configured partitioner (the same
Python function processors and routers use), not by librdkafka.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from confluent_kafka import KafkaError, KafkaException, Producer

from goka._config import client_config
from goka._delivery import Delivery, DeliveryFuture, DeliveryWaiters
from goka._host import header_list
from goka._rebootstrap import Rebootstrap
from goka.codec import Codec, check_codec
from goka.errors import ConfigError, DeliveryError, EmitterClosedError, TopicError
from goka.partitioner import get_partitioner
from goka.topics import TopicManager

__all__ = ["Delivery", "DeliveryFuture", "Emitter"]

T = TypeVar("T")

_logger = logging.getLogger("goka.emitter")


class _Describe:
    """Names a message in errors, formatted only if an error happens."""

    __slots__ = ("key", "partition", "topic")

    def __init__(self, key: str, topic: str, partition: int) -> None:
        self.key, self.topic, self.partition = key, topic, partition

    def __str__(self) -> str:
        return (
            f"the message with key {self.key!r} to topic {self.topic!r} partition {self.partition}"
        )


class Emitter(Generic[T]):
    """Emits messages to one topic.

    Args:
        brokers: bootstrap servers (``"host:port,..."`` or a list).
        topic: the topic; it must exist (see ``TopicManager.ensure_stream``).
        codec: encodes values, e.g. ``goka.codec.String()``.
        partitioner: ``"murmur2"`` (default, Java-compatible) or ``"fnv1a"`` (Goka/Sarama).
        delivery_timeout: seconds ``emit_sync``, ``close`` and a transaction's ``commit``
            wait (default 30).
        transactional_id: makes the emitter transactional: messages are emitted inside
            ``with emitter.transaction():`` (or ``begin()`` ... ``commit()``/``abort()``)
            and become visible to ``read_committed`` consumers (librdkafka's default, and
            every reader of this library) all together at the commit, or never. The id
            must be stable for one logical producer and unique among concurrent ones: a new
            emitter with the same id fences the old one and aborts its open transaction.
        extra_config: librdkafka producer settings (e.g. ``linger.ms``), passed as is.

    Messages are produced idempotently (no duplicates or reordering from retries).
    """

    def __init__(
        self,
        brokers: str | Iterable[str],
        topic: str,
        codec: Codec[T],
        *,
        partitioner: str = "murmur2",
        delivery_timeout: float = 30.0,
        transactional_id: str | None = None,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        if transactional_id is not None and (
            not isinstance(transactional_id, str) or not transactional_id
        ):
            raise ConfigError(
                f"transactional_id must be a non-empty string (None: not transactional), "
                f"got {transactional_id!r}"
            )
        if not isinstance(topic, str) or not topic:
            raise ConfigError(f"topic must be a non-empty string, got {topic!r}")
        check_codec("codec", codec)
        if delivery_timeout <= 0:
            raise ConfigError(f"delivery_timeout must be positive, got {delivery_timeout}")
        self.topic = topic
        self.codec = codec
        self._partition_for = get_partitioner(partitioner)
        self._delivery_timeout = delivery_timeout
        partitions = TopicManager(brokers, extra_config=extra_config).partitions(topic)
        if partitions is None:
            raise TopicError(
                f"topic {topic!r} does not exist: create it first, e.g. "
                f"TopicManager(brokers).ensure_stream({topic!r}, partitions)"
            )
        self.partitions = partitions
        self._rebootstrap = Rebootstrap()  # the poll thread serves its statistics
        config = client_config(
            brokers,
            extra_config,
            {"enable.idempotence": True, "linger.ms": 5, **self._rebootstrap.client_config()},
        )
        self.transactional_id = transactional_id
        self._in_transaction = False
        if transactional_id is not None:
            config["transactional.id"] = transactional_id
        self._producer = Producer(config)
        self._rebootstrap.attach(self._producer, config["bootstrap.servers"])
        if transactional_id is not None:
            try:
                self._producer.init_transactions(delivery_timeout)
            except KafkaException as exc:
                raise DeliveryError(
                    f"the transactional emitter {transactional_id!r} could not start: "
                    f"{_text(exc)}; transactions need Apache Kafka 0.11+ with a transaction "
                    "state log it can replicate"
                ) from exc
        self._closed = threading.Event()
        self._waiters = DeliveryWaiters(keep_failures=transactional_id is None)
        self._poller = threading.Thread(
            target=self._poll_loop, name=f"goka-emitter-{topic}", daemon=True
        )
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)

    def emit(
        self, key: str, value: T | None, headers: Mapping[str, bytes] | None = None
    ) -> DeliveryFuture:
        """Send ``value`` (None: a tombstone) with ``key``; the future resolves on delivery."""
        if self._closed.is_set():
            raise EmitterClosedError(
                f"the emitter of topic {self.topic!r} is closed; create a new Emitter"
            )
        if not isinstance(key, str):
            raise ConfigError(f"key must be str, got {type(key).__name__}: {key!r}")
        if self.transactional_id is not None and not self._in_transaction:
            raise ConfigError(
                f"the emitter {self.transactional_id!r} is transactional: emit inside "
                "'with emitter.transaction():' or after emitter.begin()"
            )
        raw_key = key.encode()
        encoded = None if value is None else self.codec.encode(value)
        partition = self._partition_for(raw_key, self.partitions)
        future = DeliveryFuture(self._waiters, _Describe(key, self.topic, partition))
        header_values = header_list(headers)
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    encoded,
                    raw_key,
                    partition=partition,
                    headers=cast(Any, header_values),
                    on_delivery=future._on_delivery,
                )
                return future
            except BufferError:
                self._producer.poll(0.05)  # queue full: wait for deliveries, then retry
            except KafkaException as exc:
                raise DeliveryError(f"cannot produce to topic {self.topic!r}: {exc}") from exc

    def emit_sync(
        self, key: str, value: T | None, headers: Mapping[str, bytes] | None = None
    ) -> Delivery:
        """Send and wait for the acknowledgement; returns (partition, offset)."""
        future = self.emit(key, value, headers)
        try:
            return future.result(timeout=self._delivery_timeout)
        except TimeoutError as exc:
            raise DeliveryError(f"{exc}; check that the brokers are reachable") from exc

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every emitted message is delivered or failed.

        Raises DeliveryError if messages are not acknowledged in time, or if messages
        emitted since the last flush failed and nobody asked their futures (``result()``,
        ``exception()``, a done callback): a failure is never dropped unseen. A failure
        whose future was asked is the asker's, and is not reported again here. A
        transactional emitter's failures are reported by ``commit()`` instead.
        """
        wait = self._delivery_timeout if timeout is None else timeout
        remaining = self._producer.flush(wait)
        if remaining:
            raise DeliveryError(
                f"{remaining} messages to topic {self.topic!r} not acknowledged within {wait}s"
            )
        failed = self._waiters.take_unobserved_failures()
        if failed:
            raise DeliveryError(
                f"{len(failed)} of the messages emitted to topic {self.topic!r} since the last "
                f"flush were not delivered, the first: {failed[0].exception(0)}; emit them again "
                "(ask a message's future, emit(...).result(), to handle its failure yourself)"
            )

    # -- transactions ---------------------------------------------------------------------

    def begin(self) -> None:
        """Open a transaction: what is emitted until ``commit()`` becomes visible at once."""
        if self.transactional_id is None:
            raise ConfigError("begin() needs Emitter(..., transactional_id=...)")
        if self._in_transaction:
            raise ConfigError("a transaction is open already: commit() or abort() it first")
        self._producer.begin_transaction()
        self._in_transaction = True

    def commit(self) -> None:
        """Deliver and commit the open transaction, waiting up to ``delivery_timeout``.

        If it cannot be committed it is aborted (nothing of it is visible) and
        DeliveryError raised; emit it again in a new transaction.
        """
        self._check_open("commit")
        try:
            self._producer.commit_transaction(self._delivery_timeout)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.retriable():  # the outcome is not known yet: ask once more
                try:
                    self._producer.commit_transaction(self._delivery_timeout)
                    self._in_transaction = False
                    return
                except KafkaException as again:
                    exc, error = again, again.args[0]
            self._in_transaction = False
            if not error.fatal():
                self._producer.abort_transaction(self._delivery_timeout)
            raise DeliveryError(
                f"the transaction of emitter {self.transactional_id!r} was not committed "
                f"({error.str()}); it was aborted: none of its messages is visible"
                + ("; the emitter was fenced by a newer one with its id" if error.fatal() else "")
            ) from exc
        self._in_transaction = False

    def abort(self) -> None:
        """Abort the open transaction: none of its messages becomes visible."""
        self._check_open("abort")
        self._in_transaction = False
        try:
            self._producer.abort_transaction(self._delivery_timeout)
        except KafkaException as exc:
            raise DeliveryError(
                f"the transaction of emitter {self.transactional_id!r} could not be aborted: "
                f"{_text(exc)}"
            ) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Emitter[T]]:
        """``with emitter.transaction(): emitter.emit(...)``: committed at the end of the
        block, aborted if it raises (the exception goes on)."""
        self.begin()
        try:
            yield self
        except BaseException:
            self.abort()
            raise
        self.commit()

    def _check_open(self, doing: str) -> None:
        if self.transactional_id is None:
            raise ConfigError(f"{doing}() needs Emitter(..., transactional_id=...)")
        if not self._in_transaction:
            raise ConfigError(f"{doing}(): no transaction is open (begin() opens one)")

    def close(self) -> None:
        """Wait for in-flight messages, then release the producer; an open transaction is
        aborted. Idempotent."""
        if self._closed.is_set():
            return
        try:
            if self._in_transaction:
                _logger.warning(
                    "emitter %s closed with a transaction open: it is aborted",
                    self.transactional_id,
                )
                self.abort()
            self.flush()
        finally:
            self._closed.set()
            self._poller.join()

    def __enter__(self) -> Emitter[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _text(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)
