"""Exactly-once processing (``guarantee="exactly_once"``): each batch is one Kafka
transaction; read_committed readers see all of a batch or nothing of it."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

import goka
from goka import codec
from goka._kafka_errors import high_watermark
from goka.errors import ConfigError, ProcessorError
from tests.conftest import ProcessGroup, RunningProcessor, unique
from tests.integration.test_processor_errors import committed
from tests.support.serving import Deployment, free_port, scrape, wait_until
from tests.support.topics import read_topic
from viewsvc.client import Client
from viewsvc.server.metrics import Metrics

pytestmark = [
    pytest.mark.broker,
    pytest.mark.kafka_only("Tansu shows read_committed readers aborted transactions"),
]

TIMEOUT = 60.0
EXACTLY_ONCE = {"guarantee": "exactly_once"}


def ends(brokers: str, topic: str, partitions: int) -> dict[int, int]:
    """The end offset of each partition, as a read_committed consumer sees it."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": unique("ends")})
    try:
        return {
            p: high_watermark(consumer, TopicPartition(topic, p), TIMEOUT)
            for p in range(partitions)
        }
    finally:
        consumer.close()


def count(ctx: goka.Context, msg: str) -> None:
    ctx.set_value((ctx.value() or 0) + 1)


def test_counts_are_exact_and_views_see_the_committed_end(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    clicks = topic_factory("clicks", partitions=3)
    group = unique("eos-count")
    table = goka.group_table(group)
    emitted = collections.Counter(f"user-{i % 30}" for i in range(500))
    with goka.Emitter(goka_brokers, clicks, codec.String()) as emitter:
        for i in range(500):
            emitter.emit(f"user-{i % 30}", "click")
    graph = goka.define_group(
        group, goka.input(clicks, codec.String(), count), goka.persist(codec.Int64())
    )
    runner = processor_factory(graph, batch_size=50, **EXACTLY_ONCE)

    def processed() -> bool:
        partitions = runner.processor.stats()["partitions"]
        return sum(p["messages_in"] for p in partitions.values()) == 500

    wait_until(processed, TIMEOUT, "the processor processes every click")
    stats = runner.processor.stats()
    assert stats["guarantee"] == "exactly_once"
    assert stats["transactions"] >= 500 // 50 // 3 and stats["aborted_transactions"] == 0
    metrics, port = Metrics(), free_port()
    metrics.watch_processor(runner.processor)
    metrics.serve(port, "127.0.0.1")
    try:
        samples = scrape(port)
    finally:
        metrics.close()
    assert samples[("goka_processor_guarantee", (("group", group), ("guarantee", "exactly_once")))]
    transactions = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "goka_processor_transactions_total"
    }
    committed_transactions = runner.processor.stats()["transactions"]
    assert transactions == {
        (("group", group), ("outcome", "aborted")): 0,
        (("group", group), ("outcome", "committed")): committed_transactions,
    }
    with goka.View(goka_brokers, table, codec.Int64()) as view:
        assert view.wait_running(TIMEOUT)
        assert dict(view.items()) == dict(emitted)
        # the end of each table partition is past the last transaction's marker: the view's
        # copy has applied everything up to it, so it has no lag
        held = view.held()
        assert {p: h.applied_offset for p, h in held.items()} == ends(goka_brokers, table, 3)
        assert {p: h.lag for p, h in held.items()} == dict.fromkeys(range(3), 0)
    assert {p: committed(goka_brokers, group, clicks, p) for p in range(3)} == {
        p: runner.processor.stats()["partitions"][p]["input"][clicks]["offset"] for p in range(3)
    }
    assert runner.stop() is None


def test_a_callback_that_raises_leaves_nothing_of_its_batch_visible(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    clicks = topic_factory("clicks", partitions=1)
    alerts = topic_factory("alerts", partitions=1)
    group = unique("eos-fail")

    def count_and_alert(ctx: goka.Context, msg: str) -> None:
        if msg == "boom":
            # the emits before are out by now (linger.ms is 5): the broker
            # has them, in the transaction that the failure aborts
            time.sleep(1.0)
            raise RuntimeError("the callback gave up")
        ctx.set_value((ctx.value() or 0) + 1)
        ctx.emit(alerts, ctx.key, msg)

    graph = goka.define_group(
        group,
        goka.input(clicks, codec.String(), count_and_alert),
        goka.output(alerts, codec.String()),
        goka.persist(codec.Int64()),
    )
    with goka.Emitter(goka_brokers, clicks, codec.String()) as emitter:
        for i in range(10):
            emitter.emit_sync("k", f"first-{i}")
    runner = processor_factory(graph, **EXACTLY_ONCE)
    goka.TopicManager(goka_brokers).wait_for(goka.group_table(group), TIMEOUT)

    def counted() -> bool:
        with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
            return view.wait_running(TIMEOUT) and view.get("k") == 10

    wait_until(counted, TIMEOUT, "the first batch is committed")
    # one transaction, so that they become visible to the processor at once: one batch
    tx = goka.Emitter(goka_brokers, clicks, codec.String(), transactional_id=unique("t"))
    with tx, tx.transaction():
        for value in ["second-0", "second-1", "boom"]:
            tx.emit("k", value)
    error = runner.join(TIMEOUT)
    assert isinstance(error, ProcessorError) and "the callback gave up" in str(error)

    table = goka.group_table(group)
    visible = [m.value() for m in read_topic(goka_brokers, alerts, 1)]  # read_committed
    assert visible == [f"first-{i}".encode() for i in range(10)]
    assert [m.value() for m in read_topic(goka_brokers, table, 1)][-1] == b"10"
    # the batch's records were written, in a transaction that was aborted
    written = [m.value() for m in read_topic(goka_brokers, alerts, 1, isolation="read_uncommitted")]
    assert written[10:] == [b"second-0", b"second-1"]
    assert committed(goka_brokers, group, clicks, 0) == 10


def test_defer_commit_is_refused_under_exactly_once(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
) -> None:
    clicks = topic_factory("clicks", partitions=1)

    def deferring(ctx: goka.Context, msg: str) -> None:
        ctx.defer_commit()

    graph = goka.define_group(unique("eos-defer"), goka.input(clicks, codec.String(), deferring))
    with goka.Emitter(goka_brokers, clicks, codec.String()) as emitter:
        emitter.emit_sync("k", "v")
    error = processor_factory(graph, **EXACTLY_ONCE).join(TIMEOUT)
    assert isinstance(error, ProcessorError)
    assert "ctx.defer_commit() is not available with guarantee='exactly_once'" in str(error)


def test_exactly_once_settings_are_checked(goka_brokers: str) -> None:
    graph = goka.define_group(
        "g", goka.input("t", codec.String(), count), goka.persist(codec.Int64())
    )
    with pytest.raises(ConfigError, match="guarantee must be 'at_least_once'"):
        goka.Processor(goka_brokers, graph, guarantee="exactly-once")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="transactional.id would apply to every client"):
        goka.Processor(goka_brokers, graph, extra_config={"transactional.id": "x"}, **EXACTLY_ONCE)
    with pytest.raises(ConfigError, match="exactly_once needs read_committed"):
        goka.Processor(
            goka_brokers,
            graph,
            extra_config={"isolation.level": "read_uncommitted"},
            **EXACTLY_ONCE,
        )


