"""Three click-count processes share a group; one is SIGKILLed mid-stream.

Its partitions and state move to the survivors: every key's count ends at least at the
number of clicks emitted for it (at-least-once: a batch may be counted twice), none missing.
"""

from __future__ import annotations

import collections
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from goka import codec
from tests.conftest import ProcessGroup, unique
from tests.support.clickcount import running, start_member

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_sigkilled_instance_loses_no_acknowledged_update(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    topic = topic_factory("clicks", partitions=8)
    group = unique("counter")
    stats = [tmp_path / f"member-{i}.json" for i in range(3)]
    members = [
        start_member(
            processes,
            goka_brokers,
            topic,
            group,
            tmp_path / f"member-{i}",
            "--batch-size",
            "200",
            stats_file=stats[i],
        )  # fmt: skip
        for i in range(3)
    ]

    keys = [f"user-{i % 500}" for i in range(30_000)]
    first_half_done = threading.Event()

    def emit_all() -> None:
        with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
            for i, key in enumerate(keys):
                emitter.emit(key, "click")
                if i % 1000 == 999:
                    emitter.flush()
                    time.sleep(0.1)
                if i == len(keys) // 2:
                    first_half_done.set()

    def settled() -> bool:  # every member runs partitions, and together all of them
        held = [running(path) for path in stats]
        return all(held) and set().union(*held) == {str(p) for p in range(8)}

    deadline = time.monotonic() + 90
    while not settled():
        assert time.monotonic() < deadline, "the group did not settle"
        time.sleep(0.2)

    emitter = threading.Thread(target=emit_all)
    emitter.start()
    with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
        assert view.wait_running(60)
        assert first_half_done.wait(60)
        while sum(v for _, v in view.items()) < 1000:  # processing is under way
            assert time.monotonic() < deadline + 60, "nothing was processed"
            time.sleep(0.05)
        assert running(stats[0]), "the member to kill holds no partition"
        members[0].send_signal(signal.SIGKILL)
        emitter.join(120)
        assert not emitter.is_alive()

        expected = collections.Counter(keys)
        deadline = time.monotonic() + 90
        while True:
            counts = dict(view.items())
            short = {k: (counts.get(k), n) for k, n in expected.items() if counts.get(k, 0) < n}
            if not short or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not short, (
            f"{len(short)} keys below their emitted count, e.g. {list(short.items())[:5]}"
        )
        assert set(counts) == set(expected)
        deadline = time.monotonic() + 60
        while running(stats[1]) | running(stats[2]) != {str(p) for p in range(8)}:
            assert time.monotonic() < deadline, "the survivors did not take over every partition"
            time.sleep(0.2)

    for member in members[1:]:
        member.send_signal(signal.SIGTERM)
    for member in members[1:]:
        out, err = member.communicate(timeout=60)
        assert member.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["event"] == "stopped"
