"""Each edge of a group definition on the real broker: loop, join, lookup."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

import goka
from goka import codec
from tests.conftest import RunningProcessor, unique
from tests.support.tables import emit_all, wait_for_rows

pytestmark = pytest.mark.broker

TIMEOUT = 60.0


def test_loopback_reaches_the_loop_callback_under_the_new_key(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    """Every follow event `follower -> followed` is looped back to count followers."""
    topic = topic_factory("follows", partitions=4)
    group = unique("followers")

    def on_follow(ctx: goka.Context, followed: str) -> None:
        ctx.loopback(followed, ctx.key)

    def on_loop(ctx: goka.Context, follower: str) -> None:
        assert ctx.topic == goka.loop_topic(group)
        ctx.set_value(sorted({*(ctx.value() or []), follower}))

    graph = goka.define_group(
        group,
        goka.input(topic, codec.String(), on_follow),
        goka.loop(codec.String(), on_loop),
        goka.persist(codec.JSON()),
    )
    emit_all(goka_brokers, topic, codec.String(), [("ann", "bob"), ("cat", "bob"), ("bob", "ann")])
    runner = processor_factory(graph)
    expected = {"bob": ["ann", "cat"], "ann": ["bob"]}
    assert wait_for_rows(goka_brokers, goka.group_table(group), codec.JSON(), expected) == expected
    assert goka.TopicManager(goka_brokers).partitions(goka.loop_topic(group)) == 4
    assert runner.stop() is None


def test_join_reads_the_same_key_of_a_copartitioned_table(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    prices_topic = topic_factory("prices", partitions=3)
    orders_topic = topic_factory("orders", partitions=3)
    prices_group, orders_group = unique("prices"), unique("orders")

    def set_price(ctx: goka.Context, price: int) -> None:
        ctx.set_value(price)

    def total(ctx: goka.Context, quantity: int) -> None:
        price = ctx.join(goka.group_table(prices_group))
        ctx.set_value((ctx.value() or 0) + quantity * (price or 0))

    prices = goka.define_group(
        prices_group,
        goka.input(prices_topic, codec.Int64(), set_price),
        goka.persist(codec.Int64()),
    )
    orders = goka.define_group(
        orders_group,
        goka.input(orders_topic, codec.Int64(), total),
        goka.join(goka.group_table(prices_group), codec.Int64()),
        goka.persist(codec.Int64()),
    )
    emit_all(goka_brokers, prices_topic, codec.Int64(), [("apple", 3), ("pear", 5)])
    prices_runner = processor_factory(prices)
    wait_for_rows(
        goka_brokers, goka.group_table(prices_group), codec.Int64(), {"apple": 3, "pear": 5}
    )
    # the joined table is recovered before the orders are processed
    emit_all(goka_brokers, orders_topic, codec.Int64(), [("apple", 2), ("pear", 1), ("fig", 9)])
    orders_runner = processor_factory(orders)
    expected = {"apple": 6, "pear": 5, "fig": 0}
    rows = wait_for_rows(goka_brokers, goka.group_table(orders_group), codec.Int64(), expected)
    assert rows == expected
    # and followed afterwards
    emit_all(goka_brokers, prices_topic, codec.Int64(), [("apple", 10)])
    wait_for_rows(
        goka_brokers, goka.group_table(prices_group), codec.Int64(), {"apple": 10, "pear": 5}
    )
    deadline = time.monotonic() + TIMEOUT
    joined = orders_runner.processor.stats()["partitions"]
    while time.monotonic() < deadline:  # the join store catches up with the price change
        joined = orders_runner.processor.stats()["partitions"]
        if sum(p["joins"][goka.group_table(prices_group)] or 0 for p in joined.values()) >= 3:
            break
        time.sleep(0.05)
    emit_all(goka_brokers, orders_topic, codec.Int64(), [("apple", 1)])
    expected["apple"] = 16
    rows = wait_for_rows(goka_brokers, goka.group_table(orders_group), codec.Int64(), expected)
    assert rows == expected
    assert orders_runner.stop() is None
    assert prices_runner.stop() is None


def test_lookup_reads_any_key_and_waits_for_the_view(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    names_topic = topic_factory("names", partitions=2)
    greetings_topic = topic_factory("greet", partitions=4)
    names_group, greeter_group = unique("names"), unique("greeter")

    def set_name(ctx: goka.Context, name: str) -> None:
        ctx.set_value(name)

    def greet(ctx: goka.Context, user_id: str) -> None:
        # the key of the message is not the key looked up, and the partition counts differ
        name = ctx.lookup(goka.group_table(names_group), user_id)
        ctx.set_value(f"hello {name}")

    names = goka.define_group(
        names_group, goka.input(names_topic, codec.String(), set_name), goka.persist(codec.String())
    )
    greeter = goka.define_group(
        greeter_group,
        goka.input(greetings_topic, codec.String(), greet),
        goka.lookup(goka.group_table(names_group), codec.String()),
        goka.persist(codec.String()),
    )
    emit_all(goka_brokers, names_topic, codec.String(), [(f"u{i}", f"name{i}") for i in range(20)])
    names_runner = processor_factory(names)
    wait_for_rows(
        goka_brokers,
        goka.group_table(names_group),
        codec.String(),
        {f"u{i}": f"name{i}" for i in range(20)},
    )
    emit_all(goka_brokers, greetings_topic, codec.String(), [(f"g{i}", f"u{i}") for i in range(20)])
    greeter_runner = processor_factory(greeter)
    expected = {f"g{i}": f"hello name{i}" for i in range(20)}
    rows = wait_for_rows(goka_brokers, goka.group_table(greeter_group), codec.String(), expected)
    assert rows == expected
    assert greeter_runner.processor.stats()["lookups"] == {goka.group_table(names_group): "running"}
    assert greeter_runner.stop() is None
    assert names_runner.stop() is None
