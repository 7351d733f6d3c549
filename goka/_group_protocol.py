"""Which consumer group protocol a processor's input consumer speaks.

- ``classic``: the group leader assigns with the eager ``range`` assignor, the only way the
  classic protocol keeps a group's inputs co-partitioned; every rebalance revokes every
  partition of every member. Any broker (Tansu, Kafka before 4.0).
- ``consumer`` (KIP-848, Apache Kafka 4.0+): the broker assigns, with its ``range``
  assignor, which gives one member partition N of every input of identical subscriptions
  and is sticky; rebalances are incremental: a partition that stays with a member keeps
  processing (and serving) through another member joining or leaving. The session timeout
  and heartbeat interval are the broker's (``group.consumer.session.timeout.ms``,
  ``group.consumer.heartbeat.interval.ms``, or the group's own configs); the client settings
  of the classic protocol are not passed. ``session.timeout.ms`` in the processor's
  ``extra_config`` still sets the processor's own stall bounds (see ``goka._stall``): give
  it the broker's value.
- ``auto``: ``consumer`` when the broker's ``group.coordinator.rebalance.protocols``
  includes it, else ``classic``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from goka.errors import ConfigError

__all__ = ["GROUP_PROTOCOLS", "check_group_protocol", "group_config", "resolve_group_protocol"]

_logger = logging.getLogger("goka.processor")

GROUP_PROTOCOLS = ("classic", "consumer", "auto")

CLASSIC_ONLY = (
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.protocol.type",
)
"""Client settings of the classic protocol that the consumer protocol does not take."""

_DETECT_TIMEOUT = 10.0


def check_group_protocol(protocol: object) -> str:
    if protocol not in GROUP_PROTOCOLS:
        raise ConfigError(
            f"group_protocol must be one of {', '.join(map(repr, GROUP_PROTOCOLS))}, "
            f"got {protocol!r}"
        )
    return str(protocol)


def resolve_group_protocol(protocol: str, config: Mapping[str, Any]) -> str:
    """``protocol``, with ``auto`` decided by asking a broker (``config``: its client)."""
    if protocol != "auto":
        return protocol
    admin = AdminClient(dict(config))
    try:
        metadata = admin.list_topics(timeout=_DETECT_TIMEOUT)
        broker = ConfigResource(ResourceType.BROKER, str(next(iter(metadata.brokers))))
        entries = admin.describe_configs([broker])[broker].result(_DETECT_TIMEOUT)
    except (KafkaException, StopIteration) as exc:
        _logger.info("group protocol: the broker's configs are not known (%s): classic", exc)
        return "classic"
    entry = entries.get("group.coordinator.rebalance.protocols")
    protocols = {p.strip() for p in (entry.value or "").split(",")} if entry else set()
    chosen = "consumer" if "consumer" in protocols else "classic"
    _logger.info("group protocol: the broker offers %s: %s", sorted(protocols), chosen)
    return chosen


def group_config(protocol: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` for the input consumer of ``protocol`` (resolved), with its assignor."""
    if protocol == "classic":
        return {**config, "partition.assignment.strategy": "range"}
    if "partition.assignment.strategy" in config:
        raise ConfigError(
            "partition.assignment.strategy is a classic-protocol setting; with "
            "group_protocol='consumer' the broker assigns (its range assignor)"
        )
    consumer = {k: v for k, v in config.items() if k not in CLASSIC_ONLY}
    return {**consumer, "group.protocol": "consumer", "group.remote.assignor": "range"}
