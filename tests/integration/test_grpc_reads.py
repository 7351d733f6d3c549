"""Reading a click-count table over gRPC from a real deployment on the dev broker: three
processors serving their partitions, a view server holding a full copy and a stateless router,
each an OS process. Every read rule of docs/architecture.md "Reading over gRPC" is checked
against the counts the test emitted (``Model``).

The deployment is shared by the module; the read-your-writes tests add clicks and record them
in the model, and tests that read replicas wait until the view has them (``Model.synced``), so
the tests pass alone and in any order.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

import goka
from discovery import Announcer, DiscoveryConfig
from goka import codec
from goka.local_table import HeldPartition, LocalTable, TableMeta
from goka.partitioner import murmur2
from tests.conftest import ProcessGroup, unique
from tests.support.serving import Deployment, free_port, wait_until
from viewsvc.client import Client, ReadError
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import FORWARDED_BY, open_channel

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 6
KEYS = [f"user-{i}".encode() for i in range(1000)]
TIMEOUT = 10.0
NODES = ["processor-0", "processor-1", "processor-2", "view", "router"]
ANY = pb.ReadOptions(consistency=pb.CONSISTENCY_ANY)
ACTIVE = pb.ReadOptions(consistency=pb.CONSISTENCY_ACTIVE)


def clicks_of(index: int) -> int:
    return index % 5 + 1


class Model:
    """The deployment, stubs to its nodes, and the table it must hold (``expected``)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.table = deployment.table
        self.expected = {key: str(clicks_of(i)).encode() for i, key in enumerate(KEYS)}
        self._channels = {
            name: open_channel(node.endpoint) for name, node in deployment.nodes.items()
        }

    def channel(self, name: str) -> grpc.Channel:
        return self._channels[name]

    def stub(self, name: str) -> Any:
        return table_pb2_grpc.TableServiceStub(self._channels[name])  # type: ignore[no-untyped-call]

    def endpoint(self, name: str) -> str:
        return self.deployment.nodes[name].endpoint

    def member_id(self, name: str) -> str:
        node = self.deployment.nodes[name]
        return node.member_id or self.deployment.processor_ids()[node.endpoint]

    def rows(self) -> list[tuple[bytes, bytes]]:
        return sorted(self.expected.items())

    def values(self, name: str, options: pb.ReadOptions = ANY) -> dict[bytes, bytes]:
        request = pb.GetManyRequest(table=self.table, keys=list(self.expected), options=options)
        response = self.stub(name).GetMany(request, timeout=TIMEOUT)
        return {r.key: r.value for r in response.results}

    def synced(self) -> Model:
        """Waits until the active owners and the view hold the expected table."""
        wait_until(lambda: self.values("router", ACTIVE) == self.expected, 60, "the owners")
        wait_until(lambda: self.values("view") == self.expected, 30, "the view")
        return self

    def holders(self) -> dict[int, set[str]]:
        """Partition -> member ids of its running holders."""
        membership = self.deployment.membership
        return {
            p: {o.member_id for o in membership.owners(self.table, p) if o.state == "running"}
            for p in range(PARTITIONS)
        }

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


@pytest.fixture(scope="module")
def model(goka_brokers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Model]:
    root = tmp_path_factory.mktemp("grpc-reads")
    deployment = Deployment(goka_brokers, ProcessGroup(), root, partitions=PARTITIONS)
    try:
        deployment.start_processors(3)
        with goka.Emitter(goka_brokers, deployment.topic, codec.String()) as emitter:
            for i, key in enumerate(KEYS):
                for _ in range(clicks_of(i)):
                    emitter.emit(key.decode(), "click")
        wait_until(
            lambda: len(deployment.active_owners()) == PARTITIONS,
            90,
            "the processors to run every partition",
        )
        deployment.start_view_and_router()
        deployment.wait_settled(60)
        served = Model(deployment)
        try:
            yield served.synced()
        finally:
            served.close()
    finally:
        deployment.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def synced(model: Model) -> Model:
    return model.synced()


IN_FLIGHT = 50
"""Calls in flight on one channel: below the servers' 100 HTTP/2 streams per connection,
which a fresh connection may exceed before it learns the limit (REFUSED_STREAM)."""


