"""Brokers that cannot be reached at start: processors, views and the topic manager end
with an error naming the bootstrap servers, within their admin timeout, instead of waiting
forever (nothing listens on the port: no broker is involved)."""

from __future__ import annotations

import re
import socket

import pytest

import goka
from goka import codec
from goka.errors import BrokerError, ProcessorError


@pytest.fixture
def nowhere() -> str:
    """A loopback address nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


def unreachable(servers: str, timeout: str) -> str:
    return (
        rf"no broker of {re.escape(servers)} \(bootstrap\.servers\) answered within "
        rf"{timeout}s \(.+\); check the addresses, that Kafka runs there, and the security "
        r"settings"
    )


def test_the_topic_manager_names_the_servers(nowhere: str) -> None:
    manager = goka.TopicManager(nowhere, timeout=1.5)
    with pytest.raises(
        BrokerError, match="cannot read metadata of topic 'clicks': " + unreachable(nowhere, "1.5")
    ):
        manager.partitions("clicks")


def test_a_processor_stops_naming_the_servers(nowhere: str) -> None:
    graph = goka.define_group(
        "unreachable",
        goka.input("clicks", codec.String(), lambda ctx, msg: None),
        goka.persist(codec.Int64()),
    )
    processor = goka.Processor(nowhere, graph)
    with pytest.raises(
        ProcessorError, match="group 'unreachable' stopped: .*" + unreachable(nowhere, "15")
    ):
        processor.run()
    assert processor.state == "failed"


def test_a_view_refuses_to_start_naming_the_servers(nowhere: str) -> None:
    with pytest.raises(BrokerError, match=unreachable(nowhere, "15")):
        goka.View(nowhere, "clicks-counter-table", codec.Int64())  # reads the partition count
