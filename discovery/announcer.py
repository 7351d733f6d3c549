"""The announcer: publishes which table partitions a member holds to the discovery topic.

An announcement goes out whenever ``changed()`` is called (assignment or partition state
changes) and on every heartbeat, from the announcer's own thread, so the member's work never
waits for it; ``stop()`` publishes a tombstone. Processors use it through ``DiscoveryConfig``
(see ``_processor_observer``); view servers and routers create one directly.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from confluent_kafka import Producer

from discovery.membership import ensure_discovery_topic
from discovery.model import KIND_VALUES, ROLE_VALUES, STATE_VALUES
from discovery.v1 import discovery_pb2 as pb
from goka._config import client_config
from goka._rebootstrap import Rebootstrap
from goka.errors import ConfigError
from goka.local_table import HeldPartition, LocalTable, TableMeta
from goka.topics import TopicManager

if TYPE_CHECKING:
    from discovery.config import DiscoveryConfig

__all__ = ["Announcer", "holdings"]

_logger = logging.getLogger("goka.discovery")


class Announcer:
    """Announces one member until ``stop()``.

    Args:
        config: topic, advertised endpoint and heartbeat.
        member_id: the member's id, unique in the deployment.
        role: ``"processor"``, ``"view"`` or ``"router"``.
        brokers, extra_config: how to reach Kafka.
        group: the member's consumer group or view group (may be empty).
        tables: returns the member's local tables, asked at every announcement.
        generation: returns the member's generation (see ``discovery.proto``).
    """

    def __init__(
        self,
        config: DiscoveryConfig,
        *,
        member_id: str,
        role: Literal["processor", "view", "router"],
        brokers: str | Iterable[str],
        extra_config: Mapping[str, Any] | None = None,
        group: str = "",
        tables: Callable[[], Iterable[LocalTable]] = list,
        generation: Callable[[], int] = lambda: -1,
    ) -> None:
        if not member_id:
            raise ConfigError("member_id must not be empty")
        self.config = config
        self.member_id = member_id
        self._role = ROLE_VALUES[role]
        self._brokers = brokers
        self._extra_config = extra_config
        self._group = group
        self._tables = tables
        self._generation = generation
        # from the clock, so a member restarted under the same id (a pod's name) announces
        # sequences above those of its previous life
        self._sequence = itertools.count(time.time_ns() // 1000)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: Producer | None = None
        self.announcements = 0
        """Announcements published so far (not counting the tombstone)."""

    def start(self) -> Announcer:
        """Creates the topic if missing and starts announcing (the first one at once)."""
        manager = TopicManager(
            self._brokers,
            replication_factor=self.config.replication_factor,
            min_insync_replicas=self.config.min_insync_replicas,
            extra_config=self._extra_config,
        )
        ensure_discovery_topic(manager, self.config.topic)
        rebootstrap = Rebootstrap()  # each announcement polls: its statistics are served
        config = client_config(self._brokers, self._extra_config, rebootstrap.client_config())
        self._producer = Producer(
            {**config, "enable.idempotence": True, "linger.ms": 0, "on_delivery": self._on_delivery}
        )
        rebootstrap.attach(self._producer, config["bootstrap.servers"])
        self._thread = threading.Thread(
            target=self._announce_loop, name=f"goka-announcer-{self.member_id}", daemon=True
        )
        self._wake.set()
        self._thread.start()
        return self

    def changed(self) -> None:
        """Announce again now (from any thread; returns at once)."""
        self._wake.set()

    def stop(self) -> None:
        """Stops announcing and publishes a tombstone: the member left."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.config.heartbeat + 10)
        producer = self._producer
        if producer is not None:
            producer.produce(self.config.topic, None, self.member_id.encode(), partition=0)
            if producer.flush(10):
                _logger.warning("the tombstone of %s was not acknowledged", self.member_id)
            self._producer = None

    def _on_delivery(self, error: Any, msg: Any) -> None:
        if error is not None:  # the next heartbeat announces again
            _logger.warning(
                "announcement of %s to %s was not delivered: %s",
                self.member_id,
                self.config.topic,
                error.str(),
            )

    def _announce_loop(self) -> None:
        producer = self._producer
        assert producer is not None
        while not self._stopping.is_set():
            self._wake.wait(self.config.heartbeat)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                producer.produce(
                    self.config.topic,
                    self.announcement().SerializeToString(),
                    self.member_id.encode(),
                    partition=0,
                )
                producer.poll(0)
                self.announcements += 1
            except Exception:  # the next heartbeat tries again; the member's work goes on
                _logger.exception("announcing %s failed", self.member_id)

    def announcement(self) -> pb.Announcement:
        """This member's current announcement, built from its local tables."""
        announcement = pb.Announcement(
            member_id=self.member_id,
            role=self._role,
            endpoint=self.config.advertise,
            group=self._group,
            generation=self._generation(),
            sequence=next(self._sequence),
        )
        announcement.heartbeat_interval.FromTimedelta(timedelta(seconds=self.config.heartbeat))
        announcement.emitted_at.FromDatetime(datetime.now(UTC))
        for local in self._tables():
            meta = local.meta
            if meta is not None:
                announcement.tables.append(holdings(meta, local.held().values()))
        return announcement


def holdings(meta: TableMeta, held: Iterable[HeldPartition]) -> pb.TableHoldings:
    """The announced form of a table and the partitions held of it."""
    table = pb.TableHoldings(
        topic=meta.name,
        partitioner=meta.partitioner,
        partition_count=meta.partition_count,
        key_codec=meta.key_codec,
        value_codec=meta.value_codec,
    )
    for info in sorted(held, key=lambda h: h.partition):
        table.partitions.add(
            partition=info.partition,
            kind=KIND_VALUES[info.kind],
            state=STATE_VALUES[info.state],
            applied_offset=info.applied_offset,
            lag=info.lag,
        )
    return table
