"""Prometheus metrics of every serving node kind, scraped over HTTP from OS processes: a
click-count processor (``--serve``), a view pod (``viewsvc serve-view``) and a router
(``viewsvc route``), each with ``--metrics-port``. The named series exist and move with the
calls and clicks the test makes: calls by method and code (OK and NOT_FOUND), their latency
count, forwarded calls, held partitions by kind and state, lag and applied offset per
partition, processed messages and recovery (processor), applied rows and recovery (view).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc
import pytest

import goka
from goka import codec
from tests.conftest import ProcessGroup, unique
from tests.support.clickcount import start_member
from tests.support.serving import (
    SERVING,
    Labels,
    Samples,
    free_port,
    health,
    scrape,
    serving_line,
    wait_until,
)
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import open_channel

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 4
KEYS = [f"user-{i}" for i in range(200)]
READS = 40
BOUND = 60.0


def serves(node: Node) -> bool:
    """Health says SERVING and ``/metrics`` answers."""
    if health(node.endpoint) != SERVING:
        return False
    try:
        node.scrape()
    except OSError:
        return False
    return True


def select(samples: Samples, name: str, **labels: str) -> dict[Labels, float]:
    """The samples called ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return {key: value for (n, key), value in samples.items() if n == name and wanted <= set(key)}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(select(samples, name, **labels).values())


@dataclass
class Node:
    endpoint: str
    metrics_port: int

    def scrape(self) -> Samples:
        return scrape(self.metrics_port)


@dataclass
class Deployment:
    brokers: str
    topic: str
    group: str
    table: str
    processor: Node
    view: Node
    router: Node

    def nodes(self) -> dict[str, Node]:
        return {"processor": self.processor, "view": self.view, "router": self.router}


