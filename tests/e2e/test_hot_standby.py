"""Hot standby across processes: when the owner of partitions is SIGKILLed, the standby
instance takes them over replaying only the delta, not the whole table."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import goka
from goka import codec
from tests.conftest import ProcessGroup, unique

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TIMEOUT = 90.0
GROUP_CONFIG = ["--config", "session.timeout.ms=6000", "--config", "heartbeat.interval.ms=500"]


def read_stats(path: Path) -> dict[str, Any]:
    try:
        stats: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"partitions": {}}
    return stats


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_standby_takes_over_replaying_only_the_delta(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    topic = topic_factory("clicks", partitions=4)
    group = unique("standby")
    stats = [tmp_path / "a.json", tmp_path / "b.json"]
    members = [
        processes.start(
            "-m",
            "examples.clickcount",
            "process",
            "--brokers",
            goka_brokers,
            "--topic",
            topic,
            "--group",
            group,
            "--storage",
            str(tmp_path / f"store-{i}"),
            "--hot-standby",
            "--stats-file",
            str(stats[i]),
            "--stats-interval",
            "0.2",
            *GROUP_CONFIG,
        )  # fmt: skip
        for i in range(2)
    ]

    def running(i: int) -> set[str]:
        parts = read_stats(stats[i])["partitions"]
        return {p for p, s in parts.items() if s["state"] == "running"}

    wait_for(lambda: len(running(0)) + len(running(1)) == 4 and running(0) and running(1),
             "both members to run two partitions")  # fmt: skip
    keys = [f"user-{i % 3000}" for i in range(15_000)]
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for key in keys:
            emitter.emit(key, "click")

    def total() -> int:
        return sum(
            s.get("messages_in", 0)
            for path in stats
            for s in read_stats(path)["partitions"].values()
        )

    wait_for(lambda: total() == len(keys), "every click to be processed")
    owned_by_a = running(0)

    def standby_caught_up() -> bool:
        a, b = read_stats(stats[0])["partitions"], read_stats(stats[1])["partitions"]
        return all(
            b[p]["state"] == "standby" and b[p]["table"]["offset"] == a[p]["table"]["offset"]
            for p in owned_by_a
        )

    wait_for(standby_caught_up, "the standby to follow the owner's table partitions")
    table_records = sum(read_stats(stats[1])["partitions"][p]["recovered_records"]
                        for p in owned_by_a)  # fmt: skip
    assert table_records >= 1000

    members[0].send_signal(signal.SIGKILL)
    members[0].wait(TIMEOUT)
    wait_for(lambda: running(1) == {"0", "1", "2", "3"}, "the survivor to take over")
    taken_over = read_stats(stats[1])["partitions"]
    replayed = sum(taken_over[p]["recovered_records"] for p in owned_by_a)
    assert replayed < table_records / 10, (replayed, table_records)

    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for key in keys[:100]:
            emitter.emit(key, "click")
    goka.TopicManager(goka_brokers).wait_for(goka.group_table(group), TIMEOUT)
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(TIMEOUT)
        wait_for(lambda: sum(v for _, v in view.items()) >= len(keys) + 100, "the new clicks")
        counts = dict(view.items())
    assert all(counts[f"user-{i}"] >= (6 if i < 100 else 5) for i in range(3000))

    members[1].send_signal(signal.SIGTERM)
    out, err = members[1].communicate(timeout=TIMEOUT)
    assert members[1].returncode == 0, err
