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


def heard(
    table: MemberTable, member: str, at: datetime, sequence: int, heartbeat: float = 2.0
) -> None:
    """``member`` announces itself at ``at`` (the topic is flowing)."""
    value = announcement(member, sequence=sequence, emitted=at, heartbeat=heartbeat)
    table.apply(member.encode(), value, at, live=True)


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


@pytest.mark.parametrize(("heartbeat", "held_for"), [(2.0, 30.0), (0.5, 30.0), (5.0, 50.0)])
def test_a_silent_topic_holds_the_last_view(heartbeat: float, held_for: float) -> None:
    """Nothing heard from anyone (the topic's leader moved, its brokers are down): the members
    are not all dead at once; the view stays as it was and is marked stale, for 10
    heartbeats and at least 30 s (a leader election after a broker crash takes 9 s or more)."""
    table = live_table(
        ("a", announcement("a", heartbeat=heartbeat)), ("b", announcement("b", heartbeat=heartbeat))
    )
    last = heartbeat / 2  # b is heard once more, then nothing from anyone
    heard(table, "b", NOW + timedelta(seconds=last), 2, heartbeat=heartbeat)
    silent = last + 1.5 * heartbeat
    assert table.stale(NOW + timedelta(seconds=silent - 0.1)) is False  # within 1.5 heartbeats
    for later in (silent + 0.1, (silent + held_for) / 2, last + held_for - 0.1):
        at = NOW + timedelta(seconds=later)
        assert [m.member_id for m in table.members(at)] == ["a", "b"], later
        assert table.stale(at) is True
    at = NOW + timedelta(seconds=last + held_for + 0.1)  # silent for longer: held no more
    assert table.members(at) == [] and table.stale(at) is False
    # the topic flows again: whoever announces is live, the rest dies as usual
    heard(table, "a", at, 2, heartbeat=heartbeat)
    assert [m.member_id for m in table.members(at)] == ["a"]


def test_a_member_a_little_late_when_the_topic_stops_stays_in_the_held_view() -> None:
    """b was last heard 1 s (2 heartbeats) before the topic went silent, a just before: b is
    not dropped while nothing can be heard from anyone (seen: a view pod busy serving reads
    announced late just as the discovery partition's leader was killed)."""
    hb = 0.5
    table = live_table(*((m, announcement(m, heartbeat=hb)) for m in ("a", "b")))
    stopped = NOW + timedelta(seconds=1)
    heard(table, "a", stopped, 2, heartbeat=hb)
    for later in (0.4, 0.8, 5.0, 29.0):
        at = stopped + timedelta(seconds=later)
        assert [m.member_id for m in table.members(at)] == ["a", "b"], later


def test_members_get_through_one_after_the_other_once_a_silence_ends() -> None:
    """The discovery topic's leader died: nothing for 12 s. Then each writer finds the new
    leader on its own metadata refresh; the members heard before the silence are not taken
    for dead meanwhile, but one that does not come back within 5 s (3 heartbeats of 0.5 s
    are less) is."""
    hb = 0.5
    table = live_table(*((m, announcement(m, heartbeat=hb)) for m in ("a", "b", "c")))
    assert table.expire(NOW) is True
    resumed = NOW + timedelta(seconds=12)
    for step in range(11):  # a announces every heartbeat from 12 s on
        at = resumed + timedelta(seconds=step * hb)
        heard(table, "a", at, step + 2, heartbeat=hb)
        assert [m.member_id for m in table.members(at)] == ["a", "b", "c"], at
    heard(table, "b", resumed + timedelta(seconds=4.9), 2, heartbeat=hb)  # b, 4.9 s after a
    at = resumed + timedelta(seconds=5.1)  # c never again
    heard(table, "a", at, 13, heartbeat=hb)
    assert [m.member_id for m in table.members(at)] == ["a", "b"]


def test_a_second_gap_while_members_get_through_keeps_their_grace() -> None:
    """The topic flows again, then pauses once more (the leader moves back) before every
    member got through: the members heard before the first silence keep its grace."""
    hb = 0.5
    table = live_table(*((m, announcement(m, heartbeat=hb)) for m in ("a", "b")))
    resumed = NOW + timedelta(seconds=10)
    heard(table, "a", resumed, 2, heartbeat=hb)
    again = resumed + timedelta(seconds=1.5)  # a gap of 1.5 s: a new silence by the rules
    heard(table, "a", again, 3, heartbeat=hb)
    assert [m.member_id for m in table.members(again)] == ["a", "b"]
    later = again + timedelta(seconds=4.9)
    heard(table, "a", later - timedelta(seconds=0.5), 4, heartbeat=hb)
    heard(table, "a", later, 5, heartbeat=hb)
    assert [m.member_id for m in table.members(later)] == ["a", "b"]


def test_a_member_that_gets_through_once_and_stalls_again_keeps_the_grace() -> None:
    """After the silence b gets one announcement through, then none for 4 s while a goes on
    (its producer waits for a new producer id): b is not taken for dead before the grace of
    the silence ends, and is after it."""
    hb = 0.5
    table = live_table(*((m, announcement(m, heartbeat=hb)) for m in ("a", "b")))
    resumed = NOW + timedelta(seconds=10)
    heard(table, "a", resumed, 2, heartbeat=hb)  # the end of the silence
    heard(table, "b", resumed + timedelta(seconds=0.2), 2, heartbeat=hb)
    for step in range(1, 11):  # a announces every heartbeat
        at = resumed + timedelta(seconds=step * hb)
        heard(table, "a", at, step + 2, heartbeat=hb)
        assert [m.member_id for m in table.members(at)] == ["a", "b"], at
    at = resumed + timedelta(seconds=5.1)
    heard(table, "a", at, 13, heartbeat=hb)
    assert [m.member_id for m in table.members(at)] == ["a"]


def test_a_member_dead_before_a_silence_stays_dead_after_it() -> None:
    hb = 0.5
    table = live_table(
        ("a", announcement("a", heartbeat=hb)), ("b", announcement("b", heartbeat=hb))
    )
    for second in (0.5, 1.0, 1.5, 2.0):  # b goes on; a misses 3 heartbeats: dead at 1.5 s
        heard(table, "b", NOW + timedelta(seconds=second), int(second * 2) + 1, heartbeat=hb)
    resumed = NOW + timedelta(seconds=12)  # then silence; b is heard again
    heard(table, "b", resumed, 10, heartbeat=hb)
    assert [m.member_id for m in table.members(resumed)] == ["b"]


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
    for second in (2, 4, 6, 8):  # b goes on announcing; pod-0 is silent
        heard(table, "b", NOW + timedelta(seconds=second), second)
    later = NOW + timedelta(seconds=8)  # 3 heartbeats of 2 s missed: pod-0 is dead
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
