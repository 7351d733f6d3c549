"""Cascades: one consume runs every group its messages reach, in the order they were written."""

from __future__ import annotations

from typing import Any

import pytest

import goka
from goka import codec
from goka.errors import ProcessorError
from goka.graph import loop
from goka.tester import Tester


def test_messages_emitted_to_another_groups_input_are_processed_in_the_same_call() -> None:
    tester = Tester(partitions=8)
    order: list[str] = []

    def check(ctx: goka.Context, order_msg: dict[str, Any]) -> None:
        order.append(f"check {ctx.key}")
        if order_msg["amount"] > 0:
            ctx.emit("accepted", order_msg["user"], order_msg["amount"])
        else:
            ctx.emit("rejected", ctx.key, order_msg)

    def book(ctx: goka.Context, amount: int) -> None:
        order.append(f"book {ctx.key}")
        ctx.set_value((ctx.value() or 0) + amount)

    tester.add_processor(
        goka.define_group(
            "checker",
            goka.input("orders", codec.JSON(), check),
            goka.output("accepted", codec.Int64()),
            goka.output("rejected", codec.JSON()),
        )
    )
    tester.add_processor(
        goka.define_group(
            "balances", goka.input("accepted", codec.Int64(), book), goka.persist(codec.Int64())
        )
    )
    rejected = tester.output_tracker("rejected")
    tester.consume("orders", "o-1", {"user": "ann", "amount": 5})
    tester.consume("orders", "o-2", {"user": "bob", "amount": -1})
    tester.consume("orders", "o-3", {"user": "ann", "amount": 7})
    assert tester.table("balances-table").items() == [("ann", 12)]
    assert order == ["check o-1", "book ann", "check o-2", "check o-3", "book ann"]
    message = rejected.next()
    assert message is not None and message.key == "o-2"
    assert message.value == {"user": "bob", "amount": -1}
    rejected.expect_empty()


def test_a_chain_of_three_groups_runs_breadth_first_in_write_order() -> None:
    tester = Tester(partitions=2)
    seen: list[str] = []

    def fan_out(ctx: goka.Context, msg: str) -> None:
        seen.append(f"a:{msg}")
        ctx.emit("b-in", ctx.key, msg + "1")
        ctx.emit("b-in", ctx.key, msg + "2")

    def relay(ctx: goka.Context, msg: str) -> None:
        seen.append(f"b:{msg}")
        ctx.emit("c-in", ctx.key, msg + "x")

    tester.add_processor(
        goka.define_group(
            "a", goka.input("a-in", codec.String(), fan_out), goka.output("b-in", codec.String())
        )
    )
    tester.add_processor(
        goka.define_group(
            "b", goka.input("b-in", codec.String(), relay), goka.output("c-in", codec.String())
        )
    )
    tester.add_processor(
        goka.define_group(
            "c", goka.input("c-in", codec.String(), lambda c, m: seen.append(f"c:{m}"))
        )
    )
    tester.consume("a-in", "k", "m")
    assert seen == ["a:m", "b:m1", "b:m2", "c:m1x", "c:m2x"]


def test_two_groups_consuming_one_topic_both_process_it_in_registration_order() -> None:
    tester = Tester()
    seen: list[str] = []
    for group in ("first", "second"):
        tester.add_processor(
            goka.define_group(
                group, goka.input("events", codec.String(), lambda c, m, g=group: seen.append(g))
            )
        )
    tester.consume("events", "k", "v")
    assert seen == ["first", "second"]


def test_loops_between_groups_are_stopped_with_a_clear_error() -> None:
    tester = Tester(max_cascade=50)

    def ping(ctx: goka.Context, msg: str) -> None:
        ctx.emit("pong", ctx.key, msg)

    def pong(ctx: goka.Context, msg: str) -> None:
        ctx.emit("ping", ctx.key, msg)

    tester.add_processor(
        goka.define_group(
            "pinger", goka.input("ping", codec.String(), ping), goka.output("pong", codec.String())
        )
    )
    tester.add_processor(
        goka.define_group(
            "ponger", goka.input("pong", codec.String(), pong), goka.output("ping", codec.String())
        )
    )
    with pytest.raises(ProcessorError) as info:
        tester.consume("ping", "k", "ball")
    message = str(info.value)
    assert "more than 50 messages were processed for one call" in message
    assert "cycle" in message and "Tester(max_cascade=...)" in message


def test_an_endless_loopback_is_stopped_too() -> None:
    tester = Tester(max_cascade=1000)

    def forever(ctx: goka.Context, n: int) -> None:
        ctx.loopback(ctx.key, n + 1)

    tester.add_processor(
        goka.define_group(
            "g",
            goka.input("start", codec.Int64(), forever),
            loop(codec.Int64(), forever),
        )
    )
    with pytest.raises(ProcessorError, match="more than 1000 messages"):
        tester.consume("start", "k", 0)


def test_a_failure_mid_cascade_leaves_the_rest_for_the_next_call() -> None:
    tester = Tester()
    seen: list[str] = []

    def split(ctx: goka.Context, msg: str) -> None:
        for part in msg.split(","):
            ctx.emit("parts", ctx.key, part)

    def take(ctx: goka.Context, part: str) -> None:
        if part == "bad":
            raise ValueError(part)
        seen.append(part)

    tester.add_processor(
        goka.define_group(
            "splitter",
            goka.input("lines", codec.String(), split),
            goka.output("parts", codec.String()),
        )
    )
    tester.add_processor(goka.define_group("taker", goka.input("parts", codec.String(), take)))
    with pytest.raises(ProcessorError):
        tester.consume("lines", "k", "a,bad,b")
    assert seen == ["a"]
    tester.consume("lines", "k", "c")
    assert seen == ["a", "b", "c"]
