"""Plain Python views of announcements: what the membership table hands out.

The wire format is ``discovery.v1.Announcement`` (see ``proto/discovery/v1``); these frozen
dataclasses are the same facts with Python types, decoupled from protobuf classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from discovery.v1 import discovery_pb2 as pb

__all__ = [
    "Location",
    "MemberInfo",
    "Owner",
    "PartitionInfo",
    "TableInfo",
    "from_announcement",
    "member_json",
    "utc",
]

_ROLES = {pb.ROLE_PROCESSOR: "processor", pb.ROLE_VIEW: "view", pb.ROLE_ROUTER: "router"}
_KINDS = {
    pb.PARTITION_KIND_ACTIVE: "active",
    pb.PARTITION_KIND_STANDBY: "standby",
    pb.PARTITION_KIND_REPLICA: "replica",
}
_STATES = {pb.PARTITION_STATE_RECOVERING: "recovering", pb.PARTITION_STATE_RUNNING: "running"}
ROLE_VALUES = {name: value for value, name in _ROLES.items()}
KIND_VALUES = {name: value for value, name in _KINDS.items()}
STATE_VALUES = {name: value for value, name in _STATES.items()}


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    kind: str
    """"active", "standby" or "replica"."""
    state: str
    """"recovering" or "running"."""
    applied_offset: int
    """The next table offset the member's copy would apply; -1 if nothing was applied."""
    lag: int
    """Offsets behind the end of the table partition; -1 if unknown."""


@dataclass(frozen=True)
class TableInfo:
    topic: str
    partitioner: str
    partition_count: int
    key_codec: str
    value_codec: str
    partitions: tuple[PartitionInfo, ...]


@dataclass(frozen=True)
class MemberInfo:
    member_id: str
    role: str
    """"processor", "view" or "router"."""
    endpoint: str
    group: str
    generation: int
    sequence: int
    heartbeat: float
    """Seconds between the member's announcements."""
    emitted_at: datetime
    last_heard: datetime

    tables: tuple[TableInfo, ...]

    def table(self, topic: str) -> TableInfo | None:
        return next((t for t in self.tables if t.topic == topic), None)


@dataclass(frozen=True)
class Owner:
    """A member holding a table partition, as ``Membership.owners`` returns it."""

    member_id: str
    endpoint: str
    kind: str
    state: str
    applied_offset: int
    lag: int
    generation: int


@dataclass(frozen=True)
class Location:
    """Where a key lives: its partition and the members holding it (best first)."""

    table: str
    partition: int
    owners: tuple[Owner, ...]


class MalformedAnnouncement(ValueError):
    """An announcement that cannot be used; the message says why."""


def from_announcement(
    announcement: pb.Announcement, key: bytes | None, last_heard: datetime
) -> MemberInfo:
    """Validates and converts; raises MalformedAnnouncement."""
    member_id = announcement.member_id
    if not member_id:
        raise MalformedAnnouncement("member_id is empty")
    if key is not None and key != member_id.encode():
        raise MalformedAnnouncement(f"key {key!r} is not the member id {member_id!r}")
    role = _ROLES.get(announcement.role)
    if role is None:
        raise MalformedAnnouncement(f"member {member_id!r} has no valid role")
    heartbeat = announcement.heartbeat_interval.ToTimedelta().total_seconds()
    if heartbeat <= 0:
        raise MalformedAnnouncement(f"member {member_id!r} has no heartbeat interval")
    tables = []
    for table in announcement.tables:
        if not table.topic or table.partition_count < 1:
            raise MalformedAnnouncement(f"member {member_id!r} announces a table without a topic "
                                        "or partition count")  # fmt: skip
        partitions = []
        for held in table.partitions:
            if not 0 <= held.partition < table.partition_count:
                raise MalformedAnnouncement(
                    f"member {member_id!r} holds partition {held.partition} of {table.topic!r}, "
                    f"which has {table.partition_count}"
                )
            partitions.append(
                PartitionInfo(
                    partition=held.partition,
                    kind=_KINDS.get(held.kind, "replica"),
                    state=_STATES.get(held.state, "recovering"),
                    applied_offset=held.applied_offset,
                    lag=held.lag,
                )
            )
        tables.append(
            TableInfo(
                topic=table.topic,
                partitioner=table.partitioner or "murmur2",
                partition_count=table.partition_count,
                key_codec=table.key_codec,
                value_codec=table.value_codec,
                partitions=tuple(partitions),
            )
        )
    return MemberInfo(
        member_id=member_id,
        role=role,
        endpoint=announcement.endpoint,
        group=announcement.group,
        generation=announcement.generation,
        sequence=announcement.sequence,
        heartbeat=heartbeat,
        emitted_at=announcement.emitted_at.ToDatetime(tzinfo=UTC),
        last_heard=last_heard,
        tables=tuple(tables),
    )


def member_json(member: MemberInfo) -> dict[str, Any]:
    """A member as plain JSON (``viewsvc members --json``, the web monitor)."""
    return {
        "member_id": member.member_id,
        "role": member.role,
        "endpoint": member.endpoint,
        "group": member.group,
        "generation": member.generation,
        "sequence": member.sequence,
        "heartbeat": member.heartbeat,
        "emitted_at": _iso(member.emitted_at),
        "last_heard": _iso(member.last_heard),
        "tables": [_table_json(table) for table in member.tables],
    }


def _table_json(table: TableInfo) -> dict[str, Any]:
    return {
        "topic": table.topic,
        "partitioner": table.partitioner,
        "partition_count": table.partition_count,
        "key_codec": table.key_codec,
        "value_codec": table.value_codec,
        "partitions": [
            {
                "partition": p.partition,
                "kind": p.kind,
                "state": p.state,
                "applied_offset": p.applied_offset,
                "lag": p.lag,
            }
            for p in table.partitions
        ],
    }


def _iso(moment: datetime) -> str:
    """``2025-01-31T12:00:00.250Z``."""
    return utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC, as the membership table hands out."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
