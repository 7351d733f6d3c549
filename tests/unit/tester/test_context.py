"""Every Context feature through the tester, on multi-partition topics."""

from __future__ import annotations

from typing import Any

import pytest

import goka
from goka import codec
from goka.errors import ConfigError, ProcessorError
from goka.graph import join, lookup, loop
from goka.partitioner import murmur2
from goka.tester import Tester

KEYS = [f"user-{i}" for i in range(24)]


def apply_command(ctx: goka.Context, msg: dict[str, Any]) -> None:
    if msg["op"] == "set":
        ctx.set_value(msg["value"])
        assert ctx.value() == msg["value"]  # reads see the callback's own writes
    elif msg["op"] == "delete":
        ctx.delete()
        assert ctx.value() is None


def test_value_set_value_and_delete_across_eight_partitions() -> None:
    tester = Tester(partitions=8)
    tester.add_processor(
        goka.define_group(
            "state", goka.input("commands", codec.JSON(), apply_command), goka.persist(codec.JSON())
        )
    )
    changelog = tester.output_tracker("state-table")
    for i, key in enumerate(KEYS):
        tester.consume("commands", key, {"op": "set", "value": {"n": i}})
    for key in KEYS[::2]:
        tester.consume("commands", key, {"op": "delete"})
    table = tester.table("state-table")
    assert table.items() == sorted((k, {"n": i}) for i, k in enumerate(KEYS) if i % 2)
    changes = list(changelog)
    assert len(changes) == len(KEYS) + len(KEYS[::2])
    for change in changes:  # each key's row lives in its murmur2 partition of the table
        assert change.partition == murmur2(change.key.encode(), 8)
    assert [c.value for c in changes[len(KEYS) :]] == [None] * len(KEYS[::2])  # tombstones


def test_state_needs_a_table() -> None:
    tester = Tester()
    tester.add_processor(goka.define_group("g", goka.input("in", codec.JSON(), apply_command)))
    with pytest.raises(ProcessorError) as info:
        tester.consume("in", "k", {"op": "set", "value": 1})
    assert isinstance(info.value.__cause__, ConfigError)
    assert "has no table: add goka.persist(codec)" in str(info.value.__cause__)


def echo(ctx: goka.Context, msg: str) -> None:
    ctx.emit("echoes", ctx.key, msg.upper(), headers={"source": ctx.topic.encode()})
    ctx.emit("echoes", ctx.key + "-gone", None)  # a tombstone


def test_emit_goes_to_the_declared_output_partitioned_by_key() -> None:
    tester = Tester(partitions=3)
    tester.topic("echoes", partitions=5)
    tester.add_processor(
        goka.define_group(
            "g", goka.input("words", codec.String(), echo), goka.output("echoes", codec.String())
        )
    )
    echoes = tester.output_tracker("echoes")
    for key in KEYS:
        tester.consume("words", key, f"hi {key}")
    for key in KEYS:
        message = echoes.next()
        assert message is not None
        assert (message.key, message.value) == (key, f"HI {key.upper()}")
        assert message.headers == {"source": b"words"}
        assert message.partition == murmur2(key.encode(), 5)
        tombstone = echoes.next()
        assert tombstone is not None and tombstone.value is None
    echoes.expect_empty()


def test_emit_to_an_undeclared_topic_raises_with_the_fix() -> None:
    tester = Tester()

    def bad(ctx: goka.Context, msg: str) -> None:
        ctx.emit("elsewhere", ctx.key, msg)

    tester.add_processor(goka.define_group("g", goka.input("words", codec.String(), bad)))
    with pytest.raises(ProcessorError) as info:
        tester.consume("words", "k", "v")
    cause = info.value.__cause__
    assert isinstance(cause, ConfigError)
    assert str(cause) == (
        "topic 'elsewhere' is not configured for output. Did you specify "
        "goka.output('elsewhere', codec) when defining group 'g'?"
    )
    assert "group 'g'" in str(info.value) and "'words'" in str(info.value)


