"""The one ReadOptions conversion (call arguments -> wire -> what a server decides with) and
the one rule of who may answer, shared by client and server."""

from __future__ import annotations

import pytest

from discovery.model import Owner
from goka.errors import ConfigError
from viewsvc.v1 import table_pb2 as pb
from viewsvc.wire.errors import InvalidArgument
from viewsvc.wire.read_options import DEFAULTS, ReadOptions, eligible, running


def test_arguments_survive_the_wire() -> None:
    sent = ReadOptions.from_arguments("active", 5, {0: 7, 3: 0}, "clicks")
    wire = sent.to_pb()
    assert wire.consistency == pb.CONSISTENCY_ACTIVE
    assert (wire.max_lag, dict(wire.min_offsets), wire.min_offsets_topic) == (
        5,
        {0: 7, 3: 0},
        "clicks",
    )
    received = ReadOptions.from_pb(pb.ReadOptions.FromString(wire.SerializeToString()), "t", 4)
    assert received == sent
    assert received.active_only and received.min_offset(0) == 7 and received.min_offset(1) is None


def test_an_unset_message_is_the_defaults_and_the_table_topic_means_no_topic() -> None:
    assert ReadOptions.from_pb(pb.ReadOptions(), "t", 4) == DEFAULTS
    assert not DEFAULTS.active_only
    named = ReadOptions.from_pb(pb.ReadOptions(min_offsets_topic="t", min_offsets={1: 2}), "t", 4)
    assert named.min_offsets_topic == "" and not named.active_only


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("some", 0, None, ""), "consistency must be 'any' or 'active', got 'some'"),
        (("any", -1, None, ""), r"max_lag must be an int >= 0 \(0: no bound\), got -1"),
        (("any", True, None, ""), "max_lag must be an int >= 0"),
        (("any", 0, {0: -1}, ""), "min_offsets maps partitions to offsets"),
        (("any", 0, {"0": 1}, ""), "min_offsets maps partitions to offsets"),
        (("any", 0, None, 3), "min_offsets_topic must be a topic name, got 3"),
    ],
)
def test_bad_arguments_are_config_errors(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ReadOptions.from_arguments(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        (pb.ReadOptions(consistency=9), "options.consistency", "unknown value 9"),
        (pb.ReadOptions(max_lag=-2), "options.max_lag", r"must be >= 0 \(0: no bound\), got -2"),
        (pb.ReadOptions(min_offsets={4: 1}), "options.min_offsets", "partition 4 is not a"),
        (pb.ReadOptions(min_offsets={1: -1}), "options.min_offsets", "offset -1 of partition 1"),
    ],
)
def test_bad_messages_name_the_field(options: pb.ReadOptions, field: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        ReadOptions.from_pb(options, "t", 4)
    assert info.value.field == field


def owner(member: str, kind: str = "active", state: str = "running", lag: int = 0) -> Owner:
    return Owner(member, f"{member}:1" if member != "hidden" else "", kind, state, 10, lag, 1)


def test_eligible_is_running_reachable_within_the_bound_least_lag_first() -> None:
    holders = [
        owner("a", lag=3),
        owner("s1", "standby", lag=1),
        owner("s2", "standby", lag=-1),
        owner("r", "replica", "recovering", lag=0),
        owner("hidden", "replica", lag=0),
        owner("s3", "standby", lag=3),
    ]

    def names(options: ReadOptions) -> list[str]:
        return [o.member_id for o in eligible(holders, options)]

    assert names(DEFAULTS) == ["s1", "a", "s3", "s2"]
    assert names(ReadOptions(max_lag=2)) == ["s1"]
    assert names(ReadOptions(consistency="active")) == ["a"]
    assert names(ReadOptions(min_offsets_topic="input")) == ["a"]
    assert names(ReadOptions(consistency="active", max_lag=2)) == []
    # the same holders, but for the lag bound: what the server reports as "too far behind"
    assert [o.member_id for o in running(holders, ReadOptions(max_lag=2))] == [
        "a",
        "s1",
        "s2",
        "s3",
    ]