def get_all(stub: Any, table: str, keys: list[bytes]) -> list[pb.GetResponse]:
    """One Get per key, IN_FLIGHT at a time."""
    results: list[pb.GetResponse] = []
    for first in range(0, len(keys), IN_FLIGHT):
        calls = [
            stub.Get.future(pb.GetRequest(table=table, key=key, options=ANY), timeout=TIMEOUT)
            for key in keys[first : first + IN_FLIGHT]
        ]
        results.extend(call.result() for call in calls)
    return results


@pytest.mark.parametrize("name", NODES)
def test_get_of_every_key_through_every_node(synced: Model, name: str) -> None:
    holders = synced.holders()
    responses = get_all(synced.stub(name), synced.table, KEYS)
    assert [(r.key, r.found, r.value) for r in responses] == [
        (key, True, synced.expected[key]) for key in KEYS
    ]
    assert [r.partition for r in responses] == [murmur2(key, PARTITIONS) for key in KEYS]
    wrong = [(r.key, r.served_by) for r in responses if r.served_by not in holders[r.partition]]
    assert not wrong, f"served by members not holding the key's partition: {wrong[:5]}"
    if name == "view":  # it holds every partition: never forwards
        assert {r.served_by for r in responses} == {synced.member_id("view")}


def test_get_of_every_key_through_the_smart_client(synced: Model) -> None:
    holders = synced.holders()
    with Client([synced.endpoint("router")], timeout=TIMEOUT) as client:
        assert client.wait_ready(TIMEOUT)
        results = [client.get(synced.table, key) for key in KEYS]
    assert [(r.key, r.found, r.value) for r in results] == [
        (key, True, synced.expected[key]) for key in KEYS
    ]
    assert all(r.partition == murmur2(r.key, PARTITIONS) for r in results)
    assert all(r.served_by in holders[r.partition] for r in results)
    assert {r.served_by for r in results} != {synced.member_id("view")}  # straight to owners


@pytest.mark.parametrize("name", ["router", "processor-1", "view"])
def test_get_many_of_500_keys_in_one_call(synced: Model, name: str) -> None:
    keys = [*KEYS[::2], b"no-such-user"][-500:]
    request = pb.GetManyRequest(table=synced.table, keys=keys, options=ANY)
    response = synced.stub(name).GetMany(request, timeout=TIMEOUT)
    assert [r.key for r in response.results] == keys
    assert [(r.found, r.value) for r in response.results] == [
        (key in synced.expected, synced.expected.get(key, b"")) for key in keys
    ]
    assert all(r.served_by for r in response.results)


def scan_pages(stub: Any, table: str, **fields: Any) -> list[list[tuple[bytes, bytes]]]:
    """The rows of every page, following next_page_token."""
    pages, token = [], ""
    while True:
        request = pb.ScanRequest(table=table, page_token=token, **fields)
        messages = list(stub.Scan(request, timeout=TIMEOUT))
        assert not any(m.next_page_token for m in messages[:-1])
        pages.append([(e.key, e.value) for m in messages for e in m.entries])
        token = messages[-1].next_page_token
        if not token:
            return pages


@pytest.mark.parametrize("name", ["router", "processor-2", "view"])
def test_scan_in_pages_of_100_is_the_sorted_table(synced: Model, name: str) -> None:
    pages = scan_pages(synced.stub(name), synced.table, limit=100)
    rows = synced.rows()
    assert [len(page) for page in pages] == [100] * (len(rows) // 100) + (
        [len(rows) % 100] if len(rows) % 100 else []
    )
    assert [row for page in pages for row in page] == rows


def test_prefix_scan_is_the_subset_in_order(synced: Model) -> None:
    wanted = [(k, v) for k, v in synced.rows() if k.startswith(b"user-1")]
    assert len(wanted) == 111  # user-1, user-10..19, user-100..199
    [page] = scan_pages(synced.stub("router"), synced.table, prefix=b"user-1")
    assert page == wanted
    pages = scan_pages(synced.stub("processor-0"), synced.table, prefix=b"user-1", limit=50)
    assert [row for page in pages for row in page] == wanted
    with Client([synced.endpoint("router")], timeout=TIMEOUT) as client:
        scan = client.scan(synced.table, prefix="user-1")
        assert [(e.key, e.value) for e in scan] == wanted
        assert scan.next_page_token == ""
        assert {s.partition for s in scan.sources} == set(range(PARTITIONS))


