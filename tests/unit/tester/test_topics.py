"""The tester's topics: partitions from the partitioner, offsets, declarations, co-partitioning."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import goka
from goka import codec
from goka.errors import ConfigError, TopicError
from goka.graph import join, loop
from goka.partitioner import fnv1a, murmur2
from goka.tester import Tester

KEYS = [f"user-{i}" for i in range(40)]


def count(ctx: goka.Context, msg: Any) -> None:
    ctx.set_value((ctx.value() or 0) + 1)


def counter(group: str = "counter", topic: str = "clicks") -> goka.GroupGraph:
    return goka.define_group(
        group, goka.input(topic, codec.String(), count), goka.persist(codec.Int64())
    )


def test_keys_land_in_the_murmur2_partition_with_consecutive_offsets() -> None:
    tester = Tester(partitions=8)
    tester.add_processor(counter())
    next_offset = [0] * 8
    for key in KEYS * 2:
        partition, offset = tester.consume("clicks", key, "click")
        assert partition == murmur2(key.encode(), 8)
        assert offset == next_offset[partition]
        next_offset[partition] += 1
    assert len({murmur2(k.encode(), 8) for k in KEYS}) == 8  # every partition is used
    view = tester.view("counter-table", codec.Int64())
    assert view.partitions == tuple(range(8))
    assert dict(view.items()) == dict.fromkeys(KEYS, 2)
    for partition in range(8):
        assert tester.committed("counter", "clicks", partition) == next_offset[partition]


def test_fnv1a_partitioner() -> None:
    tester = Tester(partitions=8, partitioner="fnv1a")
    tester.add_processor(counter())
    for key in KEYS:
        assert tester.consume("clicks", key, "click").partition == fnv1a(key.encode(), 8)
    assert tester.view("counter-table", codec.Int64()).partition_of("user-3") == fnv1a(b"user-3", 8)


def test_same_calls_give_same_partitions_and_offsets() -> None:
    def run() -> list[Any]:
        tester = Tester(partitions=5)
        tester.add_processor(counter())
        return [tester.consume("clicks", key, "click") for key in KEYS]

    assert run() == run()


def test_declared_topics_keep_their_count() -> None:
    tester = Tester(partitions=2)
    tester.topic("clicks", partitions=6)
    tester.topic("clicks", partitions=6)  # the same count again is fine
    processor = tester.add_processor(counter())
    assert processor.partitions == 6
    assert tester.view("counter-table", codec.Int64()).partitions == tuple(range(6))
    with pytest.raises(TopicError, match=r"'clicks' is already in use with 6 partitions"):
        tester.topic("clicks", partitions=3)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_bad_partition_counts_are_refused(bad: Any) -> None:
    with pytest.raises(ConfigError, match="partitions must be an int >= 1"):
        Tester(partitions=bad)
    with pytest.raises(ConfigError, match="partitions must be an int >= 1"):
        Tester().topic("t", partitions=bad)


def test_unknown_partitioner_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown partitioner 'crc32'"):
        Tester(partitioner="crc32")


def test_inputs_must_be_copartitioned() -> None:
    tester = Tester()
    tester.topic("clicks", partitions=4)
    tester.topic("views", partitions=8)
    graph = goka.define_group(
        "g",
        goka.input("clicks", codec.String(), count),
        goka.input("views", codec.String(), count),
        goka.persist(codec.Int64()),
    )
    with pytest.raises(TopicError) as info:
        tester.add_processor(graph)
    message = str(info.value)
    assert "not co-partitioned" in message
    assert "'clicks' has 4" in message and "'views' has 8" in message
    assert "tester.topic(name, partitions=N)" in message


def test_table_loop_and_inputs_get_the_inputs_count() -> None:
    tester = Tester(partitions=1)
    tester.topic("views", partitions=4)
    graph = goka.define_group(
        "g",
        goka.input("clicks", codec.String(), count),
        goka.input("views", codec.String(), count),
        loop(codec.String(), count),
        join("other-table", codec.Int64()),
        goka.output("alerts", codec.String()),
        goka.persist(codec.Int64()),
    )
    assert tester.add_processor(graph).partitions == 4
    with pytest.raises(TopicError, match="already in use with 4"):
        tester.topic("clicks", partitions=1)
    for name in ("g-table", "g-loop", "other-table"):
        with pytest.raises(TopicError, match="already in use with 4"):
            tester.topic(name, partitions=1)
    tester.topic("alerts", partitions=1)  # outputs get the default count


def test_a_joined_table_with_another_count_is_refused() -> None:
    tester = Tester(partitions=3)
    tester.table("other-table", codec.Int64()).set("k", 1)  # created with 3 partitions
    tester.topic("clicks", partitions=8)
    graph = goka.define_group(
        "g", goka.input("clicks", codec.String(), count), join("other-table", codec.Int64())
    )
    with pytest.raises(TopicError, match="'other-table' has 3"):
        tester.add_processor(graph)


def test_a_group_is_added_once_and_must_be_a_graph() -> None:
    tester = Tester()
    tester.add_processor(counter())
    with pytest.raises(ConfigError, match="already added"):
        tester.add_processor(counter())
    with pytest.raises(ConfigError, match=r"goka.define_group"):
        tester.add_processor("counter")  # type: ignore[arg-type]


def test_consume_encodes_with_the_input_codec_or_passes_bytes() -> None:
    tester = Tester()
    seen: list[Any] = []
    tester.add_processor(
        goka.define_group("g", goka.input("events", codec.JSON(), lambda ctx, m: seen.append(m)))
    )
    tester.consume("events", "k", {"a": [1, 2]})
    tester.consume("events", "k", b'{"raw": true}')
    tester.consume("events", "k", None)  # a tombstone reaches the callback as None
    assert seen == [{"a": [1, 2]}, {"raw": True}, None]


def test_consume_needs_a_codec_for_topics_nobody_consumes() -> None:
    tester = Tester()
    with pytest.raises(ConfigError, match="no group added to the tester consumes topic 'nobody'"):
        tester.consume("nobody", "k", "text")
    assert tester.consume("nobody", "k", b"raw") == (0, 0)
    with pytest.raises(ConfigError, match="key must be str"):
        tester.consume("nobody", 1, b"x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a valid Kafka topic name"):
        tester.consume("bad topic", "k", b"x")


def test_metadata_headers_and_timestamp_reach_the_context() -> None:
    tester = Tester(partitions=3)
    seen: list[dict[str, Any]] = []

    def record(ctx: goka.Context, msg: str) -> None:
        seen.append(
            {
                "key": ctx.key,
                "topic": ctx.topic,
                "partition": ctx.partition,
                "offset": ctx.offset,
                "headers": ctx.headers,
                "timestamp": ctx.timestamp,
            }
        )

    tester.add_processor(goka.define_group("g", goka.input("events", codec.String(), record)))
    when = datetime(2024, 5, 17, 12, 30, 1, 250_000, tzinfo=UTC)
    tester.consume("events", "k", "v", headers={"trace": b"t-1"}, timestamp=when)
    before = datetime.now(UTC).replace(microsecond=0)
    tester.consume("events", "k", "v")
    assert seen[0] == {
        "key": "k",
        "topic": "events",
        "partition": murmur2(b"k", 3),
        "offset": 0,
        "headers": {"trace": b"t-1"},
        "timestamp": when,
    }
    assert seen[1]["offset"] == 1 and seen[1]["headers"] == {}
    assert seen[1]["timestamp"] >= before
    with pytest.raises(ConfigError, match="timezone-aware"):
        tester.consume("events", "k", "v", timestamp=datetime(2024, 1, 1))  # noqa: DTZ001


def test_a_processor_added_later_processes_what_its_inputs_hold() -> None:
    tester = Tester(partitions=4)
    for key in KEYS[:10]:
        tester.consume("clicks", key, b"click")
    tester.add_processor(counter())
    assert tester.table("counter-table").items() == [(k, 1) for k in sorted(KEYS[:10])]
