"""Co-partitioning or nothing: when the members of a group subscribe to different inputs
(one was redeployed with an extra input), a member assigned only some inputs' partition N
does not process it, so table partition N never has two writers."""

from __future__ import annotations

import collections
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from goka import codec
from goka.partitioner import murmur2
from tests.conftest import ProcessGroup, unique
from tests.support.clickcount import partition_stats, running
from tests.support.counting_member import start_member
from tests.support.serving import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 4


def test_a_member_assigned_some_inputs_only_leaves_those_partitions_alone(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    clicks = topic_factory("clicks", partitions=PARTITIONS)
    extra = topic_factory("extra", partitions=PARTITIONS)
    group = unique("copartitioned")
    stats = {name: tmp_path / f"{name}.json" for name in ("a", "b")}
    everything = {str(p) for p in range(PARTITIONS)}

    def start(name: str, *inputs: str) -> subprocess.Popen[str]:
        return start_member(processes, goka_brokers, group, inputs, tmp_path / name, stats[name])

    a = start("a", clicks)
    b = start("b", clicks)
    wait_until(lambda: running(stats["a"]) | running(stats["b"]) == everything, 90, "the group")

    expected: collections.Counter[str] = collections.Counter()
    keys = [f"user-{i}" for i in range(40)]

    def emit(topic: str, chosen: list[str]) -> None:
        with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
            for key in chosen * 5:
                emitter.emit(key, "x")
                expected[key] += 1

    def counts() -> dict[str, int]:
        with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
            assert view.wait_running(30)
            return dict(view.items())

    emit(clicks, keys)
    wait_until(lambda: counts() == dict(expected), 60, "the first counts")

    b.send_signal(signal.SIGTERM)  # redeployed with an extra input
    assert b.wait(30) == 0
    b = start("b", clicks, extra)

    def split() -> dict[str, dict[str, object]]:
        return {p: s for p, s in partition_stats(stats["b"]).items() if s["state"] == "split"}

    def settled() -> bool:  # a runs what b holds only extra's partition of, b the rest
        on_a, on_b = running(stats["a"]), running(stats["b"])
        # b runs some: under KIP-848 b gets the extra input's partitions, which nobody else
        # holds, before a has revoked the clicks partitions that move to b
        return bool(on_a) and bool(on_b) and set(split()) == on_a and on_a | on_b == everything

    wait_until(settled, 90, "the rebalance with two different subscriptions")
    only_a = running(stats["a"])
    assert not running(stats["b"]) & only_a
    for info in split().values():
        assert info == {"state": "split", "assigned_inputs": [extra], "missing_inputs": [clicks]}

    emit(clicks, keys)
    emit(extra, keys)  # counted only where b holds both inputs' partition
    for key in keys:
        if str(murmur2(key.encode(), PARTITIONS)) in only_a:
            expected[key] -= 5
    try:
        wait_until(lambda: counts() == dict(expected), 60, "counts with one writer per partition")
    except AssertionError as exc:
        found = counts()
        wrong = {
            (k, murmur2(k.encode(), PARTITIONS)): (found.get(k), n)
            for k, n in expected.items()
            if found.get(k) != n
        }
        raise AssertionError(
            f"{exc}: (counted, expected) of the wrong keys (and partitions): {wrong}; a runs "
            f"{sorted(only_a)}, b {partition_stats(stats['b'])}"
        ) from exc

    b.send_signal(signal.SIGTERM)
    _, err = b.communicate(timeout=30)
    assert f"is assigned for [{extra!r}] only, not for [{clicks!r}]" in err
    a.send_signal(signal.SIGTERM)
    assert a.wait(30) == 0
