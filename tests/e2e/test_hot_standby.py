"""Hot standby across processes: when the owner of partitions is SIGKILLed, the standby
instance takes them over replaying only the delta, not the whole table."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from goka import codec
from tests.conftest import ProcessGroup, unique
from tests.support.clickcount import partition_stats, running, start_member

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TIMEOUT = 90.0


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
        start_member(
            processes,
            goka_brokers,
            topic,
            group,
            tmp_path / f"store-{i}",
            "--hot-standby",
            stats_file=stats[i],
        )  # fmt: skip
        for i in range(2)
    ]

    def both_run_two() -> bool:
        held = [running(path) for path in stats]
        return all(held) and len(held[0] | held[1]) == 4

    wait_for(both_run_two, "both members to run partitions")
    keys = [f"user-{i % 3000}" for i in range(15_000)]
    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for key in keys:
            emitter.emit(key, "click")

    def total() -> int:
        return sum(
            s.get("messages_in", 0) for path in stats for s in partition_stats(path).values()
        )

    wait_for(lambda: total() == len(keys), "every click to be processed")
    owned_by_a = running(stats[0])

    def standby_caught_up() -> bool:
        a, b = partition_stats(stats[0]), partition_stats(stats[1])
        return all(
            b[p]["state"] == "standby" and b[p]["table"]["offset"] == a[p]["table"]["offset"]
            for p in owned_by_a
        )

    wait_for(standby_caught_up, "the standby to follow the owner's table partitions")
    table_records = sum(partition_stats(stats[1])[p]["recovered_records"]
                        for p in owned_by_a)  # fmt: skip
    assert table_records >= 1000

    members[0].send_signal(signal.SIGKILL)
    members[0].wait(TIMEOUT)
    wait_for(lambda: running(stats[1]) == {"0", "1", "2", "3"}, "the survivor to take over")
    taken_over = partition_stats(stats[1])
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
