"""Each input's ``on_decode_error`` policy, applied as the processor applies it."""

from __future__ import annotations

import logging

import pytest

import goka
from goka import codec
from goka.errors import CodecError, ProcessorError
from goka.graph import DecodeErrorPolicy, dead_letter
from goka.partitioner import murmur2
from goka.tester import Tester


def counter(policy: DecodeErrorPolicy) -> goka.GroupGraph:
    return goka.define_group(
        "counter",
        goka.input(
            "numbers",
            codec.Int64(),
            lambda ctx, n: ctx.set_value((ctx.value() or 0) + n),
            on_decode_error=policy,
        ),
        goka.persist(codec.Int64()),
    )


def test_fail_raises_naming_topic_partition_offset_and_codec() -> None:
    tester = Tester(partitions=4)
    tester.add_processor(counter("fail"))
    partition = murmur2(b"k", 4)
    tester.consume("numbers", "k", 1)
    with pytest.raises(ProcessorError) as info:
        tester.consume("numbers", "k", b"one")
    message = str(info.value)
    assert f"topic 'numbers' partition {partition} offset 1 with codec 'int64'" in message
    assert "on_decode_error='skip' or goka.dead_letter(topic)" in message
    assert isinstance(info.value.__cause__, CodecError)
    assert tester.committed("counter", "numbers", partition) == 1
    tester.consume("numbers", "k", 2)  # later messages are processed; nothing passes the bad one
    assert tester.table("counter-table").get("k") == 3
    assert tester.committed("counter", "numbers", partition) == 1


def test_skip_counts_logs_and_commits_past(caplog: pytest.LogCaptureFixture) -> None:
    tester = Tester(partitions=4)
    processor = tester.add_processor(counter("skip"))
    partition = murmur2(b"k", 4)
    with caplog.at_level(logging.WARNING, logger="goka.tester"):
        tester.consume("numbers", "k", b"one")
        tester.consume("numbers", "k", 5)
    assert processor.skipped == 1
    assert tester.table("counter-table").get("k") == 5
    assert tester.committed("counter", "numbers", partition) == 2
    assert any(
        "skipped undecodable message at topic 'numbers'" in r.getMessage() for r in caplog.records
    )


def test_dead_letter_forwards_the_raw_message_with_error_headers() -> None:
    tester = Tester(partitions=4)
    tester.topic("numbers-dlq", partitions=2)
    processor = tester.add_processor(counter(dead_letter("numbers-dlq")))
    dlq = tester.output_tracker("numbers-dlq")
    partition = murmur2(b"k", 4)
    tester.consume("numbers", "k", 7)
    tester.consume("numbers", "k", b"seven", headers={"trace": b"t-9"})
    assert processor.dead_lettered == 1
    assert tester.table("counter-table").get("k") == 7
    assert tester.committed("counter", "numbers", partition) == 2
    message = dlq.next()
    assert message is not None
    assert (message.key, message.value) == ("k", b"seven")  # as it was: bytes
    assert message.partition == murmur2(b"k", 2)
    assert list(message.headers) == [
        "trace",
        "goka-error",
        "goka-source-topic",
        "goka-source-partition",
        "goka-source-offset",
    ]
    assert message.headers["trace"] == b"t-9"
    assert b"int64 codec cannot decode" in message.headers["goka-error"]
    assert message.headers["goka-source-topic"] == b"numbers"
    assert message.headers["goka-source-partition"] == str(partition).encode()
    assert message.headers["goka-source-offset"] == b"1"
    dlq.expect_empty()


def test_each_group_decodes_with_its_own_codec_and_policy() -> None:
    tester = Tester()
    texts: list[str] = []
    tester.add_processor(counter("skip"))
    tester.add_processor(
        goka.define_group(
            "texts", goka.input("numbers", codec.String(), lambda c, m: texts.append(m))
        )
    )
    tester.consume("numbers", "k", b"not a number")
    tester.consume("numbers", "k", b"12")
    assert texts == ["not a number", "12"]
    assert tester.table("counter-table").get("k") == 12
