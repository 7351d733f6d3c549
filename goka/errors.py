"""Every error this library raises derives from :class:`GokaError`.

Messages name what was wrong and what to do about it.
"""


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