@pytest.fixture
def emitter(goka_brokers: str, model: Model) -> Iterator[goka.Emitter[str]]:
    with goka.Emitter(goka_brokers, model.deployment.topic, codec.String()) as emitter:
        yield emitter


def test_read_your_writes_with_min_offsets_of_the_input_topic(
    model: Model, emitter: goka.Emitter[str]
) -> None:
    topic = model.deployment.topic
    router = model.stub("router")
    with Client([model.endpoint("router")], timeout=TIMEOUT) as client:
        assert client.wait_ready(TIMEOUT)
        for round_ in range(10):
            key = KEYS[round_ * 7]
            written = emitter.emit_sync(key.decode(), "click")
            model.expected[key] = str(int(model.expected[key]) + 1).encode()
            offsets = {written.partition: written.offset}
            if round_ % 2:
                options = pb.ReadOptions(min_offsets=offsets, min_offsets_topic=topic)
                request = pb.GetRequest(table=model.table, key=key, options=options)
                response = router.Get(request, timeout=TIMEOUT)
                value, partition = response.value, response.partition
            else:
                result = client.get(model.table, key, min_offsets=offsets, min_offsets_topic=topic)
                value, partition = result.value, result.partition
            assert (value, partition) == (model.expected[key], written.partition)


@pytest.mark.parametrize("name", ["router", "view", "processor-0"])
def test_min_offsets_not_reached_within_the_deadline(model: Model, name: str) -> None:
    options = pb.ReadOptions(min_offsets={murmur2(KEYS[0], PARTITIONS): 10**12})
    request = pb.GetRequest(table=model.table, key=KEYS[0], options=options)
    with pytest.raises(grpc.RpcError) as info:
        model.stub(name).Get(request, timeout=1.0)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


class LaggingReplica:
    """The local table of a replica far behind, for an announcement; never read."""

    def __init__(self, table: str) -> None:
        self.meta = TableMeta(table, "string", "int64", "murmur2", 2)

    def held(self) -> dict[int, HeldPartition]:
        return {p: HeldPartition(p, "replica", "running", 5, 1000) for p in range(2)}

    def read(self, partition: int, keys: Sequence[bytes]) -> tuple[list[bytes | None], int]:
        raise AssertionError("a lagging replica is never read")

    def items(self, partition: int, start: bytes | None, end: bytes | None) -> Iterator[Any]:
        raise AssertionError("a lagging replica is never read")

    def processed_offset(self, partition: int, topic: str) -> int | None:
        return None

    def unreachable_for(self) -> float:
        return 0.0


def listed(model: Model, name: str) -> set[str]:
    response = model.stub(name).ListTables(pb.ListTablesRequest(), timeout=TIMEOUT)
    return {table.name for table in response.tables}


def test_lag_bound_no_replica_meets_is_failed_precondition(goka_brokers: str, model: Model) -> None:
    """A table whose only replica is announced 1000 offsets behind (the announcement goes
    through the real discovery topic; the replica itself is never called)."""
    table = unique("lagging-table")

    def tables() -> list[LocalTable]:
        return [LaggingReplica(table)]

    announcer = Announcer(
        DiscoveryConfig(model.deployment.discovery_topic, f"127.0.0.1:{free_port()}", 0.5),
        member_id=unique("lagging-view"),
        role="view",
        brokers=goka_brokers,
        tables=tables,
    ).start()
    try:
        wait_until(lambda: table in listed(model, "router"), 30, "the announcement")
        request = pb.GetRequest(table=table, key=b"k", options=pb.ReadOptions(max_lag=10))
        with pytest.raises(grpc.RpcError) as info:
            model.stub("router").Get(request, timeout=TIMEOUT)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "max_lag=10" in info.value.details() and "1000" in info.value.details()
        with Client([model.endpoint("router")], timeout=TIMEOUT) as client:
            assert client.wait_ready(TIMEOUT)
            with pytest.raises(ReadError) as error:
                client.get(table, "k", max_lag=10)
            assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        announcer.stop()
    wait_until(lambda: all(table not in listed(model, n) for n in NODES), 30, "its tombstone")


