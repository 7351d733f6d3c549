"""Watch across a SIGKILL: a client watches a prefix through the router while clicks flow; the
owner of partition 0 is SIGKILLed and its partitions move to the survivor, which held their
standbys. Per partition, the changes the client received equal the table topic's records of
the prefix's keys from the offsets the watch started at: no gap, no repetition."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

import goka
from goka import codec
from tests.conftest import ProcessGroup
from tests.support.serving import Deployment, free_port, scrape, wait_until
from tests.support.topics import high_watermarks
from tests.support.watching import Watcher, topic_changes
from viewsvc.client import Client
from viewsvc.server.watch_service import RESUME_OFFSETS as RESUME
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import open_channel

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 4
BOUND = 90.0


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
        try:
            wait_until(
                lambda: len(watcher.received()) >= before + 300, 60, "changes after the kill"
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: {len(watcher.received()) - before} came, the watch resumed "
                f"{stream.resumed}x, is at {stream.positions}, reads {stream.sources}, "
                f"failed with {watcher.error!r}; {deployment.describe()}"
            ) from None
        stop.set()
        emitter_thread.join(10)

        def caught_up() -> bool:
            ends = high_watermarks(goka_brokers, deployment.table, PARTITIONS)
            if any(stream.positions.get(p, 0) < end for p, end in ends.items()):
                return False
            time.sleep(1.0)  # the processor may still be working through the input
            return high_watermarks(goka_brokers, deployment.table, PARTITIONS) == ends

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


def test_a_watcher_too_slow_is_ended_and_the_servers_memory_stays_bounded(
    goka_brokers: str, tmp_path: Path
) -> None:
    """A client that stops reading while over 100,000 changes of 400-byte keys come (40 MB):
    once gRPC's flow-control windows are full, the server holds at most ``--watch-buffer``
    changes (and one batch) for it, as its metric viewsvc_watch_waiting_changes shows, then
    ends the stream with RESOURCE_EXHAUSTED and the offsets to resume from."""
    deployment = Deployment(goka_brokers, ProcessGroup(), tmp_path, partitions=PARTITIONS)
    channel = None
    try:
        metrics = free_port()
        deployment.start_processors(1, "--watch-buffer", "500", "--metrics-port", str(metrics))
        wait_until(deployment.settled, BOUND, f"the processor running: {deployment.describe()}")
        node = deployment.processors()[0]
        channel = open_channel(node.endpoint)
        stub = table_pb2_grpc.TableServiceStub(channel)  # type: ignore[no-untyped-call]

        def load(round: int) -> None:
            """120,000 changes (clicks of fresh 400-byte keys; LMDB keys are <= 511 B)."""
            keys = [f"user-{round}-{i:05d}-".ljust(400, "x") for i in range(40_000)]
            with goka.Emitter(goka_brokers, deployment.topic, codec.String()) as emitter:
                for i in range(3 * len(keys)):
                    emitter.emit(keys[i % len(keys)], "click")
            wait_until(lambda: counted(keys) == 3 * len(keys), BOUND, f"round {round} counted")

        def counted(keys: list[str]) -> int:
            found = 0
            for at in range(0, len(keys), 1000):  # within the server's request size
                chunk = [k.encode() for k in keys[at : at + 1000]]
                request = pb.GetManyRequest(table=deployment.table, keys=chunk)
                try:
                    results = stub.GetMany(request, timeout=BOUND).results
                except grpc.RpcError:  # not running (yet): asked again
                    return -1
                found += sum(int(r.value) for r in results if r.found)
            return found

        call = stub.Watch(pb.WatchRequest(table=deployment.table), timeout=BOUND)
        first = next(call)
        assert sorted(first.positions) == list(range(PARTITIONS))
        load(0)
        changes = sum(high_watermarks(goka_brokers, deployment.table, PARTITIONS).values()) - sum(
            first.positions.values()
        )
        received = 0
        with pytest.raises(grpc.RpcError) as ended:
            for response in call:
                received += len(response.changes)
        assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, ended.value
        assert "resume from offsets" in ended.value.details()
        trailing = dict(ended.value.trailing_metadata() or ())
        resume = dict(
            (int(p), int(o)) for p, o in (pair.split("=") for pair in trailing[RESUME].split(","))
        )
        assert sorted(resume) == list(range(PARTITIONS))
        assert sum(resume.values()) - sum(first.positions.values()) == received
        assert changes > 100_000, f"only {changes} changes: the test needs more to be slow"
        assert received < changes / 2, f"{received} of {changes} changes got through: not slow"
        most = scrape(metrics)[("viewsvc_watch_waiting_changes_max", ())]
        print(
            f"\n{received:,} of {changes:,} changes sent; at most {most:,.0f} waited in "
            "the server (its process RSS says nothing: librdkafka's queues vary by more)"
        )
        # one batch (at most the processor's 10,000 messages) may come on top of the bound
        assert 500 < most <= 500 + 10_000, most
    finally:
        if channel is not None:
            channel.close()
        deployment.close()
