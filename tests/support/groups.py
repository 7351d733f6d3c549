"""Consumer group settings a test needs that the broker keeps per group (KIP-848)."""

from __future__ import annotations

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

__all__ = ["set_group_session_timeout"]


def set_group_session_timeout(brokers: str, group: str, timeout_ms: int) -> None:
    """Sets ``consumer.session.timeout.ms`` of KIP-848 group ``group`` (Kafka 4.0+), which
    takes the place of the broker's ``group.consumer.session.timeout.ms`` for it; the group
    need not exist yet."""
    entry = ConfigEntry(
        "consumer.session.timeout.ms",
        str(timeout_ms),
        incremental_operation=AlterConfigOpType.SET,
    )
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[entry])
    admin = AdminClient({"bootstrap.servers": brokers})
    admin.incremental_alter_configs([resource])[resource].result(30)