def test_a_transactional_emitter_makes_its_messages_visible_at_the_commit_or_never(
    goka_brokers: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("orders", partitions=2)
    with goka.Emitter(
        goka_brokers, topic, codec.String(), transactional_id=unique("orders")
    ) as emitter:
        with pytest.raises(ConfigError, match="emit inside 'with emitter.transaction\\(\\):'"):
            emitter.emit("k", "outside")
        with emitter.transaction():
            futures = [emitter.emit(f"k{i}", f"committed-{i}") for i in range(4)]
        offsets = {(f.result(TIMEOUT).partition, f.result(TIMEOUT).offset) for f in futures}
        emitter.begin()
        emitter.emit("k0", "aborted-0")
        emitter.flush()  # at the broker, in a transaction that is then aborted
        emitter.abort()
        with pytest.raises(RuntimeError, match="the caller gave up"), emitter.transaction():
            emitter.emit("k1", "aborted-1")
            emitter.flush()
            raise RuntimeError("the caller gave up")
        with pytest.raises(ConfigError, match="no transaction is open"):
            emitter.commit()
        emitter.begin()
        emitter.emit("k2", "left-open")
        emitter.flush()
    # close() aborted the open transaction
    committed_values = read_topic(goka_brokers, topic, 2)
    assert sorted(m.value() for m in committed_values) == [
        f"committed-{i}".encode() for i in range(4)
    ]
    assert {(m.partition(), m.offset()) for m in committed_values} == offsets
    everything = read_topic(goka_brokers, topic, 2, isolation="read_uncommitted")
    assert sorted(m.value() for m in everything) == sorted(
        [f"committed-{i}".encode() for i in range(4)] + [b"aborted-0", b"aborted-1", b"left-open"]
    )


def test_transactional_emitter_settings_are_checked(
    goka_brokers: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("orders", partitions=1)
    with pytest.raises(ConfigError, match="transactional_id must be a non-empty string"):
        goka.Emitter(goka_brokers, topic, codec.String(), transactional_id="")
    plain = goka.Emitter(goka_brokers, topic, codec.String())
    with plain, pytest.raises(ConfigError, match="begin\\(\\) needs Emitter"):
        plain.begin()


def test_read_your_writes_with_the_offsets_of_a_committed_transaction(
    goka_brokers: str, tmp_path: Path
) -> None:
    deployment = Deployment(goka_brokers, ProcessGroup(), tmp_path, partitions=3)
    try:
        deployment.start_processors(2, "--guarantee", "exactly_once")
        wait_until(lambda: len(deployment.active_owners()) == 3, TIMEOUT, "every partition running")
        deployment.start_view_and_router()
        deployment.wait_settled(TIMEOUT)
        emitter = goka.Emitter(
            goka_brokers, deployment.topic, codec.String(), transactional_id=unique("clicks")
        )
        with Client([deployment.nodes["router"].endpoint], timeout=TIMEOUT) as client, emitter:
            assert client.wait_ready(TIMEOUT)
            for round_ in range(1, 6):
                with emitter.transaction():
                    futures = [emitter.emit(f"user-{i}", "click") for i in range(4)]
                written = [future.result(TIMEOUT) for future in futures]
                for i, delivery in enumerate(written):
                    # the offset of a message in a committed transaction: answered by the
                    # active owner once it has processed it, never before
                    result = client.get(
                        deployment.table,
                        f"user-{i}".encode(),
                        consistency="active",
                        min_offsets={delivery.partition: delivery.offset},
                        min_offsets_topic=deployment.topic,
                    )
                    assert (result.value, result.partition) == (
                        str(round_).encode(),
                        delivery.partition,
                    )
    finally:
        deployment.close()