def _token_of_another_scan(stub: Any, table: str) -> str:
    request = pb.ScanRequest(table=table, prefix=b"user-1", limit=5)
    token: str = list(stub.Scan(request, timeout=TIMEOUT))[-1].next_page_token
    assert token
    return token


TOO_LONG = b"k" * (64 * 1024 + 1)
"""Over the default key limit (Limits.max_key_bytes, 64 KiB)."""
INVALID: dict[str, tuple[Callable[[Any, str], Any], str]] = {
    # case: (stub, table -> request, the field the message names)
    "empty table": (lambda s, t: pb.GetRequest(table="", key=b"user-1"), "table"),
    "key over the size limit": (lambda s, t: pb.GetRequest(table=t, key=TOO_LONG), "key"),
    "GetMany key over the size limit": (
        lambda s, t: pb.GetManyRequest(table=t, keys=[b"user-1", TOO_LONG]),
        "keys",
    ),
    "limit over the cap": (lambda s, t: pb.ScanRequest(table=t, limit=1_000_001), "limit"),
    "negative limit": (lambda s, t: pb.ScanRequest(table=t, limit=-1), "limit"),
    "bad page token": (
        lambda s, t: pb.ScanRequest(table=t, page_token="not-a-token"),
        "page_token",
    ),
    "page token of another scan": (
        lambda s, t: pb.ScanRequest(
            table=t, prefix=b"user-2", page_token=_token_of_another_scan(s, t)
        ),
        "page_token",
    ),
    "negative max_lag": (
        lambda s, t: pb.GetRequest(table=t, key=b"user-1", options=pb.ReadOptions(max_lag=-1)),
        "options.max_lag",
    ),
    "scan partition out of range": (
        lambda s, t: pb.ScanRequest(table=t, partitions=[0, PARTITIONS]),
        "partitions",
    ),
    "min_offsets partition out of range": (
        lambda s, t: pb.GetRequest(
            table=t, key=b"user-1", options=pb.ReadOptions(min_offsets={PARTITIONS: 1})
        ),
        "options.min_offsets",
    ),
    "end before start": (
        lambda s, t: pb.ScanRequest(table=t, start=b"user-5", end=b"user-1"),
        "end",
    ),
}


@pytest.mark.parametrize("name", ["router", "processor-0", "view"])
@pytest.mark.parametrize("case", list(INVALID))
def test_malformed_request_is_invalid_argument_naming_the_field(
    model: Model, name: str, case: str
) -> None:
    make, field = INVALID[case]
    stub = model.stub(name)
    request = make(stub, model.table)
    method = type(request).__name__.removesuffix("Request")
    with pytest.raises(grpc.RpcError) as info:
        answer = getattr(stub, method)(request, timeout=TIMEOUT)
        if method == "Scan":
            list(answer)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(f"{field}:"), info.value.details()


@pytest.mark.parametrize("name", NODES)
def test_keys_no_store_can_hold_are_not_found(model: Model, name: str) -> None:
    """An empty key and one over LMDB's 511 bytes (within max_key_bytes) are in no table:
    found=false from the real stores, never an LMDB error."""
    stub, table = model.stub(name), model.table
    for key in (b"", b"k" * 600):
        answer = stub.Get(pb.GetRequest(table=table, key=key, options=ANY), timeout=TIMEOUT)
        assert (answer.found, answer.value, answer.key) == (False, b"", key)
        assert answer.partition == murmur2(key, PARTITIONS)
    many = stub.GetMany(
        pb.GetManyRequest(table=table, keys=[b"", KEYS[3], b"k" * 600], options=ANY),
        timeout=TIMEOUT,
    )
    assert [(r.found, r.value) for r in many.results] == [
        (False, b""),
        (True, model.expected[KEYS[3]]),
        (False, b""),
    ]
    start = b"user-998" + b"\x00" * 600  # longer than any stored key: sought by its prefix
    rows = list(stub.Scan(pb.ScanRequest(table=table, start=start), timeout=TIMEOUT))
    assert [e.key for r in rows for e in r.entries] == [b"user-999"]


