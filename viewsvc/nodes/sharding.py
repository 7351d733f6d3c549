"""Which partitions a view pod of a view group holds: those the hash ring places on it, plus
those it is handing over until their new holders run them (so no partition is ever left
without a running replica while pods come and go)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from discovery import placement
from discovery.model import MemberInfo

__all__ = ["view_group_members", "wanted_partitions"]


def view_group_members(members: Iterable[MemberInfo], group: str, me: str) -> list[str]:
    """The live view pods of ``group``, this one included (before it is announced)."""
    ids = {m.member_id for m in members if m.role == "view" and m.group == group}
    return sorted(ids | {me})


def wanted_partitions(
    members: Sequence[MemberInfo],
    me: str,
    group: str,
    table: str,
    partition_count: int,
    replicas: int,
    held: Iterable[int],
) -> set[int]:
    """The partitions of ``table`` pod ``me`` should hold now: its placements, and the ones
    it holds but lost until every member now placed for them announces them running."""
    placed = placement(view_group_members(members, group, me), partition_count, replicas)
    mine = {p for p, pods in placed.items() if me in pods}
    running: dict[int, set[str]] = {}
    for member in members:
        info = member.table(table)
        for held_partition in info.partitions if info is not None else ():
            if held_partition.state == "running":
                running.setdefault(held_partition.partition, set()).add(member.member_id)
    handing_over = {
        p for p in held if p not in mine and not set(placed.get(p, ())) <= running.get(p, set())
    }
    return mine | handing_over
