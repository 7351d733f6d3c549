"""A batch whose changelog cannot be delivered because the brokers are down is dropped and
processed again once they are back: the processor neither stops nor loses the update (the
outage: see tests/support/outage.py)."""

from __future__ import annotations

import logging
import threading

import pytest

import goka
from goka import codec
from tests.conftest import FAST_GROUP_CONFIG, RunningProcessor, unique
from tests.support.outage import Outage
from tests.support.serving import wait_until

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    # after messages time out, librdkafka bumps the idempotent producer's epoch; Tansu
    # answers the next produce with PRODUCER_FENCED, which Kafka does not
    pytest.mark.kafka_only("the idempotent producer's epoch bump after a message timeout"),
]

TIMEOUT = 90.0
MESSAGE_TIMEOUT_S = 5.5  # the session timeout less one heartbeat interval (FAST_GROUP_CONFIG)


def test_a_batch_not_delivered_during_an_outage_is_processed_again_after_it(
    with_outage: tuple[str, Outage], caplog: pytest.LogCaptureFixture
) -> None:
    brokers, outage = with_outage
    topic, group = unique("clicks"), unique("outage")
    goka.TopicManager(brokers).ensure_stream(topic, 1)
    in_callback, released = threading.Event(), threading.Event()
    calls: list[str] = []

    def count(ctx: goka.Context, msg: str) -> None:
        calls.append(msg)
        if msg == "hold":  # the test takes the brokers down while this batch is processed
            in_callback.set()
            assert released.wait(TIMEOUT)
        ctx.set_value((ctx.value() or 0) + 1)

    graph = goka.define_group(
        group, goka.input(topic, codec.String(), count), goka.persist(codec.Int64())
    )
    runner = RunningProcessor(
        goka.Processor(brokers, graph, batch_size=1, extra_config=FAST_GROUP_CONFIG)
    )
    try:
        with goka.Emitter(brokers, topic, codec.String()) as emitter:
            emitter.emit_sync("user-1", "first")

        def stored() -> int:
            return int(runner.processor.stats()["partitions"].get(0, {}).get("messages_in", 0))

        wait_until(lambda: stored() == 1, TIMEOUT, "the first message stored")
        with goka.Emitter(brokers, topic, codec.String()) as emitter:
            emitter.emit_sync("user-1", "hold")
        assert in_callback.wait(TIMEOUT)
        with caplog.at_level(logging.WARNING, "goka.processor"), outage():
            released.set()  # its changelog now goes to brokers that are down
            dropped = runner.processor.stats
            wait_until(lambda: dropped()["dropped_batches"] >= 1, MESSAGE_TIMEOUT_S + 30,
                       "the undelivered batch dropped")  # fmt: skip
            assert runner.error is None and runner.processor.state == "running"
        assert any("dropped and processed again" in r.getMessage() for r in caplog.records)

        def table() -> dict[str, int]:
            with goka.View(brokers, goka.group_table(group), codec.Int64()) as view:
                assert view.wait_running(TIMEOUT)
                return dict(view.items())

        wait_until(lambda: table() == {"user-1": 2}, TIMEOUT, "the held message counted")
        assert runner.error is None and runner.processor.state == "running"
        assert calls.count("hold") >= 2  # processed again, not skipped
        assert runner.processor.stats()["partitions"][0]["input"][topic]["offset"] == 2
    finally:
        released.set()
        assert runner.stop() is None
