"""A whole-broker outage a test can start and end: on Kafka every node of the session's
cluster stops and starts again with its data; Tansu keeps its topics in memory only, so its
outage is played by a proxy in front of a dev broker of the test's own that drops every
connection and refuses new ones."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from goka._localproc import free_loopback_port
from goka.devbroker import DevBroker
from goka.pytest_plugin import TestBroker
from tests.support.proxy import TcpProxy

__all__ = ["Outage", "with_outage"]

Outage = Callable[[], AbstractContextManager[None]]


@contextlib.contextmanager
def _outage(down: Callable[[], None], up: Callable[[], None]) -> Iterator[None]:
    down()
    try:
        yield
    finally:
        up()


@pytest.fixture
def with_outage(goka_broker: TestBroker) -> Iterator[tuple[str, Outage]]:
    """The bootstrap address, and a context manager during which the broker is down."""
    kafka = goka_broker.kafka
    if kafka is not None:
        yield goka_broker.bootstrap, lambda: _outage(kafka.stop_all, kafka.start_all)
    elif goka_broker.kind == "tansu":
        port = free_loopback_port()
        with (
            TcpProxy(port) as proxy,
            DevBroker(port=port, advertise=f"127.0.0.1:{proxy.port}") as b,
        ):
            yield b.bootstrap, lambda: _outage(proxy.cut, proxy.restore)
    else:
        pytest.skip("the test cannot stop an external broker (GOKA_TEST_BROKERS)")
