"""View-group placement: a pod holds its ring placements, and hands lost ones over only once
their new holders run them."""

from __future__ import annotations

from datetime import UTC, datetime

from discovery import placement
from discovery.model import MemberInfo, PartitionInfo, TableInfo
from viewsvc.nodes.sharding import view_group_members, wanted_partitions

NOW = datetime(2026, 11, 22, tzinfo=UTC)
TABLE = "clicks-table"


def pod(member_id: str, running: tuple[int, ...] = (), *, group: str = "views") -> MemberInfo:
    partitions = tuple(PartitionInfo(p, "replica", "running", 10, 0) for p in running)
    table = TableInfo(TABLE, "murmur2", 8, "string", "int64", partitions)
    return MemberInfo(member_id, "view", "", group, -1, 1, 1.0, NOW, NOW, (table,))


def test_group_members_are_the_view_pods_of_the_group_and_me() -> None:
    members = [pod("a"), pod("b", group="other"), pod("c")]
    assert view_group_members(members, "views", "me") == ["a", "c", "me"]


def test_a_pod_holds_its_placements() -> None:
    members = [pod("a"), pod("b")]
    placed = placement(["a", "b", "c"], 8, 2)
    expected = {p for p, pods in placed.items() if "c" in pods}
    assert wanted_partitions(members, "c", "views", TABLE, 8, 2, held=()) == expected


def test_lost_partitions_are_kept_until_their_new_holders_run_them() -> None:
    before = placement(["pod-a", "pod-b"], 8, 1)
    after = placement(["pod-a", "pod-b", "pod-c"], 8, 1)
    moved = {p for p in range(8) if before[p] == ["pod-a"] and after[p] == ["pod-c"]}
    assert moved, "the ring moves some of pod-a's partitions to pod-c"
    held_by_a = {p for p in range(8) if before[p] == ["pod-a"]}
    mine_after = {p for p in range(8) if after[p] == ["pod-a"]}
    members = [pod("pod-a", tuple(held_by_a)), pod("pod-b"), pod("pod-c")]  # c recovers
    assert wanted_partitions(members, "pod-a", "views", TABLE, 8, 1, held_by_a) == held_by_a
    members[2] = pod("pod-c", tuple(moved))  # pod-c announces them running
    assert wanted_partitions(members, "pod-a", "views", TABLE, 8, 1, held_by_a) == mine_after


def test_more_replicas_than_pods_holds_everything() -> None:
    assert wanted_partitions([pod("a")], "b", "views", TABLE, 8, 3, held=()) == set(range(8))