def test_emit_needs_a_str_key() -> None:
    tester = Tester()

    def bad(ctx: goka.Context, msg: str) -> None:
        ctx.emit("out", 42, msg)  # type: ignore[arg-type]

    tester.add_processor(
        goka.define_group(
            "g", goka.input("words", codec.String(), bad), goka.output("out", codec.String())
        )
    )
    with pytest.raises(ProcessorError) as info:
        tester.consume("words", "k", "v")
    assert "key must be str, got int" in str(info.value.__cause__)


def countdown(ctx: goka.Context, n: int) -> None:
    ctx.set_value((ctx.value() or []) + [n])
    if n > 0:
        ctx.loopback(f"{ctx.key}", n - 1, headers={"hop": str(n).encode()})


def start(ctx: goka.Context, n: str) -> None:
    ctx.loopback(ctx.key, int(n))


def test_loopback_goes_through_the_loop_topic_to_the_loop_callback() -> None:
    tester = Tester(partitions=4)
    tester.add_processor(
        goka.define_group(
            "g",
            goka.input("starts", codec.String(), start),
            loop(codec.Int64(), countdown),
            goka.persist(codec.JSON()),
        )
    )
    looped = tester.output_tracker("g-loop")
    tester.consume("starts", "a", "3")
    assert tester.table("g-table").get("a") == [3, 2, 1, 0]
    messages = list(looped)
    assert [m.value for m in messages] == [3, 2, 1, 0]
    assert {m.partition for m in messages} == {murmur2(b"a", 4)}
    assert [m.headers.get("hop") for m in messages] == [None, b"3", b"2", b"1"]
    assert tester.committed("g", "g-loop", murmur2(b"a", 4)) == 4


def test_loopback_without_a_loop_edge_names_the_fix() -> None:
    tester = Tester()
    tester.add_processor(goka.define_group("g", goka.input("starts", codec.String(), start)))
    with pytest.raises(ProcessorError) as info:
        tester.consume("starts", "a", "1")
    assert "has no loop: add goka.loop(codec, callback)" in str(info.value.__cause__)


def user_with_score(ctx: goka.Context, msg: str) -> None:
    ctx.set_value({"msg": msg, "score": ctx.join("scores-table")})


def test_join_reads_the_same_key_in_the_same_partition_of_the_joined_table() -> None:
    tester = Tester(partitions=8)
    tester.add_processor(
        goka.define_group(
            "scores",
            goka.input(
                "points", codec.Int64(), lambda ctx, n: ctx.set_value((ctx.value() or 0) + n)
            ),
            goka.persist(codec.Int64()),
        )
    )
    partitions_seen: list[int] = []

    def joined(ctx: goka.Context, msg: str) -> None:
        partitions_seen.append(ctx.partition)
        user_with_score(ctx, msg)

    tester.add_processor(
        goka.define_group(
            "users",
            goka.input("messages", codec.String(), joined),
            join("scores-table", codec.Int64()),
            goka.persist(codec.JSON()),
        )
    )
    for i, key in enumerate(KEYS):
        tester.consume("points", key, i)
        tester.consume("points", key, 100)
    tester.table("scores-table").set("set-by-test", 7)  # visible to joins, as in Goka's tester
    for key in [*KEYS, "set-by-test", "nobody"]:
        tester.consume("messages", key, "hello")
    users = dict(tester.table("users-table").items())
    assert users == {
        **{key: {"msg": "hello", "score": i + 100} for i, key in enumerate(KEYS)},
        "set-by-test": {"msg": "hello", "score": 7},
        "nobody": {"msg": "hello", "score": None},
    }
    assert partitions_seen == [murmur2(k.encode(), 8) for k in [*KEYS, "set-by-test", "nobody"]]


def test_join_of_an_undeclared_table_names_the_fix() -> None:
    tester = Tester()
    tester.add_processor(
        goka.define_group(
            "g", goka.input("messages", codec.String(), user_with_score), goka.persist(codec.JSON())
        )
    )
    with pytest.raises(ProcessorError) as info:
        tester.consume("messages", "k", "hi")
    assert "add goka.join('scores-table', codec) to define_group (joined: [])" in str(
        info.value.__cause__
    )


