"""Watch across a SIGKILL: a client watches a prefix through the router while clicks flow; the
owner of partition 0 is SIGKILLed and its partitions move to the survivor, which held their
standbys. Per partition, the changes the client received equal the table topic's records of
the prefix's keys from the offsets the watch started at: no gap, no repetition."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

import goka
from goka import codec
from tests.conftest import ProcessGroup, unique
from tests.support.serving import Deployment, wait_until
from tests.support.watching import Watcher, topic_changes
from viewsvc.client import Client

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 4
BOUND = 90.0


def _ends(brokers: str, table: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": unique("ends")})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(table, p), 10)[1]
            for p in range(PARTITIONS)
        }
    finally:
        consumer.close()


def _standbys_running(deployment: Deployment) -> bool:
    return all(
        any(
            o.kind == "standby" and o.state == "running"
            for o in deployment.membership.owners(deployment.table, p)
        )
        for p in range(PARTITIONS)
    )


def test_a_watch_misses_and_repeats_nothing_when_the_owner_is_killed(
    goka_brokers: str, tmp_path: Path
) -> None:
    deployment = Deployment(goka_brokers, ProcessGroup(), tmp_path, partitions=PARTITIONS)
    stop = threading.Event()
    emitter_thread = None
    watcher = None
    try:
        deployment.start_processors(2, "--standby-replicas", "1")
        deployment.start_view_and_router(views=0)
        wait_until(
            lambda: deployment.settled() and _standbys_running(deployment),
            BOUND,
            f"every partition with a running standby: {deployment.describe()}",
        )
        client = Client([deployment.nodes["router"].endpoint])
        client.wait_ready(10)
        watcher = Watcher(client, deployment.table, prefix="user-", reconnect_timeout=BOUND)
        stream = watcher.stream
        wait_until(lambda: len(stream.positions) == PARTITIONS, 30, "the watch's first message")
        starts = dict(stream.positions)

        def emit() -> None:
            with goka.Emitter(goka_brokers, deployment.topic, codec.String()) as emitter:
                i = 0
                while not stop.is_set():
                    emitter.emit(f"user-{i % 24}" if i % 3 else f"other-{i % 7}", "click")
                    i += 1
                    time.sleep(0.003)

        emitter_thread = threading.Thread(target=emit, daemon=True)
        emitter_thread.start()
        wait_until(lambda: len(watcher.received()) >= 300, 60, "changes before the kill")
        owner = deployment.active_owners()[0]
        killed = next(n for n in deployment.processors() if n.endpoint == owner)
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait(30)
        wait_until(
            lambda: (
                set(deployment.active_owners().values()) - {owner}
                and len(deployment.active_owners()) == PARTITIONS
                and owner not in deployment.active_owners().values()
            ),
            BOUND,
            f"the survivor to own every partition: {deployment.describe()}",
        )
        before = len(watcher.received())
        wait_until(lambda: len(watcher.received()) >= before + 300, 60, "changes after the kill")
        stop.set()
        emitter_thread.join(10)

        def caught_up() -> bool:
            ends = _ends(goka_brokers, deployment.table)
            if any(stream.positions.get(p, 0) < end for p, end in ends.items()):
                return False
            time.sleep(1.0)  # the processor may still be working through the input
            return _ends(goka_brokers, deployment.table) == ends

        wait_until(caught_up, BOUND, f"the watch at the table's end ({stream.positions})")
        assert watcher.error is None, watcher.error
        expected = topic_changes(
            goka_brokers, deployment.table, PARTITIONS, starts, lambda k: k.startswith(b"user-")
        )
        got = watcher.by_partition()
        assert sorted(got) == sorted(expected) == list(range(PARTITIONS))
        for partition in range(PARTITIONS):
            assert got[partition] == expected[partition], (
                f"partition {partition}: received {len(got[partition])} changes, the topic "
                f"has {len(expected[partition])} from offset {starts[partition]}"
            )
        assert stream.resumed >= 1, "the watch never had to resume: the kill did not reach it"
        print(
            f"\n{sum(map(len, got.values()))} changes, resumed {stream.resumed}x, "
            f"{stream.dropped} repeated changes dropped by the client"
        )
    finally:
        stop.set()
        if emitter_thread is not None:
            emitter_thread.join(10)
        if watcher is not None:
            watcher.close()
        deployment.close()