@pytest.fixture
def deployment(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> Iterator[Deployment]:
    topic = topic_factory("clicks", partitions=PARTITIONS)
    group, discovery_topic = unique("metrics"), unique("discovery")
    table = goka.group_table(group)
    common = ("--discovery-topic", discovery_topic, "--heartbeat", "0.5")
    try:
        endpoint, port = f"127.0.0.1:{free_port()}", free_port()
        start_member(
            processes, goka_brokers, topic, group, tmp_path / "store", "--serve", endpoint,
            "--advertise", endpoint, "--metrics-port", str(port), *common,
        )  # fmt: skip
        processor = Node(endpoint, port)
        emit(goka_brokers, topic, KEYS)
        wait_until(lambda: health(endpoint) == SERVING, BOUND, "the processor to serve")
        nodes = {}
        for name, args in (
            ("view", ("serve-view", "--table", table, "--storage", str(tmp_path / "view"))),
            ("router", ("route",)),
        ):
            port = free_port()
            proc = processes.start(
                "-m", "viewsvc", *args, "--brokers", goka_brokers, "--listen", "127.0.0.1:0",
                "--metrics-port", str(port), *common,
            )  # fmt: skip
            nodes[name] = Node(serving_line(proc, BOUND)[1], port)
        served = Deployment(
            goka_brokers, topic, group, table, processor, nodes["view"], nodes["router"]
        )
        for name, node in served.nodes().items():
            wait_until(partial(serves, node), BOUND, f"{name} to serve, /metrics too")
        yield served
    finally:
        processes.cleanup()
        goka.TopicManager(goka_brokers).delete([table, discovery_topic])
        shutil.rmtree(tmp_path, ignore_errors=True)


def emit(brokers: str, topic: str, keys: list[str]) -> None:
    with goka.Emitter(brokers, topic, codec.String()) as emitter:
        for key in keys:
            emitter.emit(key, "click")


def get(endpoint: str, table: str, keys: list[str]) -> list[pb.GetResponse]:
    with open_channel(endpoint) as channel:
        stub = table_pb2_grpc.TableServiceStub(channel)  # type: ignore[no-untyped-call]
        return [stub.Get(pb.GetRequest(table=table, key=k.encode()), timeout=10) for k in keys]


def get_unknown_table(endpoint: str) -> grpc.StatusCode:
    with open_channel(endpoint) as channel:
        stub = table_pb2_grpc.TableServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            stub.Get(pb.GetRequest(table="no-such-table", key=b"k"), timeout=10)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            return code
    return grpc.StatusCode.OK


def test_every_node_kind_exports_series_that_move(deployment: Deployment) -> None:
    d = deployment
    table = d.table
    # the view has applied every click, so its Gets answer the counts
    wait_until(
        lambda: all(r.found for r in get(d.view.endpoint, table, KEYS)), BOUND, "the view's rows"
    )
    before = {name: node.scrape() for name, node in d.nodes().items()}

    keys = KEYS[:READS]
    for name, node in d.nodes().items():
        assert all(r.found for r in get(node.endpoint, table, keys)), name
        assert get_unknown_table(node.endpoint) == grpc.StatusCode.NOT_FOUND, name
    more = [f"more-{i}" for i in range(100)]
    emit(d.brokers, d.topic, more)
    wait_until(
        lambda: all(r.found for r in get(d.view.endpoint, table, more)), BOUND, "the new clicks"
    )
    after = {name: node.scrape() for name, node in d.nodes().items()}

    def delta(node: str, name: str, **labels: str) -> float:
        return total(after[node], name, **labels) - total(before[node], name, **labels)

    # calls: by method and code, with their latency, on every node
    for kind in d.nodes():
        assert delta(kind, "viewsvc_requests_total", method="Get", code="OK") >= READS, kind
        assert delta(kind, "viewsvc_requests_total", method="Get", code="NOT_FOUND") == 1, kind
        assert delta(kind, "viewsvc_request_seconds_count", method="Get") >= READS + 1, kind
        assert select(after[kind], "viewsvc_request_seconds_bucket", method="Get", le="+Inf")
    # the router holds nothing: it answered exactly our calls, forwarding each read
    assert delta("router", "viewsvc_requests_total", method="Get", code="OK") == READS
    assert delta("router", "viewsvc_forwarded_requests_total", method="Get") >= READS
    for holder in ("processor", "view"):  # each holds every partition: nothing forwarded
        assert delta(holder, "viewsvc_forwarded_requests_total", method="Get") == 0, holder

    # held partitions by kind and state; lag and applied offset per partition
    for holder, kind in (("processor", "active"), ("view", "replica")):
        held = after[holder]
        assert total(held, "goka_partitions", table=table, kind=kind, state="running") == (
            PARTITIONS
        ), holder
        assert total(held, "goka_partitions", table=table, state="recovering") == 0, holder
        for series in ("goka_partition_lag", "goka_partition_applied_offset"):
            found = select(held, series, table=table, kind=kind)
            partitions = sorted(int(dict(labels)["partition"]) for labels in found)
            assert partitions == list(range(PARTITIONS)), (holder, series, found)
        assert all(v >= 0 for v in select(held, "goka_partition_lag", table=table).values())
        assert total(held, "goka_partition_applied_offset", table=table) > total(
            before[holder], "goka_partition_applied_offset", table=table
        ), holder
    assert not select(after["router"], "goka_partitions"), "the router holds no partitions"

    # processor: messages processed and recovery, per partition
    assert delta("processor", "goka_processed_messages_total") >= len(more)
    for series in ("goka_recovery_rows_total", "goka_recovery_seconds"):
        found = select(after["processor"], series, group=d.group)
        assert len(found) == PARTITIONS, (series, found)

    # view pod: rows applied and its recovery time
    applied = select(after["view"], "goka_view_applied_rows_total", table=table)
    assert list(applied.values())[0] >= len(KEYS) + len(more)
    assert delta("view", "goka_view_applied_rows_total", table=table) >= len(more)
    assert len(select(after["view"], "goka_view_recovery_seconds", table=table)) == 1
    assert select(after["view"], "goka_view_wiped_stores_total", table=table) == {
        (("table", table),): 0.0
    }


def test_a_processor_that_does_not_serve_exports_its_processing(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    topic = topic_factory("clicks", partitions=PARTITIONS)
    group = unique("metrics-only")
    table, port = goka.group_table(group), free_port()
    try:
        start_member(
            processes, goka_brokers, topic, group, tmp_path / "store", "--metrics-port", str(port)
        )
        emit(goka_brokers, topic, KEYS)

        def processed() -> float:
            try:
                return total(scrape(port), "goka_processed_messages_total")
            except OSError:
                return 0.0

        wait_until(lambda: processed() >= len(KEYS), BOUND, "the clicks counted in /metrics")
        samples = scrape(port)
        assert total(samples, "goka_partitions", table=table, kind="active", state="running") == (
            PARTITIONS
        )
        assert len(select(samples, "goka_partition_lag", table=table)) == PARTITIONS
        assert len(select(samples, "goka_recovery_seconds", group=group)) == PARTITIONS
        assert not select(samples, "viewsvc_requests_total"), "no server, no calls"
        assert select(samples, "goka_processor_guarantee", group=group) == {
            (("group", group), ("guarantee", "at_least_once")): 1.0
        }
        assert total(samples, "goka_processor_transactions_total", group=group) == 0
    finally:
        processes.cleanup()
        goka.TopicManager(goka_brokers).delete([table])
        shutil.rmtree(tmp_path, ignore_errors=True)
