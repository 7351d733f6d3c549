"""How a processor announces its partitions: ``Processor(..., discovery=DiscoveryConfig())``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from discovery._processor_observer import ProcessorAnnouncer
from discovery.membership import DEFAULT_TOPIC
from goka.errors import ConfigError
from goka.topics import check_topic_settings

if TYPE_CHECKING:
    from goka.processor import Processor

__all__ = ["DiscoveryConfig", "check_address", "check_port"]

_ADDRESS = re.compile(r"^(?:[^\s:/\[\]]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$")


def check_address(name: str, value: str, example: str = "pod-0.svc:50051") -> None:
    """Raises ConfigError unless ``value`` is ``host:port`` (a name, an IPv4 address or a
    bracketed IPv6 address, and a port up to 65535): the one rule for every endpoint that
    is announced, listened on or advertised."""
    match = _ADDRESS.match(value)
    if match is None or int(match.group(1)) > 65535:
        raise ConfigError(f"{name}={value!r} is not host:port, e.g. {example!r}")


def check_port(name: str, value: int | None) -> None:
    """Raises ConfigError unless ``value`` is None or a TCP port."""
    if value is not None and not 0 <= value <= 65535:
        raise ConfigError(f"{name}={value} is not a TCP port (0..65535)")


@dataclass(frozen=True)
class DiscoveryConfig:
    """Announce a processor's partitions: ``Processor(..., discovery=DiscoveryConfig())``.

    Args:
        topic: the discovery topic (default ``goka-discovery``); created compacted with one
            partition if missing.
        advertise: ``host:port`` where this member's gRPC server can be reached; empty if it
            serves no reads (default).
        heartbeat: seconds between announcements (default 2.0); a member missing 3 is dead.
        replication_factor, min_insync_replicas: of the discovery topic if this member
            creates it (default: the broker's ``default.replication.factor`` and
            ``min.insync.replicas``).

    The member id announced is the processor's ``member_id``.
    """

    topic: str = DEFAULT_TOPIC
    advertise: str = ""
    heartbeat: float = 2.0
    replication_factor: int = -1
    min_insync_replicas: int | None = None

    def __post_init__(self) -> None:
        check_topic_settings(self.replication_factor, self.min_insync_replicas)
        if not self.topic:
            raise ConfigError("the discovery topic name is empty")
        if self.advertise:
            check_address("advertise", self.advertise)
        if self.heartbeat <= 0:
            raise ConfigError(f"heartbeat must be positive seconds, got {self.heartbeat}")

    def attach(self, processor: Processor) -> ProcessorAnnouncer:
        return ProcessorAnnouncer(self, processor)
