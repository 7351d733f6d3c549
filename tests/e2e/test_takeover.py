"""Takeover by the standby: the owner of partition 0 among three members is SIGKILLed under
clicks and ACTIVE reads (tests/support/takeover.py). Every partition that changes owner goes
to the member that held its standby (placed where the ``range`` assignor moves it), which
replays only what came after its standby's last record, and its ACTIVE reads succeed again.
How long that takes is measured by bench/takeover.py, not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.takeover import run_takeover

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_a_killed_owners_partitions_go_to_their_standbys_and_replay_only_the_delta(
    goka_brokers: str, tmp_path: Path
) -> None:
    run = run_takeover(goka_brokers, tmp_path)
    print(f"\n{run.describe()}")
    assert {m.owner for m in run.moved} >= {run.killed}, run
    assert [(m.partition, m.heir) for m in run.moved] == [
        (m.partition, m.standby) for m in run.moved
    ], f"partitions moved past their standbys: {run}"
    for moved in run.moved:
        assert moved.table_rows >= 500, moved  # enough for "only the delta" to mean something
        assert moved.replayed < moved.table_rows / 10, moved
