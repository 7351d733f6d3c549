"""Decode-error policies, deferred commits, visits, and what stats() says about them."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer

import goka
from goka import codec
from goka.errors import ProcessorError, VisitAborted
from tests.conftest import RunningProcessor, unique
from tests.integration.test_processor_context import read_all
from tests.integration.test_processor_errors import committed

pytestmark = pytest.mark.broker

TIMEOUT = 60.0


def produce_raw(brokers: str, topic: str, rows: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": brokers})
    for key, value in rows:
        producer.produce(topic, value, key, partition=0, headers=[("origin", b"test")])
    assert producer.flush(10) == 0


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def processed(runner: RunningProcessor) -> int:
    return sum(p.get("messages_in", 0) for p in runner.processor.stats()["partitions"].values())


def count(ctx: goka.Context, msg: Any) -> None:
    ctx.set_value((ctx.value() or 0) + 1)


BAD_ROWS = [(b"a", b"1"), (b"a", b"x1"), (b"b", b"2"), (b"a", b"x2"), (b"b", b"3")]


def test_skip_policy_counts_and_goes_on(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("numbers", partitions=1)
    group = unique("skipper")
    produce_raw(goka_brokers, topic, BAD_ROWS)
    graph = goka.define_group(
        group,
        goka.input(topic, codec.Int64(), count, on_decode_error="skip"),
        goka.persist(codec.Int64()),
    )
    runner = processor_factory(graph)
    wait_until(lambda: committed(goka_brokers, group, topic, 0) == 5)
    [partition] = runner.processor.stats()["partitions"].values()
    assert partition["skipped"] == 2
    assert partition["messages_in"] == 3
    assert runner.stop() is None


def test_dead_letter_policy_forwards_the_raw_message_with_its_story(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("numbers", partitions=1)
    dead = topic_factory("numbers-dlq", partitions=2)
    group = unique("dlq")
    produce_raw(goka_brokers, topic, BAD_ROWS)
    graph = goka.define_group(
        group,
        goka.input(topic, codec.Int64(), count, on_decode_error=goka.dead_letter(dead)),
        goka.persist(codec.Int64()),
    )
    runner = processor_factory(graph)
    wait_until(lambda: committed(goka_brokers, group, topic, 0) == 5)
    letters = sorted(read_all(goka_brokers, dead, 2, 2), key=lambda m: m.value())
    assert [(m.key(), m.value()) for m in letters] == [(b"a", b"x1"), (b"a", b"x2")]
    headers = dict(letters[0].headers())
    assert headers["origin"] == b"test"  # the message's own headers are kept
    assert headers["goka-source-topic"] == topic.encode()
    assert headers["goka-source-partition"] == b"0"
    assert headers["goka-source-offset"] == b"1"
    assert b"int64" in headers["goka-error"]
    assert dict(letters[1].headers())["goka-source-offset"] == b"3"
    [partition] = runner.processor.stats()["partitions"].values()
    assert partition["dead_lettered"] == 2
    assert runner.stop() is None


def test_missing_dead_letter_topic_is_refused_at_start(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("numbers", partitions=1)
    dead = unique("missing-dlq")
    graph = goka.define_group(
        unique("g"), goka.input(topic, codec.Int64(), count, on_decode_error=goka.dead_letter(dead))
    )
    error = processor_factory(graph).join(TIMEOUT)
    assert isinstance(error, ProcessorError)
    assert f"dead-letter topic {dead!r}" in str(error)


def test_deferred_commit_holds_the_offset_until_every_earlier_completion(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("jobs", partitions=1)
    group = unique("deferred")
    held: dict[int, Callable[..., None]] = {}

    def job(ctx: goka.Context, msg: str) -> None:
        done = ctx.defer_commit()
        if msg in ("hold", "fail"):
            held[ctx.offset] = done
        else:
            done()

    produce_raw(goka_brokers, topic, [(b"k", b"ok"), (b"k", b"hold"), (b"k", b"ok"), (b"k", b"ok")])
    runner = processor_factory(
        goka.define_group(
            group, goka.input(topic, codec.String(), job), goka.persist(codec.Int64())
        )
    )
    wait_until(lambda: processed(runner) == 4)
    wait_until(lambda: committed(goka_brokers, group, topic, 0) == 1)
    time.sleep(1.0)  # give a wrong commit of the later messages the chance to happen
    assert committed(goka_brokers, group, topic, 0) == 1
    held.pop(1)()
    wait_until(lambda: committed(goka_brokers, group, topic, 0) == 4)

    produce_raw(goka_brokers, topic, [(b"k", b"fail")])
    wait_until(lambda: 4 in held)
    held[4](RuntimeError("the job failed downstream"))
    error = runner.join(TIMEOUT)
    assert isinstance(error, ProcessorError)
    assert "the job failed downstream" in str(error)
    assert committed(goka_brokers, group, topic, 0) == 4


def test_ctx_fail_stops_the_processor_with_that_error(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("jobs", partitions=1)

    def picky(ctx: goka.Context, msg: str) -> None:
        with contextlib.suppress(Exception):  # swallowing the failure still fails
            ctx.fail(ValueError(f"cannot take {msg}"))

    produce_raw(goka_brokers, topic, [(b"k", b"this")])
    group = unique("picky")
    error = processor_factory(
        goka.define_group(group, goka.input(topic, codec.String(), picky))
    ).join(TIMEOUT)
    assert isinstance(error, ProcessorError)
    assert isinstance(error.__cause__, ValueError)
    assert "cannot take this" in str(error)
    assert committed(goka_brokers, group, topic, 0) < 0


def visit_graph(topic: str, group: str, delay: float = 0.0) -> goka.GroupGraph:
    def reset(ctx: goka.Context, meta: Any) -> None:
        time.sleep(delay)
        ctx.set_value(meta)

    return goka.define_group(
        group,
        goka.input(topic, codec.String(), count),
        goka.visitor("reset", reset),
        goka.persist(codec.Int64()),
    )


def test_visit_all_runs_over_every_key_through_the_changelog(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("clicks", partitions=3)
    group = unique("visited")
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for i in range(300):
            emitter.emit(f"user-{i % 120}", "click")
    runner = processor_factory(visit_graph(topic, group), batch_size=50)
    wait_until(lambda: processed(runner) == 300)
    with pytest.raises(goka.errors.ConfigError, match="no visitor 'nope'"):
        runner.processor.visit_all("nope")
    assert runner.processor.visit_all("reset", 42, timeout=TIMEOUT) == 120
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(TIMEOUT)
        values = dict(view.items())
    assert values == {f"user-{i}": 42 for i in range(120)}
    assert runner.stop() is None


def test_visit_all_is_aborted_by_a_rebalance(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    topic = topic_factory("clicks", partitions=4)
    group = unique("visited")
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for i in range(2000):
            emitter.emit(f"user-{i}", "click")
    graph = visit_graph(topic, group, delay=0.005)
    first = processor_factory(graph, batch_size=20)
    wait_until(lambda: processed(first) == 2000)
    outcome: list[BaseException | int] = []

    def visit() -> None:
        try:
            outcome.append(first.processor.visit_all("reset", 7, timeout=TIMEOUT))
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    visiting = threading.Thread(target=visit)
    visiting.start()
    time.sleep(0.5)
    second = processor_factory(graph, batch_size=20)  # joining the group forces a rebalance
    visiting.join(TIMEOUT)
    assert len(outcome) == 1
    assert isinstance(outcome[0], VisitAborted), outcome
    assert "rebalance" in str(outcome[0])
    assert first.stop() is None
    assert second.stop() is None
