"""Static group membership (``--group-instance-id``, KIP-345): a member restarted within the
session timeout gets its partitions back, and no other member's partitions are revoked."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from goka import codec
from tests.conftest import ProcessGroup, unique
from tests.support.clickcount import running, start_member, stats_of
from tests.support.groups import set_group_session_timeout
from tests.support.serving import wait_until

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.kafka_only("static membership is the coordinator's (Kafka's) work"),
]

PARTITIONS = 6
SESSION_MS = 30_000
"""Long enough for a restart, well within the broker's group.max.session.timeout.ms (and
group.consumer.max.session.timeout.ms): the client's setting for a classic group, the
group's config for a KIP-848 one."""
SESSION = ("--config", f"session.timeout.ms={SESSION_MS}")


def test_a_member_restarted_within_the_session_timeout_causes_no_rebalance(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    topic = topic_factory("clicks", partitions=PARTITIONS)
    group = unique("static")
    set_group_session_timeout(goka_brokers, group, SESSION_MS)
    stats = [tmp_path / f"member-{i}.json" for i in range(3)]
    everything = {str(p) for p in range(PARTITIONS)}

    def start(i: int) -> subprocess.Popen[str]:
        return start_member(
            processes, goka_brokers, topic, group, tmp_path / f"member-{i}",
            "--group-instance-id", f"member-{i}", *SESSION, stats_file=stats[i],
        )  # fmt: skip

    members = []
    for i in range(3):  # one by one: the first stays the group's leader
        members.append(start(i))
        wait_until(lambda i=i: all(running(s) for s in stats[: i + 1]), 90, f"member {i} to run")
    wait_until(lambda: set().union(*(running(s) for s in stats)) == everything, 60, "the group")
    before = [stats_of(s) for s in stats]
    others = [running(s) for s in stats[:2]]
    assert [s["group_instance_id"] for s in before] == ["member-0", "member-1", "member-2"]
    held = running(stats[2])

    expected: collections.Counter[str] = collections.Counter()

    def emit(count: int) -> None:
        with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
            for i in range(count):
                key = f"user-{i % 300}"
                emitter.emit(key, "click")
                expected[key] += 1

    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(60)
        emit(1_500)
        wait_until(lambda: dict(view.items()) == dict(expected), 60, "the first counts")

        members[2].send_signal(signal.SIGTERM)  # a rolling restart of one pod
        out, err = members[2].communicate(timeout=30)
        assert members[2].returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["event"] == "stopped"
        members[2] = start(2)
        wait_until(lambda: running(stats[2]) == held, 60, "the restarted member's partitions")

        emit(1_500)  # the counts go on (at least once: a batch may count twice)
        wait_until(
            lambda: all(dict(view.items()).get(k, 0) >= n for k, n in expected.items()),
            60,
            "the counts after the restart",
        )
        assert set(dict(view.items())) == set(expected)

    after = [stats_of(s) for s in stats[:2]]
    assert [s["assignments"] for s in after] == [s["assignments"] for s in before[:2]]
    assert [running(s) for s in stats[:2]] == others
    assert set().union(*(running(s) for s in stats)) == everything
