"""A broker outage does not kill a processor: its lookup view reconnects with backoff (the
outage: see tests/support/outage.py)."""

from __future__ import annotations

import time

import pytest

import goka
from goka import codec
from tests.conftest import FAST_GROUP_CONFIG, RunningProcessor, unique
from tests.support.outage import Outage

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TIMEOUT = 60.0


def wait_for(brokers: str, table: str, expected: dict[str, str]) -> None:
    goka.TopicManager(brokers).wait_for(table, TIMEOUT)
    with goka.View(brokers, table, codec.String()) as view:
        assert view.wait_running(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while dict(view.items()) != expected:
            assert time.monotonic() < deadline, dict(view.items())
            time.sleep(0.1)


def test_processor_with_lookup_survives_a_broker_outage(
    with_outage: tuple[str, Outage], caplog: pytest.LogCaptureFixture
) -> None:
    brokers, outage = with_outage
    manager = goka.TopicManager(brokers)
    names_topic, requests_topic = unique("names"), unique("requests")
    manager.ensure_stream(names_topic, 2)
    manager.ensure_stream(requests_topic, 2)
    names_group, greeter_group = unique("names"), unique("greeter")
    names_table = goka.group_table(names_group)

    def set_name(ctx: goka.Context, name: str) -> None:
        ctx.set_value(name)

    def greet(ctx: goka.Context, user: str) -> None:
        ctx.set_value(f"hello {ctx.lookup(names_table, user)}")

    names = goka.define_group(
        names_group, goka.input(names_topic, codec.String(), set_name), goka.persist(codec.String())
    )
    greeter = goka.define_group(
        greeter_group,
        goka.input(requests_topic, codec.String(), greet),
        goka.lookup(names_table, codec.String()),
        goka.persist(codec.String()),
    )
    with goka.Emitter(brokers, names_topic, codec.String()) as emitter:
        emitter.emit_sync("u1", "ann")
    runners = [RunningProcessor(goka.Processor(brokers, names, extra_config=FAST_GROUP_CONFIG))]
    try:
        wait_for(brokers, names_table, {"u1": "ann"})  # the looked-up table exists from here
        runners.append(
            RunningProcessor(goka.Processor(brokers, greeter, extra_config=FAST_GROUP_CONFIG))
        )
        with goka.Emitter(brokers, requests_topic, codec.String()) as emitter:
            emitter.emit_sync("r1", "u1")
        wait_for(brokers, goka.group_table(greeter_group), {"r1": "hello ann"})

        caplog.clear()
        with outage():
            time.sleep(4.0)  # every connection dropped and refused for a while
            assert [r.error for r in runners] == [None, None]
        assert any("kafka client error" in r.getMessage() for r in caplog.records), (
            "the clients did not notice the outage"
        )

        with goka.Emitter(brokers, names_topic, codec.String()) as emitter:
            emitter.emit_sync("u2", "bob")
        wait_for(brokers, names_table, {"u1": "ann", "u2": "bob"})
        deadline = time.monotonic() + TIMEOUT  # the lookup view follows the change
        while runners[1].processor.stats()["lookups"] != {names_table: "running"}:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        lookup_view = runners[1].processor._lookups[names_table]
        while lookup_view.get("u2") != "bob":  # lookups are eventually consistent
            assert time.monotonic() < deadline, "the lookup view did not see u2 after the outage"
            time.sleep(0.1)
        with goka.Emitter(brokers, requests_topic, codec.String()) as emitter:
            emitter.emit_sync("r2", "u2")
        wait_for(brokers, goka.group_table(greeter_group), {"r1": "hello ann", "r2": "hello bob"})
        assert [r.error for r in runners] == [None, None]
    finally:
        for runner in runners:
            runner.stop()
    assert [r.error for r in runners] == [None, None]
