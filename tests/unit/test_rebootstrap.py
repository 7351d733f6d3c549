"""goka._rebootstrap touches a client's librdkafka handle only when the handle found is that
client's (its name is the one in the statistics), and only when no broker is left."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from confluent_kafka import Producer

from goka._rebootstrap import Rebootstrap

SERVERS = "127.0.0.1:1"
NO_BROKER = {"GroupCoordinator": {"source": "logical"}}


def client_and_name() -> tuple[Producer, str]:
    """A producer (never connected: nothing listens on port 1) and its librdkafka name, from
    its first statistics report."""
    reports: list[dict[str, Any]] = []
    producer = Producer(
        {
            "bootstrap.servers": SERVERS,
            "log_level": 0,
            "statistics.interval.ms": 50,
            "stats_cb": lambda document: reports.append(json.loads(document)),
        }
    )
    deadline = time.monotonic() + 10
    while not reports and time.monotonic() < deadline:
        producer.poll(0.05)
    assert reports, "no statistics report within 10 s"
    return producer, str(reports[0]["name"])


def test_a_client_that_knows_no_broker_gets_its_bootstrap_servers_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer, name = client_and_name()
    rebootstrap = Rebootstrap()
    rebootstrap.attach(producer, SERVERS)
    rebootstrap.check(
        {"name": name, "brokers": {"127.0.0.1:1/bootstrap": {"source": "configured"}}}
    )
    assert rebootstrap.added == 0  # a bootstrap server is still known
    rebootstrap.check({"name": name, "brokers": NO_BROKER})
    assert rebootstrap.added == 1
    rebootstrap.check({"name": name, "brokers": NO_BROKER})
    assert rebootstrap.added == 1  # at most once per 5 s
    assert f"kafka client {name} knew no broker any more" in caplog.text


def test_a_handle_whose_name_is_not_the_clients_is_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="goka.kafka")
    producer, name = client_and_name()
    rebootstrap = Rebootstrap()
    rebootstrap.attach(producer, SERVERS)
    rebootstrap.check({"name": f"{name}-another", "brokers": NO_BROKER})
    assert rebootstrap.added == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"kafka client {name}-another knows no broker and cannot be given its bootstrap "
        "servers again (the confluent-kafka client layout is not the one expected): it stays "
        "cut off from the cluster; restart the process"
    ]
