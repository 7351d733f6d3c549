"""Routing over a list of live members: who holds a table partition, and where a key lives.

Pure functions, shared by the membership table (members read from the discovery topic) and
by clients that learn the members from ``DiscoveryService.WatchMembers``.
"""

from __future__ import annotations

from collections.abc import Iterable

from discovery.model import Location, MemberInfo, Owner, TableInfo
from goka.errors import UnknownTable
from goka.partitioner import get_partitioner

__all__ = ["UnknownTable", "locate", "owners", "table_info"]


def owners(members: Iterable[MemberInfo], table: str, partition: int) -> list[Owner]:
    """The members holding ``partition`` of ``table``: the active owner first (one at most:
    of conflicting claims, the higher generation wins, then the higher sequence), then the
    others, running before recovering, least lag first."""
    claims: list[tuple[MemberInfo, Owner]] = []
    for member in members:
        held = member.table(table)
        for info in held.partitions if held is not None else ():
            if info.partition == partition:
                owner = Owner(
                    member_id=member.member_id,
                    endpoint=member.endpoint,
                    kind=info.kind,
                    state=info.state,
                    applied_offset=info.applied_offset,
                    lag=info.lag,
                    generation=member.generation,
                )
                claims.append((member, owner))
    active = [(m, o) for m, o in claims if o.kind == "active"]
    winner = max(active, key=lambda c: (c[0].generation, c[0].sequence), default=None)
    others = [o for _, o in claims if o.kind != "active"]
    others.sort(key=lambda o: (o.state != "running", o.lag if o.lag >= 0 else 1 << 62))
    return ([winner[1]] if winner is not None else []) + others


def table_info(members: Iterable[MemberInfo], table: str) -> TableInfo | None:
    """How ``table`` is announced (partitioner, partition count, codecs), or None."""
    return next((t for m in members for t in m.tables if t.topic == table), None)


def locate(members: Iterable[MemberInfo], table: str, key: str | bytes) -> Location:
    """The partition of ``key`` (with the table's announced partitioner and partition count)
    and its holders, best first. Raises UnknownTable if no member announces ``table``."""
    live = list(members)
    info = table_info(live, table)
    if info is None:
        raise UnknownTable(f"no live member announces table {table!r}")
    raw = key.encode() if isinstance(key, str) else key
    partition = get_partitioner(info.partitioner)(raw, info.partition_count)
    return Location(table, partition, tuple(owners(live, table, partition)))
