"""Hostile requests to every TableService RPC (hypothesis): random bytes, boundary sizes,
unknown enum values, out-of-range numbers. The server answers each with a documented status
code and a message of its own (never an exception's text), goes on answering afterwards, and
its memory stays bounded."""

from __future__ import annotations

import gc
import resource
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goka.local_table import HeldPartition
from goka.storage import LMDBStorage
from tests.unit.viewsvc.table_servers import (
    OFFSET,
    ROWS,
    TABLE,
    FakeTable,
    Node,
    announce,
    get,
    held,
    key_in,
    part,
    servers,
)
from viewsvc.server.limits import Limits
from viewsvc.v1 import table_pb2 as pb

LIMITS = Limits(max_keys=50, max_key_bytes=600, scan_cap=200, default_deadline=0.5)
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
"""What the README and docs/architecture.md say a read may answer."""
LEAKS = ("Traceback", "Exception calling application", "Error(", "MDB_")

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
tables = st.sampled_from([TABLE, "", "no-such-table"]) | st.text(max_size=300)
keys = st.sampled_from([b"", key_in(0), key_in(1), b"\x00", b"\xff" * 511, b"k" * 512]) | st.binary(
    max_size=700
)
options = st.builds(
    pb.ReadOptions,
    consistency=INT32,
    max_lag=INT64,
    min_offsets=st.dictionaries(INT32, INT64, max_size=5),
    min_offsets_topic=st.sampled_from(["", TABLE, "clicks"]) | st.text(max_size=50),
)
maybe_options = st.none() | options


def with_options(make: Callable[..., Any], **fields: Any) -> Any:
    """``make(**fields)``, leaving ``options`` unset when it is None."""
    return st.fixed_dictionaries(fields).map(
        lambda f: make(**{k: v for k, v in f.items() if not (k == "options" and v is None)})
    )


requests = st.one_of(
    with_options(pb.GetRequest, table=tables, key=keys, options=maybe_options),
    with_options(
        pb.GetManyRequest,
        table=tables,
        keys=st.lists(keys, max_size=LIMITS.max_keys + 3),
        options=maybe_options,
    ),
    with_options(
        pb.ScanRequest,
        table=tables,
        start=keys,
        end=keys,
        prefix=keys,
        limit=INT32,
        partitions=st.lists(INT32, max_size=6),
        page_token=st.sampled_from(["", "AQ", "not base64!", "AAAAAAAAAAAAAA"])
        | st.text(max_size=80),
        options=maybe_options,
    ),
    st.builds(pb.LocateRequest, table=tables, key=keys),
    st.builds(pb.ListTablesRequest),
)


class StoredTable(FakeTable):
    """The fake table with its rows in real LMDB stores, one per partition, as a processor
    or view keeps them: what LMDB refuses is refused here too."""

    def __init__(self, partitions: Iterable[HeldPartition], root: Path) -> None:
        super().__init__(partitions)
        storage = LMDBStorage(root, map_size=1 << 20)
        self.stores = {p: storage.open(TABLE, p) for p in self.partitions}
        for p, store in self.stores.items():
            store.apply({k: v for k, v in self.rows.items() if part(k) == p}, OFFSET)

    def read(self, partition: int, keys: Sequence[bytes]) -> tuple[list[bytes | None], int]:
        values, offset = self.stores[partition].read(keys)
        return values, -1 if offset is None else offset

    def items(
        self, partition: int, start: bytes | None, end: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        yield from self.stores[partition].items(start, end)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A server holding partitions 0 and 1 in LMDB; 2 and 3 are announced by a member that
    is gone (its endpoint refuses connections), so forwarding is exercised too."""
    stored = StoredTable([held(0), held(1)], tmp_path_factory.mktemp("lmdb"))
    with servers() as start:
        holder = start("holder", table=stored, limits=LIMITS)
        gone = start("gone", held(2), held(3, "standby"), limits=LIMITS)
        announce(holder, gone)
        gone.server.stop(grace=0)
        yield holder


def call(node: Node, request: Any) -> tuple[grpc.StatusCode, str]:
    method = type(request).__name__.removesuffix("Request")
    try:
        answer = getattr(node.stub, method)(request, timeout=2.0)
        if method == "Scan":
            list(answer)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests)
def test_every_answer_is_documented_and_says_nothing_internal(node: Node, request: Any) -> None:
    code, details = call(node, request)
    assert code in DOCUMENTED, (code, details, request)
    assert not any(leak in details for leak in LEAKS), (details, request)


def test_the_server_goes_on_answering_in_bounded_memory(node: Node) -> None:
    """After a flood of hostile requests the server answers reads right, and its process
    (the test's own: the server runs in it) has not grown without bound."""
    flood = [
        pb.GetManyRequest(table=TABLE, keys=[b"\xff" * 600] * LIMITS.max_keys),
        pb.ScanRequest(table=TABLE, partitions=[0, 1], limit=LIMITS.scan_cap),
        pb.GetRequest(table=TABLE, key=b"", options=pb.ReadOptions(consistency=99)),
        pb.GetRequest(table=TABLE, key=key_in(2)),  # forwarded to the gone member
    ]
    for request in flood * 50:  # warm up: caches, channels, thread pools
        call(node, request)
    gc.collect()
    before = max_rss_kib()
    for request in flood * 500:
        call(node, request)
    gc.collect()
    grown = max_rss_kib() - before
    assert grown < 64 << 10, f"max RSS grew by {grown} KiB over 2,000 hostile requests"
    for partition in (0, 1):
        key = key_in(partition)
        assert get(node, key).value == ROWS[key]
    assert call(node, pb.GetRequest(table=TABLE, key=key_in(2)))[0] == grpc.StatusCode.UNAVAILABLE
