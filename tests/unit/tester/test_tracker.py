"""Output trackers: following what the groups write to a topic."""

from __future__ import annotations

import pytest

import goka
from goka import codec
from goka.errors import ConfigError, ExpectationError
from goka.partitioner import murmur2
from goka.tester import Tester, TrackedMessage


def shout(ctx: goka.Context, msg: str) -> None:
    ctx.emit("shouts", ctx.key, {"text": msg.upper()}, headers={"n": str(len(msg)).encode()})


def shouter(tester: Tester) -> None:
    tester.add_processor(
        goka.define_group(
            "g", goka.input("words", codec.String(), shout), goka.output("shouts", codec.JSON())
        )
    )


def test_tracker_starts_at_the_end_and_reads_in_write_order_across_partitions() -> None:
    tester = Tester(partitions=4)
    shouter(tester)
    tester.consume("words", "before", "ignored")
    tracker = tester.output_tracker("shouts")
    assert tracker.next() is None and tracker.peek() is None
    keys = [f"k{i}" for i in range(12)]
    for key in keys:
        tester.consume("words", key, f"hi {key}")
    first = tracker.peek()
    assert first == tracker.peek()  # peek does not consume
    assert tracker.offset == 0
    messages = [tracker.next() for _ in keys]
    assert messages[0] == first
    assert [m.key for m in messages if m] == keys
    assert tracker.offset == 12
    assert tracker.next() is None
    message = messages[3]
    assert message == TrackedMessage(
        key="k3",
        value={"text": "HI K3"},
        headers={"n": b"5"},
        partition=murmur2(b"k3", 4),
        offset=message.offset if message else -1,
    )


def test_tracker_on_a_topic_created_later_starts_at_its_beginning() -> None:
    tester = Tester()
    tracker = tester.output_tracker("shouts", codec.JSON())
    shouter(tester)
    tester.consume("words", "k", "a")
    message = tracker.next()
    assert message is not None and message.value == {"text": "A"} and message.offset == 0


def test_tracker_decodes_with_a_given_codec() -> None:
    tester = Tester()
    shouter(tester)
    raw = tester.output_tracker("shouts", codec.Bytes())
    tester.consume("words", "k", "a")
    message = raw.next()
    assert message is not None and message.value == b'{"text":"A"}'


def test_tracker_of_a_topic_of_unknown_codec_names_the_fix() -> None:
    tester = Tester()
    tracker = tester.output_tracker("raw")
    tester.consume("raw", "k", b"x")
    with pytest.raises(ConfigError, match=r"tester.output_tracker\('raw', codec\)"):
        tracker.next()


def test_expect_empty_lists_what_is_left() -> None:
    tester = Tester()
    shouter(tester)
    tracker = tester.output_tracker("shouts")
    tracker.expect_empty()
    for i in range(12):
        tester.consume("words", f"k{i}", "x")
    tracker.next()
    with pytest.raises(ExpectationError) as info:
        tracker.expect_empty()
    assert isinstance(info.value, AssertionError) and isinstance(info.value, goka.GokaError)
    message = str(info.value)
    assert "topic 'shouts' has 11 message(s) the tracker has not read" in message
    assert "'k1'=b'{\"text\":\"X\"}' (partition 0 offset 1)" in message
    assert "and 1 more" in message
    assert len(list(tracker)) == 11  # iterating reads the rest
    tracker.expect_empty()
