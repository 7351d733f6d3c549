"""A client's repeated log lines are folded: the first of a kind at once, the rest of the
window counted and reported with the next one let through."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from confluent_kafka import Producer

from goka import _log_repeats
from goka._config import client_config
from goka._log_repeats import Repeats
from tests.support.clock import Clock, install_clock

FAIL = "FAIL [rdkafka#producer-1] 127.0.0.1:1/bootstrap: refused (after {}ms in state CONNECT)"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch, _log_repeats)


def test_repeats_within_the_window_are_counted_and_reported_with_the_next_line(
    clock: Clock,
) -> None:
    repeats = Repeats(window=10.0)
    error = logging.ERROR
    assert repeats.admit(error, FAIL.format(0)) == FAIL.format(0)
    for ms in (1, 2, 2700):  # the same kind: only the duration differs
        clock.now += 1.0
        assert repeats.admit(error, FAIL.format(ms)) is None
    assert repeats.admit(error, "another line") == "another line"
    assert repeats.admit(logging.WARNING, FAIL.format(0)) == FAIL.format(0)  # another level
    clock.now += 7.0  # 10 s after the first was let through
    assert repeats.admit(error, FAIL.format(5)) == (
        f"{FAIL.format(5)} (3 more like it in the 10 s before)"
    )
    clock.now += 10.0
    assert repeats.admit(error, FAIL.format(5)) == FAIL.format(5)  # none left out since


def test_the_kind_seen_longest_ago_is_forgotten_first(clock: Clock) -> None:
    repeats = Repeats(window=10.0, kinds=2)
    assert [repeats.admit(logging.INFO, line) for line in ("a", "b", "a", "c")] == [
        "a", "b", None, "c"
    ]  # fmt: skip
    assert repeats.admit(logging.INFO, "a") is None  # "b" was forgotten, not "a"
    assert repeats.admit(logging.INFO, "b") == "b"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_client_that_cannot_connect_logs_each_failure_once_per_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """librdkafka tries a refused bootstrap address again and again (several times in 2 s with its
    backoff); its FAIL line and the error it reports are each logged once."""
    caplog.set_level(logging.INFO, logger="goka.kafka")
    port = closed_port()
    producer = Producer(client_config(f"127.0.0.1:{port}", None))
    until = time.monotonic() + 2.0
    while time.monotonic() < until:
        producer.poll(0.1)
    lines = [r.getMessage() for r in caplog.records if r.name == "goka.kafka"]
    refused = [line for line in lines if f"127.0.0.1:{port} failed: Connection refused" in line]
    assert len([line for line in refused if line.startswith("FAIL [rdkafka#")]) == 1, lines
    assert len([line for line in refused if line.startswith("kafka client error: ")]) == 1, lines
