"""Every error this library raises derives from :class:`GokaError`.

Messages name what was wrong and what to do about it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BrokerError",
    "CallbackFailed",
    "CodecError",
    "ConfigError",
    "DeliveryError",
    "DevBrokerError",
    "EmitterClosedError",
    "ExpectationError",
    "GokaError",
    "HistoryUnavailable",
    "LocalKafkaError",
    "MissingTool",
    "PartitionNotHeld",
    "ProcessorError",
    "ReadError",
    "StorageError",
    "TopicError",
    "UnknownTable",
    "VisitAborted",
]


class GokaError(Exception):
    """Root of all errors raised by goka."""


class ConfigError(GokaError, ValueError):
    """An argument or a group definition is invalid; the message names it and the fix."""


class CodecError(GokaError):
    """A value could not be encoded or decoded with the configured codec."""


class TopicError(GokaError):
    """A topic is missing, or its partition count or configuration does not fit."""


class BrokerError(GokaError):
    """The Kafka cluster could not be reached or answered with an error."""


class DeliveryError(GokaError):
    """A produced message was not acknowledged by the broker."""


class EmitterClosedError(GokaError):
    """An emitter was used after close()."""


class StorageError(GokaError):
    """Local table storage failed or holds data that does not fit the table topic."""


class ProcessorError(GokaError):
    """A processor stopped because of a failure; the cause is chained."""


class DevBrokerError(GokaError):
    """The embedded dev broker could not be started."""


class CallbackFailed(GokaError):
    """Raised inside a callback by ``ctx.fail(error)``; the processor stops with ``error``."""


class VisitAborted(GokaError):
    """A ``visit_all`` was cut short by a rebalance or by the processor stopping."""


class ExpectationError(GokaError, AssertionError):
    """A tester expectation did not hold (e.g. ``OutputTracker.expect_empty()``)."""


class LocalKafkaError(GokaError):
    """The local Apache Kafka (``goka.localkafka``) could not be started or controlled."""


class MissingTool(LocalKafkaError):
    """Java 17+ or Maven is not installed; the message says what to install."""


class PartitionNotHeld(GokaError):
    """The partition is not (or no longer) held here."""


class HistoryUnavailable(PartitionNotHeld):
    """A change feed cannot resume from the offset asked for: it keeps changes only from
    ``first`` (or it has ended); watch from another replica, or again with a snapshot."""

    def __init__(self, partition: int, first: int, reason: str) -> None:
        super().__init__(reason)
        self.partition = partition
        self.first = first


class UnknownTable(GokaError):
    """No live member announces the table."""


_READ_HINTS = {
    "UNAUTHENTICATED": "pass the deployment's bearer token "
    "(token=..., or --token / VIEWSVC_TOKEN on the command line)",
    "FAILED_PRECONDITION": "no replica meets max_lag: raise it, or read with max_lag=0",
    "OUT_OF_RANGE": "no replica still has the changes since the offsets asked for: watch "
    "again with a snapshot",
    "DEADLINE_EXCEEDED": "raise the timeout, or check that the min_offsets were written to "
    "the right table",
}


class ReadError(GokaError):
    """A read over gRPC failed; ``code`` is the ``grpc.StatusCode``, ``details`` the server's
    message."""

    def __init__(self, code: Any, details: str) -> None:
        hint = _READ_HINTS.get(code.name)
        super().__init__(f"{code.name}: {details}" + (f" ({hint})" if hint else ""))
        self.code = code
        self.details = details
