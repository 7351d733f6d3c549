"""The announcer: publishes which table partitions a processor holds to the discovery topic.

An announcement goes out on every assignment change, on every partition state change and on
every heartbeat, from the announcer's own thread, so processing never waits for it; a stop
publishes a tombstone. With ``standby_replicas``, the announcer also follows the membership
table and tells the processor which partitions to keep as hot standbys.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Producer

from discovery.membership import DEFAULT_TOPIC, Membership, ensure_discovery_topic
from discovery.model import KIND_VALUES, STATE_VALUES
from discovery.placement import standbys
from discovery.v1 import discovery_pb2 as pb
from goka._config import client_config
from goka.errors import ConfigError
from goka.processor import Processor
from goka.topics import TopicManager

__all__ = ["Announcer", "DiscoveryConfig"]

_logger = logging.getLogger("goka.discovery")
_ENDPOINT = re.compile(r"^[^\s:/]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$")


@dataclass(frozen=True)
class DiscoveryConfig:
    """Announce a processor's partitions: ``Processor(..., discovery=DiscoveryConfig())``.

    Args:
        topic: the discovery topic (default ``goka-discovery``); created compacted with one
            partition if missing.
        advertise: ``host:port`` where this member's gRPC server can be reached; empty if it
            serves no reads (default).
        heartbeat: seconds between announcements (default 2.0); a member missing 3 is dead.
        member_id: this member's id (default: ``<group>@<hostname>:<pid>:<random>``).
    """

    topic: str = DEFAULT_TOPIC
    advertise: str = ""
    heartbeat: float = 2.0
    member_id: str | None = None

    def __post_init__(self) -> None:
        if not self.topic:
            raise ConfigError("the discovery topic name is empty")
        if self.advertise and not _ENDPOINT.match(self.advertise):
            raise ConfigError(
                f"advertise={self.advertise!r} is not host:port, e.g. 'pod-0.svc:50051'"
            )
        if self.heartbeat <= 0:
            raise ConfigError(f"heartbeat must be positive seconds, got {self.heartbeat}")
        if self.member_id is not None and not self.member_id:
            raise ConfigError("member_id must not be empty")

    def attach(self, processor: Processor) -> Announcer:
        return Announcer(self, processor)


class Announcer:
    """The ProcessorObserver that announces a processor (see ``DiscoveryConfig``)."""

    def __init__(self, config: DiscoveryConfig, processor: Processor) -> None:
        self.config = config
        self._processor = processor
        group = processor.graph.group
        self.member_id = config.member_id or (
            f"{group}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self._sequence = itertools.count(1)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: Producer | None = None
        self._membership: Membership | None = None
        self._standbys: set[int] | None = None
        self.announcements = 0
        """Announcements published so far (not counting the tombstone)."""

    # -- ProcessorObserver ---------------------------------------------------------------

    def started(self) -> None:
        processor = self._processor
        manager = TopicManager(processor.brokers, extra_config=processor.extra_config)
        ensure_discovery_topic(manager, self.config.topic)
        config = client_config(processor.brokers, processor.extra_config)
        self._producer = Producer(
            {
                **config,
                "enable.idempotence": True,
                "linger.ms": 0,
                "on_delivery": self._on_delivery,
            }
        )
        if processor.standby_replicas is not None:
            membership = Membership(
                processor.brokers, self.config.topic, extra_config=processor.extra_config
            )
            membership.subscribe(lambda _: self._place_standbys())
            self._membership = membership.start()
        self._thread = threading.Thread(
            target=self._announce_loop, name=f"goka-announcer-{self.member_id}", daemon=True
        )
        self._thread.start()

    def changed(self) -> None:
        self._wake.set()

    def stopped(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.config.heartbeat + 10)
        if self._membership is not None:
            self._membership.stop()
        producer = self._producer
        if producer is not None:
            producer.produce(self.config.topic, None, self.member_id.encode(), partition=0)
            if producer.flush(10):
                _logger.warning("the tombstone of %s was not acknowledged", self.member_id)

    def standby_partitions(self) -> set[int] | None:
        return self._standbys

    def _on_delivery(self, error: Any, msg: Any) -> None:
        if error is not None:  # the next heartbeat announces again
            _logger.warning(
                "announcement of %s to %s was not delivered: %s",
                self.member_id,
                self.config.topic,
                error.str(),
            )

    # -- announcing ----------------------------------------------------------------------

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
            except Exception:  # the next heartbeat tries again; processing goes on
                _logger.exception("announcing %s failed", self.member_id)

    def announcement(self) -> pb.Announcement:
        """This member's current announcement, built from the processor's stats."""
        processor = self._processor
        stats = processor.stats()
        announcement = pb.Announcement(
            member_id=self.member_id,
            role=pb.ROLE_PROCESSOR,
            endpoint=self.config.advertise,
            group=processor.graph.group,
            generation=processor.generation,
            sequence=next(self._sequence),
        )
        announcement.heartbeat_interval.FromTimedelta(timedelta(seconds=self.config.heartbeat))
        announcement.emitted_at.FromDatetime(datetime.now(UTC))
        graph = processor.graph
        if graph.table is not None and graph.persist is not None and processor.partition_count:
            table = announcement.tables.add(
                topic=graph.table,
                partitioner=processor.partitioner,
                partition_count=processor.partition_count,
                key_codec="string",
                value_codec=graph.persist.codec.name,
            )
            for partition, info in sorted(stats["partitions"].items()):
                table.partitions.append(_holding(partition, info))
        return announcement

    def _place_standbys(self) -> None:
        """Recomputes this member's standby partitions from the live members of its group."""
        membership, processor = self._membership, self._processor
        table, replicas = processor.graph.table, processor.standby_replicas
        if membership is None or table is None or replicas is None:
            return
        group = [
            m for m in membership.members()
            if m.role == "processor" and m.group == processor.graph.group
        ]  # fmt: skip
        names = {m.member_id for m in group} | {self.member_id}
        owners = {}
        for partition in range(processor.partition_count or 0):
            found = membership.owners(table, partition)
            if found and found[0].kind == "active":
                owners[partition] = found[0].member_id
        placed = standbys(sorted(names), processor.partition_count or 0, replicas, owners)
        wanted = {p for p, members in placed.items() if self.member_id in members}
        if wanted != self._standbys:
            _logger.info("member %s: standby partitions %s", self.member_id, sorted(wanted))
            self._standbys = wanted


def _holding(partition: int, info: dict[str, Any]) -> pb.PartitionHolding:
    standby = info["state"] == "standby"
    caught_up = "running" if info.get("caught_up") else "recovering"
    state = caught_up if standby else info["state"]
    table = info.get("table", {})
    offset, lag = table.get("offset"), table.get("lag")
    return pb.PartitionHolding(
        partition=partition,
        kind=KIND_VALUES["standby" if standby else "active"],
        state=STATE_VALUES[state],
        applied_offset=-1 if offset is None else offset,
        lag=-1 if lag is None else lag,
    )
