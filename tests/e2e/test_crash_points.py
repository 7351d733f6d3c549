"""A processor crashed (os._exit, see goka/_crash_points.py) at each step of the commit
protocol loses nothing: after a restart every key's count is at least what was emitted
(exactly it under exactly-once), the restarted instance processes exactly the messages after
the last commit, and a clean restart after that replays no table record and processes
nothing."""

from __future__ import annotations

import collections
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from goka import codec
from goka._crash_points import CRASH_EXIT_CODE, ENV, POINTS
from goka.partitioner import murmur2
from tests.conftest import ProcessGroup, unique
from tests.integration.test_processor_errors import committed
from tests.support.clickcount import partition_stats
from tests.support.counting_member import start_member
from tests.support.serving import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 2
MESSAGES = 600
TIMEOUT = 90.0


@pytest.mark.parametrize("point", [p for p in POINTS if p != "after_commit"])
def test_a_restart_after_a_crash_at_each_step_loses_nothing(
    point: str,
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    crash_and_restart(point, "at_least_once", goka_brokers, topic_factory, processes, tmp_path)


@pytest.mark.kafka_only("Tansu shows read_committed readers aborted transactions")
# the transaction produced but not committed; committed, LMDB not written
@pytest.mark.parametrize("point", ["after_changelog_produced", "after_commit"])
def test_exactly_once_counts_exactly_after_a_crash_in_the_transaction(
    point: str,
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    crash_and_restart(point, "exactly_once", goka_brokers, topic_factory, processes, tmp_path)


def crash_and_restart(
    point: str,
    guarantee: str,
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    """Crash at ``point`` mid-stream, restart, check what the restart processed and what the
    table holds (exactly the clicks under exactly-once), then restart cleanly."""
    clicks = topic_factory("clicks", partitions=PARTITIONS)
    group = unique("crash")
    stats = tmp_path / "stats.json"
    emitted: collections.Counter[str] = collections.Counter()
    high = dict.fromkeys(range(PARTITIONS), 0)  # the end offset of each partition
    with goka.Emitter(goka_brokers, clicks, codec.String()) as emitter:
        for i in range(MESSAGES):
            key = f"user-{i % 20}"
            emitter.emit(key, "x")
            emitted[key] += 1
            high[murmur2(key.encode(), PARTITIONS)] += 1

    def start(env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        stats.unlink(missing_ok=True)
        return start_member(processes, goka_brokers, group, [clicks], tmp_path / "store",
                            stats, guarantee=guarantee, env=env)  # fmt: skip

    crashing = start({ENV: f"{point}:3"})  # batches of 100: the third batch, mid-stream
    assert crashing.wait(TIMEOUT) == CRASH_EXIT_CODE, crashing.communicate()[1][-2000:]
    assert f"crashing at {point}" in crashing.communicate()[1]
    at_crash = {  # once the transaction the crash left open is aborted (exactly-once)
        p: max(committed(goka_brokers, group, clicks, p, TIMEOUT), 0) for p in range(PARTITIONS)
    }
    assert sum(at_crash.values()) < MESSAGES, "the crash came after everything was committed"

    def done() -> bool:
        partitions = partition_stats(stats)
        return len(partitions) == PARTITIONS and all(
            s["state"] == "running" and s["input"].get(clicks, {}).get("offset") == high[int(p)]
            for p, s in partitions.items()
        )

    restarted = start()
    wait_until(done, TIMEOUT, "the restarted member processes everything")
    replayed = {int(p): s["messages_in"] for p, s in partition_stats(stats).items()}
    assert replayed == {p: high[p] - at_crash[p] for p in range(PARTITIONS)}

    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(TIMEOUT)
        counts = dict(view.items())
    assert sorted(counts) == sorted(emitted)
    short = {key: (counts[key], n) for key, n in emitted.items() if counts[key] < n}
    assert short == {}, f"counts below what was emitted: {short}"
    if guarantee == "exactly_once":
        assert counts == dict(emitted)

    restarted.send_signal(signal.SIGTERM)
    assert restarted.wait(TIMEOUT) == 0, restarted.communicate()[1][-2000:]
    assert {p: committed(goka_brokers, group, clicks, p) for p in range(PARTITIONS)} == high

    def running() -> bool:
        partitions = partition_stats(stats)
        return len(partitions) == PARTITIONS and all(
            s["state"] == "running" for s in partitions.values()
        )

    clean = start()
    wait_until(running, TIMEOUT, "the cleanly restarted member runs")
    for p, s in partition_stats(stats).items():
        assert (s["recovered_records"], s["messages_in"]) == (0, 0), f"partition {p}: {s}"
    clean.send_signal(signal.SIGTERM)
    assert clean.wait(TIMEOUT) == 0
