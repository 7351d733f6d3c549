"""Which consumer errors stop a client and which librdkafka recovers from by itself.

librdkafka reconnects with backoff when brokers go away (``_TRANSPORT``,
``_ALL_BROKERS_DOWN``, ...) and reports those as non-retriable local errors, so
"retriable" is no guide: only fatal errors and errors that retrying cannot fix stop us.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError

from goka.errors import BrokerError

__all__ = ["raise_if_permanent"]

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