@pytest.mark.parametrize("name", NODES)
def test_unknown_table_is_not_found(model: Model, name: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        model.stub(name).Get(pb.GetRequest(table="no-such-table", key=b"k"), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'no-such-table'" in info.value.details() and model.table in info.value.details()


def test_locate_and_list_tables(model: Model) -> None:
    key = KEYS[42]
    partition = murmur2(key, PARTITIONS)
    request = pb.LocateRequest(table=model.table, key=key)
    response = model.stub("router").Locate(request, timeout=TIMEOUT)
    info = response.table
    assert (info.name, info.key_codec, info.value_codec, info.partitioner) == (
        model.table, "string", "int64", "murmur2"
    )  # fmt: skip
    assert (info.partition_count, info.running_partitions) == (PARTITIONS, PARTITIONS)
    assert response.partition == partition
    first, *others = response.replicas
    assert (first.role, first.kind, first.state) == ("processor", "active", "running")
    assert first.member_id in model.deployment.processor_ids().values()
    view = model.member_id("view")
    assert [(r.role, r.kind, r.state) for r in others if r.member_id == view] == [
        ("view", "replica", "running")
    ]
    assert all(r.endpoint for r in response.replicas)
    for name in NODES:
        tables = model.stub(name).ListTables(pb.ListTablesRequest(), timeout=TIMEOUT).tables
        [ours] = [t for t in tables if t.name == model.table]
        assert ours == info, name


SERVICES = {"viewsvc.v1.TableService", "discovery.v1.DiscoveryService", "grpc.health.v1.Health"}


@pytest.mark.parametrize("name", NODES)
def test_health_and_reflection(model: Model, name: str) -> None:
    health = health_pb2_grpc.HealthStub(model.channel(name))
    for service in ("", "viewsvc.v1.TableService"):
        request = health_pb2.HealthCheckRequest(service=service)
        status = health.Check(request, timeout=TIMEOUT).status
        assert status == health_pb2.HealthCheckResponse.SERVING, service
    services = set(ProtoReflectionDescriptorDatabase(model.channel(name)).get_services())
    assert services >= SERVICES


def test_a_forwarded_request_is_never_forwarded_again(model: Model) -> None:
    """A Get marked as forwarded, for a partition the node does not hold, is UNAVAILABLE
    (the sender tries its next candidate) instead of a second hop."""
    owners = model.deployment.active_owners()
    endpoint = model.endpoint("processor-0")
    own = next(k for k in KEYS if owners[murmur2(k, PARTITIONS)] == endpoint)
    other = next(k for k in KEYS if owners[murmur2(k, PARTITIONS)] != endpoint)
    marker = ((FORWARDED_BY, "some-member"),)
    for name, key, served in [("processor-0", other, False), ("router", own, False),
                              ("processor-0", own, True)]:  # fmt: skip
        request = pb.GetRequest(table=model.table, key=key)
        call = model.stub(name).Get
        if served:
            assert call(request, timeout=TIMEOUT, metadata=marker).served_by
            continue
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=TIMEOUT, metadata=marker)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "not forwarded again" in info.value.details()
    # unmarked, the same reads are forwarded
    request = pb.GetRequest(table=model.table, key=own)
    assert model.stub("router").Get(request, timeout=TIMEOUT).found


def test_concurrent_reads_through_every_node(synced: Model) -> None:
    """Reads from several threads at once, each through another node, all answered."""
    errors: list[BaseException] = []

    def read(name: str) -> None:
        try:
            responses = get_all(synced.stub(name), synced.table, KEYS[:300])
            assert [r.value for r in responses] == [synced.expected[k] for k in KEYS[:300]]
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(name,)) for name in NODES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads) and not errors, errors


def test_deployment_layout(model: Model) -> None:
    """Every processor owns some partitions; the router holds none."""
    owners = model.deployment.active_owners()
    assert {model.endpoint(f"processor-{i}") for i in range(3)} == set(owners.values())
    router = model.member_id("router")
    assert all(router not in holders for holders in model.holders().values())
    assert Path(model.deployment.root, "view").is_dir()  # the view's LMDB on disk
