"""No zombie writes: an instance stalled (SIGSTOP) past the session timeout while input keeps
flowing writes nothing to a table partition after the member that took it over began, and
the final table equals the oracle.

Every changelog record carries its writer and the writer's assignment generation (the time of
the assignment, in ms); in each partition the generations must never go down, which a record
of the stalled instance written after the takeover would do. Under at-least-once the members
keep each key's last value, so replays change nothing and the table must be exact; under
exactly-once they count each key's messages, and every count must be exact.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from goka import codec
from goka._delivery import DeliveryFuture
from goka.processor import GENERATION_HEADER, WRITER_HEADER
from tests.conftest import FAST_GROUP_CONFIG, ProcessGroup, unique
from tests.support.clickcount import running, stats_of
from tests.support.counting_member import start_member
from tests.support.serving import wait_until
from tests.support.topics import read_topic

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    # messages librdkafka held through the stall expire (as they must), and librdkafka then
    # bumps the idempotent producer's epoch; Tansu answers the next produce with
    # PRODUCER_FENCED, which Kafka does not
    pytest.mark.kafka_only("the idempotent producer's epoch bump after a message timeout"),
]

PARTITIONS = 4
KEYS = [f"user-{i}" for i in range(40)]
SESSION_S = FAST_GROUP_CONFIG["session.timeout.ms"] / 1000


class SteadyEmitter:
    """Emits key i % 40 with value i, every 5 ms, until stopped; knows each key's last."""

    def __init__(self, brokers: str, topic: str) -> None:
        self.last: dict[str, int] = {}
        self.counts: collections.Counter[str] = collections.Counter()
        self._sent: list[DeliveryFuture] = []
        self._emitter = goka.Emitter(brokers, topic, codec.String())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        while not self._stop.wait(0.005):
            key = KEYS[seq % len(KEYS)]
            self._sent.append(self._emitter.emit(key, str(seq)))
            self.last[key] = seq
            self.counts[key] += 1
            seq += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._emitter.close()
        failed = [error for f in self._sent if (error := f.exception(10)) is not None]
        assert failed == [], f"the oracle counts messages that were not delivered: {failed[:3]}"


def changelog(brokers: str, topic: str) -> dict[int, list[tuple[str, int]]]:
    """Per partition, (writer, generation) of every committed record, in offset order."""
    records: dict[int, list[tuple[str, int]]] = collections.defaultdict(list)
    for msg in read_topic(brokers, topic, PARTITIONS):
        headers = dict(msg.headers() or [])
        writer = headers[WRITER_HEADER].decode()
        records[msg.partition()].append((writer, int(headers[GENERATION_HEADER])))
    return records


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_member_stalled_past_its_session_writes_nothing_after_the_takeover(
    guarantee: str,
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    clicks = topic_factory("clicks", partitions=PARTITIONS)
    group = unique("zombie")
    stats = {name: tmp_path / f"{name}.json" for name in ("a", "b")}
    everything = {str(p) for p in range(PARTITIONS)}

    def start(name: str) -> subprocess.Popen[str]:
        keep = "count" if guarantee == "exactly_once" else "last"
        return start_member(processes, goka_brokers, group, [clicks], tmp_path / name,
                            stats[name], keep=keep, guarantee=guarantee,
                            log=tmp_path / f"{name}.log")  # fmt: skip

    a = start("a")
    b = start("b")
    wait_until(
        lambda: (
            running(stats["a"]) | running(stats["b"]) == everything
            and bool(running(stats["a"]))
            and bool(running(stats["b"]))
        ),
        90,
        "both members running",
    )
    held_by_a = running(stats["a"])
    released_before = stats_of(stats["a"]).get("revoked_partitions", 0)
    emitter = SteadyEmitter(goka_brokers, clicks)
    try:
        time.sleep(2)  # input flows to both members; A has fetched input when it stops
        os.kill(a.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: running(stats["b"]) == everything, 60, "B takes A's partitions")
            time.sleep(2)  # B processes A's partitions while A still holds its batch
        finally:
            os.kill(a.pid, signal.SIGCONT)
        time.sleep(SESSION_S)  # A runs again beside B, input still flowing
    finally:
        emitter.stop()
    expected = dict(emitter.counts if guarantee == "exactly_once" else emitter.last)
    for name, member in (("a", a), ("b", b)):
        if member.poll() is not None:
            pytest.fail(f"member {name} exited: {(tmp_path / f'{name}.log').read_text()[-3000:]}")

    def noticed() -> bool:
        """A saw the gap in its loop, and either dropped the batch it held (the coordinator
        refused its commit) or had lost its partitions before it processed more: which one
        depends on whether its first poll after SIGCONT served the lost assignment."""
        a_stats = stats_of(stats["a"])
        released = a_stats.get("revoked_partitions", 0) - released_before >= len(held_by_a)
        return a_stats.get("stalls", 0) >= 1 and (
            a_stats.get("dropped_batches", 0) >= 1 or released
        )

    wait_until(noticed, 30, "A noticed its stall and dropped what it held or lost it")

    def table() -> dict[str, int]:
        with goka.View(goka_brokers, goka.group_table(group), codec.Int64()) as view:
            assert view.wait_running(30)
            return dict(view.items())

    try:
        wait_until(lambda: table() == expected, 90, f"the table holds {guarantee}'s exact values")
    except AssertionError as exc:
        values = table()
        wrong = {k: (values.get(k), n) for k, n in expected.items() if values.get(k) != n}
        logs = {name: (tmp_path / f"{name}.log").read_text()[-3000:] for name in stats}
        raise AssertionError(
            f"{exc}: (in the table, expected) of the wrong keys: {wrong}; the members' logs: {logs}"
        ) from exc

    records = changelog(goka_brokers, goka.group_table(group))
    a_writer = f":{a.pid}:"
    moved = [p for p in held_by_a if any(a_writer in w for w, _ in records[int(p)])]
    assert moved, f"A wrote none of its partitions {sorted(held_by_a)}"
    for partition, written in records.items():
        generations = [generation for _, generation in written]
        late = [
            (i, writer, generation)
            for i, (writer, generation) in enumerate(written)
            if generation < max(generations[: i + 1])
        ]
        assert late == [], f"partition {partition}: records written after a takeover: {late[:5]}"
    # B took A's partitions over: its generation follows A's in each of them
    for p in moved:
        writers = [w for w, _ in records[int(p)]]
        first_b = next(i for i, w in enumerate(writers) if f":{b.pid}:" in w)
        assert any(a_writer in w for w in writers[:first_b]), f"partition {p}: no takeover"
