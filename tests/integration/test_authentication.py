"""Credentials against a real Kafka with a SASL/PLAIN listener (``LocalKafka(sasl_users=)``):
with the right password a processor counts and a view reads; with a wrong one the topic
manager, a view and a processor end within their admin timeout with an error naming the
bootstrap servers, the brokers' refusal and the security settings, instead of retrying
forever, and so does a processor as an OS process, with a non-zero exit."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import goka
from goka import codec
from goka.errors import BrokerError, ProcessorError
from goka.localkafka import LocalKafka
from goka.pytest_plugin import local_kafka
from tests.conftest import FAST_GROUP_CONFIG, ProcessGroup, RunningProcessor, unique
from tests.support.clickcount import start_member
from tests.support.serving import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

USER, PASSWORD = "alice", "alice-secret"
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    with local_kafka(sasl_users={USER: PASSWORD}) as cluster:
        yield cluster


def sasl(password: str) -> dict[str, Any]:
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": USER,
        "sasl.password": password,
    }


def refused(servers: str) -> str:
    """The error of a login the brokers refused: the servers, and what the brokers said."""
    return (
        rf"the brokers of {re.escape(servers)} \(bootstrap\.servers\) refused the login \(.*SASL "
        r"authentication error: Authentication failed: Invalid username or password.*\); "
        r"check the credentials and the security settings"
    )


def count(ctx: goka.Context, _: str) -> None:
    ctx.set_value((ctx.value() or 0) + 1)


def test_the_right_password_processes_and_reads(kafka: LocalKafka) -> None:
    brokers, config = kafka.sasl_bootstrap, sasl(PASSWORD)
    topic, group = unique("clicks"), unique("counter")
    goka.TopicManager(brokers, extra_config=config).ensure_stream(topic, 2)
    graph = goka.define_group(
        group, goka.input(topic, codec.String(), count), goka.persist(codec.Int64())
    )
    runner = RunningProcessor(
        goka.Processor(brokers, graph, extra_config={**FAST_GROUP_CONFIG, **config})
    )
    try:
        with goka.Emitter(brokers, topic, codec.String(), extra_config=config) as emitter:
            for key in ("a", "b", "a"):
                emitter.emit_sync(key, "click")
        view = goka.View(brokers, goka.group_table(group), codec.Int64(), extra_config=config)
        with view:
            wait_until(lambda: [view.get("a"), view.get("b")] == [2, 1], TIMEOUT, "the counts")
    finally:
        runner.stop()


def test_a_wrong_password_ends_the_clients_naming_the_servers(kafka: LocalKafka) -> None:
    brokers, config = kafka.sasl_bootstrap, sasl("wrong")
    # at once, not after the timeout (which outlasts the test's own, 300 s)
    with pytest.raises(BrokerError, match=refused(brokers)):
        goka.TopicManager(brokers, timeout=900, extra_config=config).partitions("clicks")
    with pytest.raises(BrokerError, match=refused(brokers)):
        goka.View(brokers, "counter-table", codec.Int64(), extra_config=config)
    graph = goka.define_group(
        "refused", goka.input("clicks", codec.String(), count), goka.persist(codec.Int64())
    )
    processor = goka.Processor(brokers, graph, extra_config=config)
    with pytest.raises(ProcessorError, match="group 'refused' stopped: .*" + refused(brokers)):
        processor.run()
    assert processor.state == "failed"


def test_a_processor_process_with_a_wrong_password_exits(
    kafka: LocalKafka, processes: ProcessGroup, tmp_path: Path
) -> None:
    brokers = kafka.sasl_bootstrap
    wrong = [arg for key, value in sasl("wrong").items() for arg in ("--config", f"{key}={value}")]
    proc = start_member(
        processes, brokers, unique("clicks"), unique("refused"), tmp_path / "store", *wrong
    )
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the processor still runs after {TIMEOUT}s with a wrong password")
    assert proc.returncode != 0
    assert re.search(refused(brokers), err), err[-3000:]
