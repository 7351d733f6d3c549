"""Which consumer group protocol a processor's input consumer speaks.

- ``classic``: the group leader assigns with the eager ``range`` assignor, the only way the
  classic protocol keeps a group's inputs co-partitioned; every rebalance revokes every
  partition of every member. Any broker (Tansu, Kafka before 4.0).
- ``consumer`` (KIP-848, Apache Kafka 4.0+): the broker assigns, with its ``range``
  assignor, which gives one member partition N of every input of identical subscriptions
  (contiguous ranges over the members in one order: static members by instance id first,
  then member ids; see ``discovery.placement.heirs``); rebalances are incremental: a
  partition that stays with a member keeps processing (and serving) through another member
  joining or leaving. The session timeout and heartbeat interval are the group's (its
  ``consumer.session.timeout.ms`` and ``consumer.heartbeat.interval.ms`` configs, else the
  broker's ``group.consumer.session.timeout.ms`` and ``group.consumer.heartbeat.interval.ms``);
  the client settings of the classic protocol are not passed. The processor reads them for its
  own stall bounds (see ``goka._stall``); where it cannot (an ACL refusing DescribeConfigs),
  ``session.timeout.ms`` in its ``extra_config`` stands in: give it the group's value.
- ``auto`` (the default): ``consumer`` when the broker's
  ``group.coordinator.rebalance.protocols`` includes it (Kafka 4.0+ by default), else
  ``classic`` (Tansu, older Kafka, or a broker whose configs cannot be read).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from goka.errors import ConfigError

__all__ = [
    "GROUP_PROTOCOLS",
    "GroupSettings",
    "check_group_protocol",
    "group_config",
    "resolve_group_protocol",
]

_logger = logging.getLogger("goka.processor")

GROUP_PROTOCOLS = ("classic", "consumer", "auto")

CLASSIC_ONLY = (
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.protocol.type",
)
"""Client settings of the classic protocol that the consumer protocol does not take."""

SESSION_SETTINGS = {
    "session.timeout.ms": ("consumer.session.timeout.ms", "group.consumer.session.timeout.ms"),
    "heartbeat.interval.ms": (
        "consumer.heartbeat.interval.ms",
        "group.consumer.heartbeat.interval.ms",
    ),
}
"""Client session settings, and what stands for them in KIP-848 groups: the group's own
config, else the broker's."""

_PROTOCOLS = "group.coordinator.rebalance.protocols"
_DETECT_TIMEOUT = 10.0


def check_group_protocol(protocol: object) -> str:
    if protocol not in GROUP_PROTOCOLS:
        raise ConfigError(
            f"group_protocol must be one of {', '.join(map(repr, GROUP_PROTOCOLS))}, "
            f"got {protocol!r}"
        )
    return str(protocol)


@dataclass(frozen=True)
class GroupSettings:
    """What a processor's consumer group runs with, once decided."""

    protocol: str
    """``classic`` or ``consumer``."""
    session: dict[str, int]
    """``session.timeout.ms`` and ``heartbeat.interval.ms`` in force, where known (the rest
    are librdkafka's defaults): the client's own under the classic protocol, the group's or
    else the broker's under the consumer protocol. The processor's stall bounds follow them
    (``goka._stall``)."""


def resolve_group_protocol(protocol: str, group: str, config: Mapping[str, Any]) -> GroupSettings:
    """``protocol``, with ``auto`` decided by asking a broker (``config``: its client), and the
    session settings that come with it for ``group``."""
    client = {k: int(config[k]) for k in SESSION_SETTINGS if k in config}
    if protocol == "classic":
        return GroupSettings("classic", client)
    admin = AdminClient(dict(config))
    broker = _configs(admin, ResourceType.BROKER, None)
    if protocol == "auto":
        offered = {p.strip() for p in (broker.get(_PROTOCOLS) or "").split(",") if p.strip()}
        protocol = "consumer" if "consumer" in offered else "classic"
        _logger.info("group protocol: the broker offers %s: %s", sorted(offered), protocol)
        if protocol == "classic":
            return GroupSettings("classic", client)
    known = {**broker, **_configs(admin, ResourceType.GROUP, group)}
    session = {
        key: int(value)
        for key, names in SESSION_SETTINGS.items()
        if (value := next((known[n] for n in names if n in known), None)) is not None
    }
    if not session:
        _logger.info("group protocol consumer: the broker's session settings are not known")
        return GroupSettings("consumer", client)
    if any(client.get(key, value) != value for key, value in session.items()):
        _logger.info(
            "group protocol consumer: the group's %s are in force, not the client's %s",
            session, client,
        )  # fmt: skip
    return GroupSettings("consumer", session)


def _configs(admin: AdminClient, kind: ResourceType, name: str | None) -> dict[str, str]:
    """The group settings of a broker of the cluster (``name`` None) or of a group, or none
    if they cannot be read (a broker that does not describe them, an ACL that refuses it)."""
    try:
        if name is None:
            metadata = admin.list_topics(timeout=_DETECT_TIMEOUT)
            name = str(next(iter(metadata.brokers)))
        resource = ConfigResource(kind, name)
        entries = admin.describe_configs([resource])[resource].result(_DETECT_TIMEOUT)
    except (KafkaException, StopIteration) as exc:
        _logger.info("group protocol: the configs of %s %s are not known (%s)", kind, name, exc)
        return {}
    wanted = {_PROTOCOLS, *(n for names in SESSION_SETTINGS.values() for n in names)}
    return {n: e.value for n, e in entries.items() if n in wanted and e.value}


def group_config(protocol: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` for the input consumer of ``protocol`` (resolved), with its assignor."""
    if protocol == "classic":
        return {**config, "partition.assignment.strategy": "range"}
    if "partition.assignment.strategy" in config:
        raise ConfigError(
            "partition.assignment.strategy is a classic-protocol setting; with "
            "group_protocol 'consumer' or 'auto' (the default) on Kafka 4.0+ the broker "
            "assigns (its range assignor): set group_protocol='classic' to assign in the client"
        )
    consumer = {k: v for k, v in config.items() if k not in CLASSIC_ONLY}
    return {**consumer, "group.protocol": "consumer", "group.remote.assignor": "range"}
