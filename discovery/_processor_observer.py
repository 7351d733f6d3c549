"""The processor's side of discovery: announces its partitions and, with
``standby_replicas``, places its hot standbys over its group's live members: where each
partition goes next when a member leaves, then on the hash ring (``discovery.placement``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discovery.announcer import Announcer
from discovery.membership import Membership
from discovery.placement import standbys

if TYPE_CHECKING:
    from discovery.config import DiscoveryConfig
    from goka.processor import Processor

__all__ = ["ProcessorAnnouncer"]

_logger = logging.getLogger("goka.discovery")


class ProcessorAnnouncer:
    """The ProcessorObserver created by ``DiscoveryConfig.attach``."""

    def __init__(self, config: DiscoveryConfig, processor: Processor) -> None:
        self._processor = processor
        self.member_id = processor.member_id
        self.announcer = Announcer(
            config,
            member_id=processor.member_id,
            role="processor",
            brokers=processor.brokers,
            extra_config=processor.extra_config,
            group=processor.graph.group,
            tables=lambda: [processor.local_table()],
            generation=lambda: processor.generation,
        )
        self._membership: Membership | None = None
        self._standbys: set[int] | None = None
        self._owners: dict[int, str] = {}
        """The last active owner announced of each partition, kept while it is away (a
        restart), so that the standbys of its partitions stay where they are."""

    def started(self) -> None:
        processor = self._processor
        self.announcer.start()
        if processor.standby_replicas is not None:
            announced = self.announcer.config
            membership = Membership(
                processor.brokers,
                announced.topic,
                replication_factor=announced.replication_factor,
                min_insync_replicas=announced.min_insync_replicas,
                extra_config=processor.extra_config,
            )
            membership.subscribe(lambda _: self._place_standbys())
            self._membership = membership.start()

    def changed(self) -> None:
        self.announcer.changed()

    def stopped(self) -> None:
        if self._membership is not None:
            self._membership.stop()
        self.announcer.stop()

    def standby_partitions(self) -> set[int] | None:
        return self._standbys

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
        for partition in range(processor.partition_count or 0):
            found = membership.owners(table, partition)
            if found and found[0].kind == "active":
                self._owners[partition] = found[0].member_id
        placed = standbys(sorted(names), processor.partition_count or 0, replicas, self._owners)
        wanted = {p for p, members in placed.items() if self.member_id in members}
        if wanted != self._standbys:
            _logger.info("member %s: standby partitions %s", self.member_id, sorted(wanted))
            self._standbys = wanted
