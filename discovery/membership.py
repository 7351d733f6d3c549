"""The membership table: every live member of the deployment and the partitions it holds,
read from the discovery topic by a background thread (the rules are in ``_table``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from discovery._table import MemberTable
from discovery.model import Location, MemberInfo, Owner
from goka._config import client_config
from goka._consume import consume_available
from goka._kafka_errors import high_watermark, raise_if_permanent
from goka._reachability import Reachability
from goka.errors import ConfigError, GokaError, TopicError
from goka.topics import TopicManager, check_topic_settings

__all__ = ["DEFAULT_TOPIC", "Membership", "ensure_discovery_topic"]

DEFAULT_TOPIC = "goka-discovery"
_logger = logging.getLogger("goka.discovery")

Subscriber = Callable[["Membership"], None]


def ensure_discovery_topic(manager: TopicManager, topic: str) -> None:
    """Creates the discovery topic (compacted, 1 partition) or checks the existing one."""
    manager.ensure_compacted(topic, 1, why="the discovery topic keeps announcements in order")


class Membership:
    """Follows the discovery ``topic`` and answers who holds what.

    Args:
        brokers: bootstrap servers.
        topic: the discovery topic (default ``goka-discovery``).
        create: create the topic if it is missing (default True); with False, a missing
            topic is an error (for read-only tools, so a typo creates nothing).
        replication_factor, min_insync_replicas: of the topic if created (default: the
            broker's defaults).
        extra_config: librdkafka settings for the consumer, passed as is.
        poll_timeout: seconds one poll waits; bounds how late a death is noticed.
        clock: returns the current time (for tests).
    """

    def __init__(
        self,
        brokers: str | Iterable[str],
        topic: str = DEFAULT_TOPIC,
        *,
        create: bool = True,
        replication_factor: int = -1,
        min_insync_replicas: int | None = None,
        extra_config: Mapping[str, Any] | None = None,
        poll_timeout: float = 0.2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if poll_timeout <= 0:
            raise ConfigError(f"poll_timeout must be positive, got {poll_timeout}")
        check_topic_settings(replication_factor, min_insync_replicas)
        self.topic = topic
        self._replication = (replication_factor, min_insync_replicas)
        self._brokers = brokers
        self._create = create
        self._extra_config = extra_config
        self._config = client_config(brokers, extra_config)
        self._poll_timeout = poll_timeout
        self._clock = clock
        self._table = MemberTable(topic)
        self._reachability = Reachability()
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        """The error that stopped the follower thread, if any (``wait_synced`` raises it)."""

    def unreachable_for(self) -> float:
        """Seconds the follower has had no broker connection up (0.0: it has one); the
        members are then as last read (see ``stale``)."""
        return self._reachability.unreachable_for()

    @property
    def malformed(self) -> int:
        """Malformed messages seen on the topic (logged and ignored)."""
        return self._table.malformed

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Membership:
        if self._thread is not None:
            raise GokaError("the membership table is already started")
        manager = TopicManager(
            self._brokers,
            replication_factor=self._replication[0],
            min_insync_replicas=self._replication[1],
            extra_config=self._extra_config,
        )
        if self._create:
            ensure_discovery_topic(manager, self.topic)
        elif manager.partitions(self.topic) is None:
            raise TopicError(
                f"discovery topic {self.topic!r} does not exist: no member has announced "
                "itself yet, or the topic name is wrong (see --topic)"
            )
        self._thread = threading.Thread(
            target=self._follow, name=f"goka-membership-{self.topic}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until the topic was read to its end once; raises the follower's error."""
        synced = self._synced.wait(timeout)
        if self.error is not None:
            raise GokaError(f"the membership table stopped: {self.error}") from self.error
        return synced

    def __enter__(self) -> Membership:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(membership)`` after every change (from the follower thread);
        returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # -- queries -------------------------------------------------------------------------

    def members(self) -> list[MemberInfo]:
        """The live members, sorted by member id."""
        return self._table.members(self._clock())

    @property
    def stale(self) -> bool:
        """Whether nothing has been heard on the topic for a while, so that the members are
        the last view held from before (see ``discovery._table``)."""
        return self._table.stale(self._clock())

    def owners(self, table: str, partition: int) -> list[Owner]:
        """The live members holding ``partition`` of ``table``, the active owner first."""
        return self._table.owners(table, partition, self._clock())

    def locate(self, table: str, key: str | bytes) -> Location:
        """The partition of ``key`` (with the table's announced partitioner and partition
        count) and its owners. Raises GokaError if no live member announces ``table``."""
        return self._table.locate(table, key, self._clock())

    # -- following the topic -------------------------------------------------------------

    def _follow(self) -> None:
        config = {
            **self._config,
            "group.id": "goka-membership",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            **self._reachability.client_config(),
        }
        consumer = Consumer(config)
        self._reachability.attach(consumer, config)
        try:
            partition = TopicPartition(self.topic, 0, OFFSET_BEGINNING)
            consumer.assign([partition])
            # synced once everything written before we started is read (or at an EOF event:
            # librdkafka sends none while the topic is written continuously)
            end = high_watermark(consumer, partition, timeout=30.0)
            position = 0
            stale = False
            while not self._stopping.is_set():
                changed = False
                if not self._synced.is_set() and position >= end:
                    self._synced.set()
                    changed = True
                messages = consume_available(consumer, 1000, self._poll_timeout)
                for msg in messages:
                    error = msg.error()
                    live = self._synced.is_set()
                    if error is None:
                        position = msg.offset() + 1
                        changed |= self._table.apply(
                            msg.key(), msg.value(), self._clock(), live=live
                        )
                    elif error.code() == KafkaError._PARTITION_EOF:
                        if not live:
                            self._synced.set()
                            changed = True
                    else:
                        raise_if_permanent(
                            error, f"reading discovery topic {self.topic!r}", msg, consumer
                        )
                changed |= self._table.expire(self._clock())
                was_stale, stale = stale, self.stale
                if stale != was_stale:
                    log = _logger.warning if stale else _logger.info
                    log("discovery topic %s: %s", self.topic, "silent: holding the last view of "
                        "the members" if stale else "announcements arrive again")  # fmt: skip
                if changed and self._synced.is_set():
                    self._notify()
        except BaseException as exc:
            self.error = exc
            _logger.exception("the membership table of %s stopped", self.topic)
            self._synced.set()  # wake waiters; they raise
        finally:
            consumer.close()

    def _notify(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(self)
            except Exception:
                _logger.exception("a membership subscriber failed")
