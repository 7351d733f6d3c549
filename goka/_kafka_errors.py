"""Which consumer errors stop a client and which librdkafka recovers from by itself.

librdkafka reconnects with backoff when brokers go away (``_TRANSPORT``,
``_ALL_BROKERS_DOWN``, ...) and reports those as non-retriable local errors, so
"retriable" is no guide: only fatal errors and errors that retrying cannot fix stop us.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from goka._config import ClientErrors
from goka.errors import BrokerError

__all__ = [
    "admin_error",
    "end_offsets",
    "high_watermark",
    "kafka_error",
    "raise_if_permanent",
]

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


def kafka_error(exc: KafkaException) -> KafkaError | None:
    """The KafkaError a KafkaException carries (confluent-kafka passes it first), if any."""
    error = exc.args[0] if exc.args else None
    return error if isinstance(error, KafkaError) else None


_UNKNOWN_PLACE = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}
)


def raise_if_permanent(error: KafkaError, doing: str, msg: Any, client: Any) -> None:
    """Raise BrokerError for an error retrying cannot fix; log anything else as transient.

    ``msg`` is the consumer's error message, ``client`` one whose ``list_topics`` is asked
    whether an unknown topic or partition is really gone: just after a topic is created, a
    broker that has not learned of it yet answers UNKNOWN_TOPIC_OR_PART to the ListOffsets of
    a consumer's offset reset, which librdkafka reports to the application and retries.
    """
    code = error.code()
    permanent = code in _PERMANENT and not (code in _UNKNOWN_PLACE and _known(client, msg))
    if error.fatal() or permanent:
        raise BrokerError(f"{doing} failed: {error.str()}")
    _logger.warning("%s: transient error, librdkafka retries: %s", doing, error.str())


def _known(client: Any, msg: Any) -> bool:
    """Whether the cluster's metadata has the topic (and partition) of ``msg``; True when it
    cannot be asked (not shown to be gone: the next error asks again)."""
    topic, partition = msg.topic(), msg.partition()
    try:
        metadata = client.list_topics(topic, timeout=10).topics.get(topic)
    except KafkaException as exc:
        _logger.warning("cannot ask the metadata of topic %r: %s", topic, exc)
        return True
    if metadata is None or metadata.error is not None:
        return False
    return partition is None or partition < 0 or partition in metadata.partitions


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


def admin_error(
    exc: KafkaException,
    doing: str,
    servers: str,
    timeout: float,
    client_errors: ClientErrors | None = None,
) -> BrokerError:
    """The BrokerError of a failed admin request: one naming the bootstrap servers when no
    broker could be reached or authenticated with (and the refused login or the client's last
    error, from ``client_errors``), else one saying what failed."""
    error = kafka_error(exc)
    if error is not None and error.code() in _UNREACHABLE:
        refusal = client_errors.refusal if client_errors is not None else None
        if refusal is not None:
            return BrokerError(
                f"{doing}: the brokers of {servers} (bootstrap.servers) refused the login "
                f"({refusal.str()}); check the credentials and the security settings "
                "(security.protocol, sasl.*, ssl.*)"
            )
        last = client_errors.last if client_errors is not None else None
        seen = f"; the last client error: {last.str()}" if last is not None else ""
        return BrokerError(
            f"{doing}: no broker of {servers} (bootstrap.servers) answered within {timeout:g}s"
            f" ({error.str()}{seen}); check the addresses, that Kafka runs there, and the "
            "security settings (security.protocol, sasl.*, ssl.*)"
        )
    return BrokerError(f"{doing}: {exc}")


# What a ListOffsets request answers while leadership moves: a partition of a topic just
# created has no leader yet (or the answering broker, or librdkafka's metadata cache, has not
# learned of it), and one whose leader died is being re-elected (librdkafka destroys the
# handle of a broker the cluster fenced, failing what was sent to it). Kafka clears these
# within seconds.
_LEADERSHIP_MOVING = frozenset(
    {
        KafkaError._DESTROY_BROKER,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
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
            error = kafka_error(exc)
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


def end_offsets(
    admin: AdminClient, partitions: set[tuple[str, int]], timeout: float
) -> dict[tuple[str, int], int] | None:
    """The high watermarks of ``partitions`` (records of open transactions included), or
    None if their leaders cannot say now (ask again later).

    librdkafka's admin ListOffsets (seen with librdkafka 2.16 on Kafka 4.1) takes each
    partition's leader and leader epoch from the client's metadata cache, and does not
    refresh that cache when the answer says it is stale: after a leader change it failed with
    FENCED_LEADER_EPOCH, or "No leaders found" (_NOENT), for as long as the client lived. So
    any failure but an unreachable cluster refreshes the metadata of the topics asked, and the
    next request names the new leaders. For a partition whose leader it cannot reach it
    answers offset -1001 without an error: taken for an end, that would count the partition as
    caught up at any offset.
    """
    futures = admin.list_offsets(
        {TopicPartition(*where): OffsetSpec.latest() for where in partitions},  # type: ignore[no-untyped-call]
        isolation_level=IsolationLevel.READ_UNCOMMITTED,
        request_timeout=timeout,
    )
    try:
        ends = {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}
    except KafkaException as exc:
        _logger.info("end offsets of %s are unknown yet: %s", sorted(partitions), exc)
        error = kafka_error(exc)
        if error is None or error.code() not in _UNREACHABLE:
            _refresh_metadata(admin, {topic for topic, _ in partitions}, timeout)
        return None
    unknown = sorted(where for where, end in ends.items() if end < 0)
    if unknown:
        _logger.info("end offsets of %s are unknown yet: no leader answered", unknown)
        _refresh_metadata(admin, {topic for topic, _ in unknown}, timeout)
        return None
    return ends


def _refresh_metadata(admin: AdminClient, topics: set[str], timeout: float) -> None:
    """Ask the cluster for the metadata of ``topics``: librdkafka updates its cache with
    every answer."""
    for topic in sorted(topics):
        try:
            admin.list_topics(topic, timeout=timeout)
        except KafkaException as exc:
            _logger.info("cannot refresh the metadata of %s: %s", topic, exc)
