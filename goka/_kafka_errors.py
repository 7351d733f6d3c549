"""Which consumer errors stop a client and which librdkafka recovers from by itself.

librdkafka reconnects with backoff when brokers go away (``_TRANSPORT``,
``_ALL_BROKERS_DOWN``, ...) and reports those as non-retriable local errors, so
"retriable" is no guide: only fatal errors and errors that retrying cannot fix stop us.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from goka.errors import BrokerError

__all__ = ["admin_error", "high_watermark", "raise_if_permanent"]

_logger = logging.getLogger("goka.kafka")

_PERMANENT = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._AUTO_OFFSET_RESET,
    }
)


def raise_if_permanent(error: KafkaError, doing: str) -> None:
    """Raise BrokerError for an error retrying cannot fix; log anything else as transient."""
    if error.fatal() or error.code() in _PERMANENT:
        raise BrokerError(f"{doing} failed: {error.str()}")
    _logger.warning("%s: transient error, librdkafka retries: %s", doing, error.str())


_UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError._AUTHENTICATION,
        KafkaError._SSL,
        KafkaError.SASL_AUTHENTICATION_FAILED,
    }
)
"""What a request answers when no broker could be reached or logged in to."""


def admin_error(exc: KafkaException, doing: str, servers: str, timeout: float) -> BrokerError:
    """The BrokerError of a failed admin request: one naming the bootstrap servers when no
    broker could be reached or authenticated with, else one saying what failed."""
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    if error is not None and error.code() in _UNREACHABLE:
        return BrokerError(
            f"{doing}: no broker of {servers} (bootstrap.servers) answered within {timeout:g}s"
            f" ({error.str()}); check the addresses, that Kafka runs there, and the security "
            "settings (security.protocol, sasl.*, ssl.*)"
        )
    return BrokerError(f"{doing}: {exc}")


# What a ListOffsets request answers while leadership moves: a partition of a topic just
# created has no leader yet (or the answering broker has not learned of it), and one whose
# leader died is being re-elected. Kafka clears these within seconds.
_LEADERSHIP_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.REPLICA_NOT_AVAILABLE,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._WAIT_COORD,
    }
)


def high_watermark(consumer: Consumer, partition: TopicPartition, timeout: float) -> int:
    """The high watermark of ``partition`` asked of its leader (not librdkafka's cache),
    retried while its leadership moves, for up to ``timeout`` seconds; BrokerError after."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            _, high = consumer.get_watermark_offsets(partition, timeout=remaining, cached=False)
            return int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            transient = (
                error is not None and not error.fatal() and error.code() in _LEADERSHIP_MOVING
            )
            if not transient or time.monotonic() >= deadline:
                raise BrokerError(
                    f"cannot read the end offset of {partition.topic!r} partition "
                    f"{partition.partition} within {timeout}s: {exc}"
                ) from exc
            _logger.info(
                "end offset of %s [%d]: %s; retrying", partition.topic, partition.partition, exc
            )
            time.sleep(0.1)
