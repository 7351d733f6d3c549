"""Consistent-hash placement: deterministic, distinct, and a join or leave moves about 1/N."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from discovery.placement import heirs, placement, range_assignment, range_order, standbys
from goka.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]

# member ids as they look in practice: StatefulSet pods, advertised endpoints, plain names
NAMING = [
    "clicks-counter-{}",
    "view-{}.viewsvc.default.svc:50051",
    "10.0.0.{}:50051",
    "member-{}",
]

Placement = dict[int, list[str]]


def pairs(result: Placement) -> set[tuple[int, str]]:
    """A placement as a set of (partition, member) pairs: the replica order does not count."""
    return {(partition, member) for partition, members in result.items() for member in members}


def names(scheme: str, n: int) -> list[str]:
    return [scheme.format(i) for i in range(n)]


@pytest.mark.parametrize("scheme", NAMING)
def test_same_answer_whatever_the_member_order(scheme: str) -> None:
    members = names(scheme, 7)
    expected = placement(members, 64, 3)
    rng = random.Random(4)
    for _ in range(5):
        rng.shuffle(members)
        assert placement(members, 64, 3) == expected
        assert placement(iter(members), range(64), 3) == expected


def test_same_answer_in_another_process_with_another_hash_seed() -> None:
    members = names(NAMING[0], 5)
    script = (
        "import json, sys; from discovery.placement import placement; "
        "print(json.dumps(placement(json.loads(sys.argv[1]), 64, 2)))"
    )
    answers = []
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", script, json.dumps(members[::-1])],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        answers.append({int(p): ms for p, ms in json.loads(out).items()})
    assert answers[0] == answers[1] == placement(members, 64, 2)


@pytest.mark.parametrize("replicas", [1, 2, 3, 5])
def test_replicas_are_distinct_members(replicas: int) -> None:
    members = names(NAMING[1], 5)
    result = placement(members, 32, replicas)
    assert sorted(result) == list(range(32))
    for chosen in result.values():
        assert len(chosen) == replicas
        assert len(set(chosen)) == replicas
        assert set(chosen) <= set(members)


def test_every_member_gets_a_share() -> None:
    result = placement(names(NAMING[0], 4), 64, 1)
    counts = {m: sum(ms == [m] for ms in result.values()) for m in names(NAMING[0], 4)}
    assert all(count > 0 for count in counts.values()), counts


def test_fewer_members_than_replicas_places_on_all() -> None:
    result = placement(["b", "a"], 8, 3)
    assert all(sorted(ms) == ["a", "b"] for ms in result.values())
    assert placement(["a"], 3, 2) == {0: ["a"], 1: ["a"], 2: ["a"]}


def test_no_members_or_no_partitions() -> None:
    assert placement([], 3, 2) == {0: [], 1: [], 2: []}
    assert placement(["a", "b"], 0, 2) == {}
    assert placement(["a", "b"], [], 2) == {}


def test_partition_numbers_instead_of_a_count() -> None:
    members = names(NAMING[0], 4)
    full = placement(members, 16, 2)
    subset = placement(members, [9, 3, 3], 2)
    assert subset == {3: full[3], 9: full[9]}


@pytest.mark.parametrize("scheme", NAMING)
def test_adding_a_fifth_member_moves_at_most_one_and_a_half_fifths(scheme: str) -> None:
    before = pairs(placement(names(scheme, 4), 64, 2))
    after = pairs(placement(names(scheme, 5), 64, 2))
    moved = before - after
    assert len(moved) <= 1.5 * len(before) / 5, len(moved)
    # and every placement that moved went to the newcomer
    assert {m for _, m in after - before} == {scheme.format(4)}


@pytest.mark.parametrize("scheme", NAMING)
def test_removing_one_of_five_moves_only_its_placements(scheme: str) -> None:
    members = names(scheme, 5)
    before = pairs(placement(members, 64, 2))
    for leaver in members:
        after = pairs(placement([m for m in members if m != leaver], 64, 2))
        held = {(p, m) for p, m in before if m == leaver}
        assert before - after == held
        assert len(held) <= 1.5 * len(before) / 5, (leaver, len(held))
        assert len(after) == len(before)  # each of its placements was taken over


def test_standbys_skip_the_owner() -> None:
    members = names(NAMING[0], 4)
    ring = placement(members, 32, 4)  # the full ring order of every partition
    owners = {p: ring[p][p % 4] for p in range(32)}
    result = standbys(members, 32, 2, owners)
    for p, chosen in result.items():
        assert chosen == [m for m in ring[p] if m != owners[p]][:2]


def test_standbys_of_a_partition_without_owner_or_with_an_unknown_owner() -> None:
    members = names(NAMING[0], 4)
    expected = placement(members, 8, 2)
    assert standbys(members, 8, 2, {}) == expected
    assert standbys(members, 8, 2, dict.fromkeys(range(8), "gone")) == expected


def test_standbys_with_too_few_members() -> None:
    assert standbys(["a", "b"], 2, 3, {0: "a", 1: "b"}) == {0: ["b"], 1: ["a"]}
    assert standbys(["a"], 1, 1, {0: "a"}) == {0: []}


@pytest.mark.parametrize(
    ("members", "partitions", "replicas", "message"),
    [
        (["a"], 4, 0, "replicas must be an integer of at least 1"),
        (["a", "b", "a"], 4, 1, "duplicated: a"),
        (["a", ""], 4, 1, "non-empty strings"),
        ("abc", 4, 1, "not the string 'abc'"),
        (["a"], -1, 1, "must not be negative"),
        (["a"], [0, -2], 1, "at least 0, got -2"),
    ],
)
def test_invalid_arguments_name_the_problem(
    members: list[str], partitions: int | list[int], replicas: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        placement(members, partitions, replicas)
    with pytest.raises(ConfigError, match=message):
        standbys(members, partitions, replicas, {})


def test_range_assignment_gives_the_first_members_the_extra_partitions() -> None:
    assert range_assignment(["a", "b", "c"], 7) == {
        0: "a", 1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c",
    }  # fmt: skip
    assert range_assignment(["a", "b", "c"], 2) == {0: "a", 1: "b"}
    assert range_assignment([], 4) == {}


def test_range_order_reads_the_order_behind_a_range_assignment_only() -> None:
    assignment = range_assignment(["m2", "m0", "m1"], 16)
    assert range_order(assignment, 16) == ["m2", "m0", "m1"]
    assert range_order({**assignment, 15: "m0"}, 16) is None  # not contiguous
    assert range_order({p: m for p, m in assignment.items() if p != 3}, 16) is None  # a gap
    assert range_order({0: "a", 1: "b", 2: "b", 3: "b"}, 4) is None  # not range's quotas
    assert range_order({}, 0) is None


def test_heirs_are_who_range_gives_the_partition_when_a_member_leaves() -> None:
    order = ["a", "b", "c"]  # a: 0-5, b: 6-10, c: 11-15
    # b leaving: a 0-7, c 8-15; a leaving: b 0-7, c 8-15; c leaving: a 0-7, b 8-15
    assert heirs(order, 16, 0) == ["b"]
    assert heirs(order, 16, 6) == ["a"]
    assert heirs(order, 16, 9) == ["c"]
    assert heirs(order, 16, 12) == ["b"]
    assert heirs(["a"], 4, 0) == []


def test_standbys_go_to_the_next_owner_of_a_range_assignment() -> None:
    members = ["a", "b", "c"]
    owners = range_assignment(members, 16)
    result = standbys(members, 16, 1, owners)
    for p in range(16):
        survivors = [m for m in members if m != owners[p]]
        assert result[p] == [range_assignment(survivors, 16)[p]]
    # more replicas than heirs: filled up from the ring, still never the owner
    ring = placement(members, 16, 3)
    for p, chosen in standbys(members, 16, 2, owners).items():
        assert chosen[0] == result[p][0]
        assert chosen[1] == next(m for m in ring[p] if m not in (owners[p], chosen[0]))


def test_standbys_ignore_heirs_that_are_not_live_members() -> None:
    owners = range_assignment(["a", "b", "c"], 6)  # c announced but gone from the group
    result = standbys(["a", "b"], 6, 1, owners)
    assert all(
        owners[p] not in chosen and set(chosen) <= {"a", "b"} for p, chosen in result.items()
    )
    assert result[0] == ["b"]  # a's heir b is live
