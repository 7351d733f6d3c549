"""Broker faults under load (issue 12 item 6): on a 3-node cluster, the broker leading the
discovery topic's partition and a table partition is SIGKILLed under reads and writes and
restarted 20 s later; see tests/support/broker_faults.py for the deployment and the load.

What must hold: nothing crashes or exits; the membership never declares a live member dead
because the discovery topic was briefly unwritable; no view pod replays its partitions or
wipes a store; at least 99.9% of ANY reads succeed; every key ends counted at least as often
as its clicks were delivered (at-least-once), none missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from goka.localkafka import LocalKafka
from goka.pytest_plugin import local_kafka
from tests.support.broker_faults import KEYS, run_broker_faults

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalKafka]:
    with local_kafka(brokers=3) as kafka:
        yield kafka


def test_a_broker_killed_under_load_loses_nothing_and_fails_no_any_read(
    cluster: LocalKafka, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    run = run_broker_faults(cluster, tmp_path / "faults")
    for name in ("reads", "read_success", "leader_moved_s", "surplus", "stale_s"):
        record_property(name, getattr(run, name))
    figures = run.describe()
    print(figures)  # shown with -s
    assert run.exited == {}, figures
    assert run.member_losses == [], figures
    assert run.view_wiped_stores == {"view-0": 0, "view-1": 0}, figures
    assert run.view_rows_replayed == {"view-0": 0, "view-1": 0}, figures
    assert run.reads_during_outage > 0, figures
    assert run.read_success >= 0.999, figures
    assert run.missing_or_short == {}, figures
    assert set(run.counts) == set(run.delivered) == set(KEYS), figures
