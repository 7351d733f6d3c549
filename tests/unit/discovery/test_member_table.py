"""The membership rules, without Kafka: liveness, staleness at start-up, conflicts, tombstones,
malformed messages and locating keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from discovery._table import MemberTable
from discovery.v1 import discovery_pb2 as pb
from goka.errors import GokaError
from goka.partitioner import fnv1a

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
TABLE = "clicks-table"


def announcement(
    member: str,
    *,
    generation: int = 1,
    sequence: int = 1,
    emitted: datetime = NOW,
    heartbeat: float = 2.0,
    active: tuple[int, ...] = (),
    standby: tuple[int, ...] = (),
    partitioner: str = "murmur2",
    partitions: int = 4,
) -> bytes:
    a = pb.Announcement(
        member_id=member,
        role=pb.ROLE_PROCESSOR,
        endpoint=f"{member}:50051",
        group="clicks",
        generation=generation,
        sequence=sequence,
    )
    a.heartbeat_interval.FromTimedelta(timedelta(seconds=heartbeat))
    a.emitted_at.FromDatetime(emitted)
    table = a.tables.add(
        topic=TABLE,
        partitioner=partitioner,
        partition_count=partitions,
        key_codec="string",
        value_codec="int64",
    )
    for p in active:
        table.partitions.add(
            partition=p,
            kind=pb.PARTITION_KIND_ACTIVE,
            state=pb.PARTITION_STATE_RUNNING,
            applied_offset=10,
            lag=0,
        )
    for p in standby:
        table.partitions.add(
            partition=p,
            kind=pb.PARTITION_KIND_STANDBY,
            state=pb.PARTITION_STATE_RUNNING,
            applied_offset=8,
            lag=2,
        )
    return a.SerializeToString()


def live_table(*records: tuple[str, bytes]) -> MemberTable:
    table = MemberTable("goka-discovery")
    for member, value in records:
        table.apply(member.encode(), value, NOW, live=True)
    return table


def heard(table: MemberTable, member: str, at: datetime, sequence: int) -> None:
    """``member`` announces itself at ``at`` (the topic is flowing)."""
    table.apply(member.encode(), announcement(member, sequence=sequence, emitted=at), at,
                live=True)  # fmt: skip


def test_a_member_dies_after_three_missed_heartbeats() -> None:
    table = live_table(("a", announcement("a")), ("b", announcement("b")))
    assert table.expire(NOW) is True  # first evaluation: both live
    for second in range(2, 9, 2):  # b goes on announcing every 2 s; a is silent
        heard(table, "b", NOW + timedelta(seconds=second), second)
        if second == 4:
            assert [m.member_id for m in table.members(NOW + timedelta(seconds=5.9))] == ["a", "b"]
    assert [m.member_id for m in table.members(NOW + timedelta(seconds=8))] == ["b"]
    assert table.expire(NOW + timedelta(seconds=8)) is True  # a died
    assert table.expire(NOW + timedelta(seconds=8.5)) is False
    assert table.stale(NOW + timedelta(seconds=8.5)) is False


def test_a_silent_topic_holds_the_last_view_for_ten_heartbeats() -> None:
    """Nothing heard from anyone (the topic's leader moved, its brokers are down): the members
    are not all dead at once; the view stays as it was and is marked stale."""
    table = live_table(("a", announcement("a")), ("b", announcement("b")))
    heard(table, "b", NOW + timedelta(seconds=1), 2)
    assert table.stale(NOW + timedelta(seconds=3.9)) is False  # within 1.5 heartbeats
    for later in (4.1, 10.0, 20.9):
        at = NOW + timedelta(seconds=later)
        assert [m.member_id for m in table.members(at)] == ["a", "b"], later
        assert table.stale(at) is True
    at = NOW + timedelta(seconds=21.1)  # 10 heartbeats of silence since b: held no more
    assert table.members(at) == [] and table.stale(at) is False
    # the topic flows again: whoever announces is live, the rest dies as usual
    heard(table, "a", at, 2)
    assert [m.member_id for m in table.members(at)] == ["a"]


def test_stale_announcements_read_at_start_up_are_ignored() -> None:
    table = MemberTable("goka-discovery")
    old = announcement("old", emitted=NOW - timedelta(seconds=60))
    fresh = announcement("fresh", emitted=NOW - timedelta(seconds=1))
    table.apply(b"old", old, NOW, live=False)
    table.apply(b"fresh", fresh, NOW, live=False)
    assert [m.member_id for m in table.members(NOW)] == ["fresh"]
    # once live, arrival time counts: a member with a lagging clock is not taken for dead
    table.apply(
        b"old", announcement("old", sequence=2, emitted=NOW - timedelta(seconds=60)), NOW, live=True
    )
    assert [m.member_id for m in table.members(NOW)] == ["fresh", "old"]


def test_conflicting_active_claims_higher_generation_then_sequence_wins() -> None:
    table = live_table(
        ("a", announcement("a", generation=5, sequence=9, active=(0, 1))),
        ("b", announcement("b", generation=6, sequence=1, active=(1,), standby=(0,))),
        ("c", announcement("c", generation=6, sequence=3, active=(1,))),
    )
    owners = table.owners(TABLE, 1, NOW)
    assert [(o.member_id, o.kind) for o in owners] == [("c", "active")]
    owners = table.owners(TABLE, 0, NOW)
    assert [(o.member_id, o.kind, o.lag) for o in owners] == [
        ("a", "active", 0),
        ("b", "standby", 2),
    ]
    assert owners[0].endpoint == "a:50051"
    assert table.owners(TABLE, 3, NOW) == []


def test_tombstone_removes_a_member_at_once_and_old_sequences_are_ignored() -> None:
    table = live_table(("a", announcement("a", sequence=5, active=(0,))))
    assert table.apply(b"a", announcement("a", sequence=4, active=(1,)), NOW, live=True) is False
    assert [o.member_id for o in table.owners(TABLE, 0, NOW)] == ["a"]
    assert table.apply(b"a", None, NOW, live=True) is True
    assert table.members(NOW) == []


def test_a_dead_member_restarted_under_its_id_is_taken_even_with_a_lower_sequence() -> None:
    table = live_table(
        ("pod-0", announcement("pod-0", sequence=900, active=(0,))), ("b", announcement("b"))
    )
    later = NOW + timedelta(seconds=7)  # 3 heartbeats of 2 s missed: pod-0 is dead
    heard(table, "b", later, 2)
    assert [m.member_id for m in table.members(later)] == ["b"]
    restarted = announcement("pod-0", sequence=1, emitted=later, active=(1,))
    assert table.apply(b"pod-0", restarted, later, live=True) is True
    assert [o.member_id for o in table.owners(TABLE, 1, later)] == ["pod-0"]


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        (None, announcement("a"), "without a key"),
        (b"a", b"\xff\xff not protobuf", "a"),
        (b"b", announcement("a"), "is not the member id"),
        (b"a", pb.Announcement(member_id="a").SerializeToString(), "no valid role"),
    ],
)
def test_malformed_messages_are_counted_and_ignored(
    key: bytes | None, value: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    table = MemberTable("goka-discovery")
    assert table.apply(key, value, NOW, live=True) is False
    assert table.malformed == 1
    assert table.members(NOW) == []
    assert why in caplog.text


def test_locate_uses_the_announced_partitioner_and_partition_count() -> None:
    table = live_table(
        ("a", announcement("a", partitioner="fnv1a", partitions=7, active=(0, 1, 2, 3, 4, 5, 6)))
    )
    location = table.locate(TABLE, "user-42", NOW)
    assert location.partition == fnv1a(b"user-42", 7)
    assert [o.member_id for o in location.owners] == ["a"]
    with pytest.raises(GokaError, match="no live member announces table 'other'"):
        table.locate("other", "k", NOW)
