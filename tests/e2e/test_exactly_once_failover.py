"""Exactly-once across a SIGKILL: three exactly-once members count clicks and pass each on to
an output topic; one is killed in the middle of its share of the input and started again.
Every key's count equals the clicks emitted for it, exactly, and the output read with
read_committed holds each click exactly once. (Under at-least-once the killed member's last
batches are processed again: their clicks are counted and passed on twice.)"""

from __future__ import annotations

import collections
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from goka import codec
from tests.conftest import ProcessGroup, unique
from tests.support.clickcount import running, stats_of
from tests.support.counting_member import start_member
from tests.support.serving import wait_until
from tests.support.topics import read_topic

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.kafka_only("Tansu shows read_committed readers aborted transactions"),
]

PARTITIONS = 6
TIMEOUT = 120.0
CLICKS = 60_000
KEYS = 40


def test_a_member_killed_mid_stream_changes_no_count_and_no_output(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    clicks = topic_factory("clicks", partitions=PARTITIONS)
    passed_on = topic_factory("passed-on", partitions=PARTITIONS)
    group = unique("eos")
    names = ("a", "b", "c")
    stats = {name: tmp_path / f"{name}.json" for name in names}
    everything = {str(p) for p in range(PARTITIONS)}

    def start(name: str) -> subprocess.Popen[str]:
        return start_member(processes, goka_brokers, group, [clicks], tmp_path / name,
                            stats[name], guarantee="exactly_once", output=passed_on)  # fmt: skip

    def all_running(members: tuple[str, ...]) -> bool:
        held = [running(stats[name]) for name in members]
        return set().union(*held) == everything and all(held)

    members = {name: start(name) for name in names}
    wait_until(lambda: all_running(names), TIMEOUT, "three members running")
    emitted: collections.Counter[str] = collections.Counter()
    with goka.Emitter(goka_brokers, clicks, codec.String()) as emitter:
        for seq in range(CLICKS):
            key = f"user-{seq % KEYS}"
            emitter.emit(key, str(seq))
            emitted[key] += 1

    def processed_by_a() -> int:
        partitions = stats_of(stats["a"]).get("partitions", {})
        return sum(p["messages_in"] for p in partitions.values())

    # A is in the middle of its share (a third): batches of 100, each one transaction
    wait_until(lambda: processed_by_a() >= 2_000, TIMEOUT, "A processes a part of its share")
    members["a"].send_signal(signal.SIGKILL)
    assert members["a"].wait(10) == -signal.SIGKILL
    assert processed_by_a() < CLICKS // 3, "A processed its share before it was killed"
    wait_until(lambda: all_running(("b", "c")), TIMEOUT, "B and C take A's partitions")
    stats["a"].unlink()
    members["a"] = start("a")
    wait_until(lambda: all_running(names), TIMEOUT, "A runs again beside B and C")
    for name, member in members.items():
        assert member.poll() is None, f"{name} exited: {member.communicate()[1][-3000:]}"

    def table() -> dict[str, int]:
        with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
            assert view.wait_running(30)
            return dict(view.items())

    try:
        wait_until(lambda: table() == dict(emitted), TIMEOUT, "every count is exact")
    except AssertionError as exc:
        counts = table()
        wrong = {k: (counts.get(k), n) for k, n in emitted.items() if counts.get(k) != n}
        raise AssertionError(f"{exc}: (counted, emitted) of the wrong keys: {wrong}") from exc
    values = collections.Counter(
        int(msg.value()) for msg in read_topic(goka_brokers, passed_on, PARTITIONS)
    )
    assert sorted(values) == list(range(CLICKS))  # every click, by its sequence number
    assert set(values.values()) == {1}  # each exactly once
