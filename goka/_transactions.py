"""Exactly-once processing: one Kafka transaction per batch (``guarantee="exactly_once"``).

A batch's changelog records, everything its callbacks emitted or looped back, and its input
offsets (``send_offsets_to_transaction`` with the input consumer's group metadata, as Kafka
Streams' EOS v2 does) are committed in one transaction; only then are the batch's writes
applied to local storage. Readers with ``isolation.level=read_committed`` (librdkafka's
default, which every consumer of this library keeps) see all of a batch or nothing of it.

Fencing comes from the group: the transaction coordinator accepts the offsets only from a
member of the group's current generation, so an instance whose partitions moved to another
member (it stalled past the session timeout, or was cut off) has its transaction refused and
aborts it; a transaction left open by a process that died is aborted by the broker after
``transaction.timeout.ms``, or at once when the instance starts again with the same
transactional id (derived from ``group_instance_id`` when there is one).

What went wrong decides what happens next:

- an abortable error (the offsets refused, a message refused, a broker outage past the
  transaction timeout): the transaction is aborted and :class:`TransactionAborted` raised;
  the processor drops the batch and rewinds to the committed offsets (see ``goka._stall``);
- a fatal one (the producer was fenced by a newer one of the same transactional id, or its
  epoch was bumped after the broker timed the transaction out): the producer is replaced by
  a new one with the same id, which aborts whatever the old one left open, and the batch is
  dropped as for an abortable error;
- a retriable one (a commit that timed out): the commit is tried again until the
  transaction timeout has passed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from goka._producer import BatchProducer
from goka.errors import ConfigError, DeliveryError, ProcessorError

__all__ = [
    "AT_LEAST_ONCE",
    "EXACTLY_ONCE",
    "GUARANTEES",
    "TRANSACTION_TIMEOUT_MS",
    "TransactionAborted",
    "TransactionalProducer",
    "check_guarantee",
    "transactional_id",
]

_logger = logging.getLogger("goka.processor")

AT_LEAST_ONCE = "at_least_once"
EXACTLY_ONCE = "exactly_once"
GUARANTEES = (AT_LEAST_ONCE, EXACTLY_ONCE)

TRANSACTION_TIMEOUT_MS = 10_000
"""``transaction.timeout.ms`` unless configured (Kafka Streams' exactly-once default): how
long a transaction left open by a dead or stalled instance holds back read_committed readers
of its topics before the broker aborts it."""


def check_guarantee(guarantee: object) -> str:
    if guarantee not in GUARANTEES:
        raise ConfigError(
            f"guarantee must be {AT_LEAST_ONCE!r} (the default) or {EXACTLY_ONCE!r}, "
            f"got {guarantee!r}"
        )
    return str(guarantee)


def transactional_id(group: str, group_instance_id: str | None, member_id: str) -> str:
    """The producer's ``transactional.id``: stable across restarts where the instance is
    (static membership), so a restart aborts what its predecessor left open at once."""
    return f"{group}-{group_instance_id if group_instance_id is not None else member_id}"


class TransactionAborted(DeliveryError):
    """A batch's transaction was aborted (refused offsets or messages, fencing, an outage):
    nothing of it is visible; the processor drops it and processes it again."""


class TransactionalProducer(BatchProducer):
    """A BatchProducer whose batches are transactions (see the module docstring)."""

    def __init__(self, config: dict[str, Any], timeout: float) -> None:
        if "transactional.id" not in config:
            raise ConfigError("a transactional producer needs a transactional.id")
        self._config = config
        self._timeout = timeout
        super().__init__(config)
        self._in_transaction = False
        self.transactions = 0
        """Transactions committed."""
        self.aborts = 0
        """Transactions aborted."""
        self._init()

    @property
    def transactional_id(self) -> str:
        return str(self._config["transactional.id"])

    def _init(self) -> None:
        try:
            self._producer.init_transactions(self._timeout)
        except KafkaException as exc:
            raise ProcessorError(
                f"the transactional producer {self.transactional_id!r} could not start: "
                f"{exc.args[0].str()}; exactly-once needs a broker with transactions "
                "(Apache Kafka 0.11+, with a transaction state log it can replicate: "
                "transaction.state.log.replication.factor <= the number of brokers)"
            ) from exc

    def begin(self) -> None:
        """Open the transaction of the next batch, unless one is open (a local step)."""
        if not self._in_transaction:
            self._producer.begin_transaction()
            self._in_transaction = True

    def commit(
        self, offsets: Sequence[TopicPartition], group_metadata: Any, deadline: float
    ) -> None:
        """Add ``offsets`` to the open transaction and commit it; raises TransactionAborted
        (after aborting it) if it cannot be committed."""
        if not self._in_transaction:
            return
        try:
            if offsets:
                self._producer.send_offsets_to_transaction(
                    list(offsets), group_metadata, _left(deadline)
                )
            while True:
                try:
                    self._producer.commit_transaction(_left(deadline))
                    break
                except KafkaException as exc:
                    error: KafkaError = exc.args[0]
                    if not error.retriable() or time.monotonic() >= deadline:
                        raise
        except KafkaException as exc:
            self._abandon(exc.args[0])
            raise TransactionAborted(
                f"the transaction of the batch was aborted: {exc.args[0].str()}; nothing of "
                "it is visible to read_committed readers, and it is processed again"
            ) from exc
        self._in_transaction = False
        self.transactions += 1

    def purge_unsent(self) -> None:
        """Abort the open transaction: nothing of it was or will be visible."""
        if self._in_transaction:
            try:
                self._producer.abort_transaction(self._timeout)
                self._in_transaction = False
                self.aborts += 1
            except KafkaException as exc:
                self._abandon(exc.args[0])
        self._producer.poll(0)

    def _abandon(self, error: KafkaError) -> None:
        """Abort after a failure; a producer that can no longer abort (fenced, or fatally
        failed) is replaced by a new one of the same transactional id, whose start aborts
        what this one left open."""
        self.aborts += 1
        self._in_transaction = False
        if not error.fatal():
            try:
                self._producer.abort_transaction(self._timeout)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if not error.fatal():
                    raise ProcessorError(
                        f"the transaction of producer {self.transactional_id!r} could not be "
                        f"aborted: {error.str()}"
                    ) from exc
        _logger.warning(
            "transactional producer %s failed (%s): replaced by a new one, which aborts what "
            "it left open",
            self.transactional_id,
            error.str(),
        )
        with contextlib.suppress(KafkaException):  # a fatally failed producer refuses these
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            self._producer.poll(0)
        self._producer = self._new_producer(self._config)
        self._init()

    def close(self, timeout: float) -> None:
        self.purge_unsent()
        super().close(timeout)


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def transaction_config(
    config: Mapping[str, Any], transactional: str, message_timeout_ms: int
) -> dict[str, Any]:
    """The producer settings of a transactional producer: its id, a transaction timeout,
    and a message timeout within it (librdkafka refuses a longer one)."""
    timeout_ms = int(config.get("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS))
    return {
        **config,
        "transactional.id": transactional,
        "transaction.timeout.ms": timeout_ms,
        "message.timeout.ms": min(message_timeout_ms, timeout_ms),
    }
