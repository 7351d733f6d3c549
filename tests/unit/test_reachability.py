"""Reachability from librdkafka's statistics: unreachable while no cluster broker is UP, and
once the statistics are stale (a client that is not polled hears nothing)."""

from __future__ import annotations

import json

import pytest

from goka import _reachability
from goka._reachability import STALE_AFTER_S, Reachability
from tests.support.clock import Clock, install_clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch, _reachability)


def report(reachability: Reachability, *states: str) -> None:
    brokers = {f"b{i}": {"nodeid": i, "state": s} for i, s in enumerate(states)}
    brokers["bootstrap"] = {"nodeid": -1, "state": "UP"}  # bootstrap handles do not count
    reachability._on_statistics(json.dumps({"brokers": brokers}))


def test_unreachable_from_the_first_report_without_a_broker_up(clock: Clock) -> None:
    reachability = Reachability()
    assert reachability.unreachable_for() == 0.0  # nothing heard yet
    report(reachability, "UP", "DOWN")
    clock.now += 1
    assert reachability.unreachable_for() == 0.0
    report(reachability, "DOWN", "CONNECT")
    clock.now += 1
    report(reachability, "DOWN", "DOWN")
    clock.now += 0.5
    assert reachability.unreachable_for() == 1.5
    report(reachability, "DOWN", "UP")
    assert reachability.unreachable_for() == 0.0


def test_stale_statistics_count_as_unreachable_since_the_report_that_did_not_come(
    clock: Clock,
) -> None:
    reachability = Reachability()
    report(reachability, "UP")
    clock.now += STALE_AFTER_S
    assert reachability.unreachable_for() == 0.0  # five reports late: still trusted
    clock.now += 2
    assert reachability.unreachable_for() == STALE_AFTER_S + 1
    report(reachability, "UP")  # polled again
    assert reachability.unreachable_for() == 0.0


def test_a_stale_outage_counts_from_its_start(clock: Clock) -> None:
    reachability = Reachability()
    report(reachability, "DOWN")
    clock.now += 10
    assert reachability.unreachable_for() == 10.0