def test_lookup_reads_any_key_of_a_table_with_another_partition_count() -> None:
    tester = Tester(partitions=2)
    tester.topic("prices-table", partitions=8)
    prices = tester.table("prices-table", codec.Int64())
    for i, key in enumerate(KEYS):
        prices.set(f"item-{key}", i)

    def total(ctx: goka.Context, items: list[str]) -> None:
        ctx.set_value(sum(ctx.lookup("prices-table", item) or 0 for item in items))

    tester.add_processor(
        goka.define_group(
            "carts",
            goka.input("cart-items", codec.JSON(), total),
            lookup("prices-table", codec.Int64()),
            lookup("empty-table", codec.Int64()),
            goka.persist(codec.Int64()),
        )
    )
    tester.consume("cart-items", "cart-1", ["item-user-1", "item-user-5", "missing"])
    assert tester.table("carts-table").get("cart-1") == 6

    def missing(ctx: goka.Context, items: list[str]) -> None:
        ctx.set_value(ctx.lookup("empty-table", "x") is None)

    tester.add_processor(
        goka.define_group(
            "g2",
            goka.input("cart-items-2", codec.JSON(), missing),
            lookup("empty-table", codec.Int64()),
            goka.persist(codec.JSON()),
        )
    )
    tester.consume("cart-items-2", "c", [])
    assert tester.table("g2-table").get("c") is True


def test_lookup_of_an_undeclared_table_names_the_fix() -> None:
    tester = Tester()

    def bad(ctx: goka.Context, msg: str) -> None:
        ctx.lookup("prices-table", "x")

    tester.add_processor(goka.define_group("g", goka.input("in", codec.String(), bad)))
    with pytest.raises(ProcessorError) as info:
        tester.consume("in", "k", "v")
    assert "add goka.lookup('prices-table', codec) to define_group" in str(info.value.__cause__)


def test_a_raising_callback_raises_processor_error_and_leaves_nothing_behind() -> None:
    tester = Tester(partitions=2)
    error = KeyError("boom")

    def flaky(ctx: goka.Context, msg: str) -> None:
        ctx.set_value(msg)
        ctx.emit("out", ctx.key, msg)
        if msg == "bad":
            raise error

    tester.add_processor(
        goka.define_group(
            "g",
            goka.input("in", codec.String(), flaky),
            goka.output("out", codec.String()),
            goka.persist(codec.String()),
        )
    )
    out = tester.output_tracker("out")
    partition = murmur2(b"k", 2)
    tester.consume("in", "k", "good")
    with pytest.raises(ProcessorError) as info:
        tester.consume("in", "k", "bad")
    assert info.value.__cause__ is error
    assert "raised KeyError: 'boom' (partition" in str(info.value)
    assert tester.table("g-table").get("k") == "good"  # the failed callback wrote nothing
    assert [m.value for m in out] == ["good"]
    assert tester.committed("g", "in", partition) == 1  # stays before the failed message
    tester.consume("in", "k", "later")  # the tester goes on; the failed one is not retried
    assert tester.table("g-table").get("k") == "later"
    assert tester.committed("g", "in", partition) == 1


@pytest.mark.parametrize("swallow", [False, True])
def test_ctx_fail_raises_processor_error_from_the_error(swallow: bool) -> None:
    tester = Tester()
    error = ValueError("invalid order")

    def failing(ctx: goka.Context, msg: str) -> None:
        ctx.set_value(msg)
        try:
            ctx.fail(error)
        except goka.GokaError:
            if not swallow:
                raise

    tester.add_processor(
        goka.define_group(
            "g", goka.input("in", codec.String(), failing), goka.persist(codec.String())
        )
    )
    with pytest.raises(ProcessorError) as info:
        tester.consume("in", "k", "v")
    assert info.value.__cause__ is error
    assert "invalid order" in str(info.value) and "group 'g' failed" in str(info.value)
    assert tester.table("g-table").get("k") is None
    assert tester.committed("g", "in", 0) == 0


def test_ctx_fail_with_a_message() -> None:
    tester = Tester()
    tester.add_processor(
        goka.define_group("g", goka.input("in", codec.String(), lambda ctx, m: ctx.fail(m)))
    )
    with pytest.raises(ProcessorError, match="out of stock") as info:
        tester.consume("in", "k", "out of stock")
    assert isinstance(info.value.__cause__, RuntimeError)
