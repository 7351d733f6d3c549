"""How ``viewsvc members`` shows the membership table: a text table for people, JSON for scripts.

Pure functions of the members (and the time, for "last heard"), so they are tested without a
broker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from discovery import MemberInfo, PartitionInfo
from discovery.model import member_json, utc

__all__ = ["format_table", "only_table", "to_json"]

_HEADER = (
    "MEMBER",
    "ROLE",
    "ENDPOINT",
    "GROUP",
    "TABLE",
    "PARTITION",
    "KIND",
    "STATE",
    "LAG",
    "OFFSET",
    "LAST HEARD",
)
_RIGHT_ALIGNED = frozenset({"PARTITION", "LAG", "OFFSET"})
_NO_TABLE = ("-", "", "", "", "", "")


def format_table(members: Iterable[MemberInfo], now: datetime) -> str:
    """One row per held partition, like ``kafka-consumer-groups --describe``.

    The member's columns (and the table's name) are written on its first row only; an unknown
    lag is shown as ``?``, an offset before anything was applied as ``-``.
    """
    rows = [row for member in members for row in _member_rows(member, now)]
    if not rows:
        return "no live members"
    widths = [max(len(row[i]) for row in [_HEADER, *rows]) for i in range(len(_HEADER))]
    lines = []
    for row in [_HEADER, *rows]:
        cells = (
            cell.rjust(width) if name in _RIGHT_ALIGNED else cell.ljust(width)
            for name, cell, width in zip(_HEADER, row, widths, strict=True)
        )
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def to_json(members: Iterable[MemberInfo]) -> dict[str, Any]:
    """``{"members": [...]}`` with every field of every member; times in ISO 8601 UTC."""
    return {"members": [member_json(member) for member in members]}


def only_table(members: Iterable[MemberInfo], topic: str) -> list[MemberInfo]:
    """The members that announce table ``topic``, each with that table only."""
    return [
        dataclasses.replace(member, tables=tuple(t for t in member.tables if t.topic == topic))
        for member in members
        if any(t.topic == topic for t in member.tables)
    ]


def _member_rows(member: MemberInfo, now: datetime) -> list[tuple[str, ...]]:
    held: list[tuple[str, ...]] = []
    for table in member.tables:
        if not table.partitions:
            held.append((table.topic, "-", "", "", "", ""))
        for i, partition in enumerate(table.partitions):
            held.append((table.topic if i == 0 else "", *_partition_cells(partition)))
    first = (member.member_id, member.role, member.endpoint or "-", member.group or "-")
    heard = _ago(member.last_heard, now)
    blank = ("",) * len(first)
    return [
        (*first, *cells, heard) if i == 0 else (*blank, *cells, "")
        for i, cells in enumerate(held or [_NO_TABLE])
    ]


def _partition_cells(p: PartitionInfo) -> tuple[str, ...]:
    lag = str(p.lag) if p.lag >= 0 else "?"
    offset = str(p.applied_offset) if p.applied_offset >= 0 else "-"
    return (str(p.partition), p.kind, p.state, lag, offset)


def _ago(then: datetime, now: datetime) -> str:
    seconds = (utc(now) - utc(then)).total_seconds()
    return f"{max(0, int(seconds))}s ago"
