"""The user-status example as separate CLI processes on the broker: click-count, then
user-status joining its table, each status stored with the clicks at the time of the update.

The status service starts once every click is counted; a processor replays its joined
table partitions before processing, so the joined counts are exact.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import goka
from goka import codec
from tests.conftest import ProcessGroup, unique

pytestmark = [pytest.mark.broker, pytest.mark.slow]

GROUP_CONFIG = ["--config", "session.timeout.ms=6000", "--config", "heartbeat.interval.ms=500"]
USERS = 6
CLICKS_PER_USER = 100
STATUSES = ["online", "away", "busy"]


def cli(*args: str) -> list[str]:
    return ["-m", "examples.user_status", *args]


def run(processes: ProcessGroup, *args: str, timeout: float = 120.0) -> str:
    proc = processes.start(*cli(*args))
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def wait_for_clicks(brokers: str, group: str, expected: dict[str, int]) -> None:
    table = goka.group_table(group)
    goka.TopicManager(brokers).wait_for(table, 60)
    with goka.View(brokers, table, codec.Int64()) as view:
        assert view.wait_running(60)
        deadline = time.monotonic() + 60
        while dict(view.items()) != expected:
            assert time.monotonic() < deadline, f"clicks counted: {dict(view.items())}"
            time.sleep(0.1)


def stop(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    stopped: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert stopped["event"] == "stopped"
    return stopped


def test_statuses_are_joined_with_the_click_counts(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    clicks = topic_factory("clicks", partitions=4)
    updates = topic_factory("status-updates", partitions=4)  # co-partitioned with the clicks
    clicks_group, status_group = unique("clicks-counter"), unique("user-status")
    run(
        processes,
        "emit-clicks",
        "--brokers",
        goka_brokers,
        "--topic",
        clicks,
        "--messages",
        str(USERS * CLICKS_PER_USER),
        "--keys",
        str(USERS),
    )
    common = ["--brokers", goka_brokers, "--clicks-topic", clicks, "--clicks-group", clicks_group]
    clicks_service = processes.start(
        *cli("process", *common, "--service", "clicks", "--storage", str(tmp_path / "clicks")),
        *GROUP_CONFIG,
    )
    expected_clicks = {f"user-{i}": CLICKS_PER_USER for i in range(USERS)}
    wait_for_clicks(goka_brokers, clicks_group, expected_clicks)

    status_service = processes.start(
        *cli("process", *common, "--service", "status", "--storage", str(tmp_path / "status")),
        *["--status-topic", updates, "--status-group", status_group, *GROUP_CONFIG],
    )
    statuses = {f"user-{i}": STATUSES[i % len(STATUSES)] for i in range(USERS)}
    pairs = [f"{user}={status}" for user, status in statuses.items()]
    run(processes, "emit-status", "--brokers", goka_brokers, "--topic", updates, *pairs)
    out = run(
        processes,
        "view",
        "--brokers",
        goka_brokers,
        "--group",
        status_group,
        "--until-users",
        str(USERS),
        "--json",
        "--timeout",
        "90",
    )
    assert json.loads(out) == {
        user: {"status": status, "clicks": CLICKS_PER_USER} for user, status in statuses.items()
    }

    assert list(stop(status_service)["groups"]) == [status_group]
    assert list(stop(clicks_service)["groups"]) == [clicks_group]


def test_demo_prints_the_joined_table_and_exits_0(
    goka_brokers: str, processes: ProcessGroup
) -> None:
    demo = ["demo", "--brokers", goka_brokers, "--messages", "400", "--keys", "4"]
    out = run(processes, *demo, timeout=240)
    lines = out.splitlines()
    assert lines[-1] == "demo finished"
    rows = [line.split() for line in lines if line.split()[:1] == ["user-0"]]
    assert rows[-1] == ["user-0", "online", "100"]  # the status row, after the click counts
