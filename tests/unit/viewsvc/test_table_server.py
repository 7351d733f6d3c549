"""TableServer in process over dict-backed local tables and a hand-made membership: the read
rules of docs/architecture.md "Reading over gRPC" without Kafka.

Every server is a real gRPC server on 127.0.0.1 port 0; "remote" members are other in-process
servers, announced to each other through the fake membership.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from goka.errors import ConfigError
from tests.unit.viewsvc.table_servers import (
    ACTIVE,
    ANY,
    INPUT,
    OFFSET,
    PARTITIONS,
    ROWS,
    TABLE,
    TIMEOUT,
    FakeTable,
    Node,
    announce,
    failure,
    get,
    held,
    key_in,
    part,
)
from viewsvc.server.grpc_server import LIVENESS, TableServer
from viewsvc.server.limits import Limits
from viewsvc.server.security import ServerSecurity
from viewsvc.v1 import table_pb2 as pb
from viewsvc.wire.channels import FORWARDED_BY


def scan_pages(node: Node, **fields: Any) -> list[list[pb.ScanResponse]]:
    """Every page of a scan (the messages of each call), following the page tokens."""
    pages, token = [], ""
    while True:
        request = pb.ScanRequest(table=TABLE, page_token=token, **fields)
        page = list(node.stub.Scan(request, timeout=TIMEOUT))
        pages.append(page)
        token = page[-1].next_page_token
        if not token:
            return pages


def entries(messages: Iterable[pb.ScanResponse]) -> list[tuple[bytes, bytes, int]]:
    return [(e.key, e.value, e.partition) for m in messages for e in m.entries]


ALL_ROWS = [(k, v, part(k)) for k, v in sorted(ROWS.items())]


def test_get_answers_from_the_local_copy(start: Callable[..., Node]) -> None:
    node = start("a", *(held(p) for p in range(PARTITIONS)))
    key = key_in(2)
    response = get(node, key)
    assert (response.found, response.value, response.key) == (True, ROWS[key], key)
    assert (response.partition, response.offset, response.served_by) == (2, OFFSET, "a")
    missing = get(node, b"no-such-key")
    assert (missing.found, missing.value, missing.partition) == (False, b"", part(b"no-such-key"))


def test_the_only_replica_over_max_lag_is_failed_precondition(
    start: Callable[..., Node],
) -> None:
    node = start("a", *(held(p, lag=5 if p == 1 else 0) for p in range(PARTITIONS)))
    announce(node)
    lagging = key_in(1)
    error = failure(lambda: get(node, lagging, pb.ReadOptions(max_lag=2)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "max_lag=2" in error.details() and "partition 1" in error.details()
    assert get(node, lagging, pb.ReadOptions(max_lag=5)).value == ROWS[lagging]
    assert get(node, key_in(0), pb.ReadOptions(max_lag=2)).served_by == "a"


def test_a_remote_replica_announced_over_max_lag_is_failed_precondition(
    start: Callable[..., Node],
) -> None:
    router = start("router")
    holder = start("holder", *(held(p) for p in range(PARTITIONS)))
    announce(router, holder, lag={"holder": {3: 1000}})
    error = failure(lambda: get(router, key_in(3), pb.ReadOptions(max_lag=10)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "least lag: 1000" in error.details()
    assert get(router, key_in(3)).served_by == "holder"
    assert get(router, key_in(0), pb.ReadOptions(max_lag=10)).served_by == "holder"


def test_consistency_active_is_refused_by_a_replica_only_node(
    start: Callable[..., Node],
) -> None:
    view = start("view", *(held(p, "replica") for p in range(PARTITIONS)))
    announce(view)
    key = key_in(2)
    assert get(view, key).served_by == "view"
    error = failure(lambda: get(view, key, ACTIVE))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert f"partition 2 of {TABLE!r}" in error.details()


def test_a_recovering_partition_is_not_read(start: Callable[..., Node]) -> None:
    recovering = start("recovering", held(0, "replica", recovering=True), held(1, "replica"))
    key = key_in(0)
    assert recovering.table is not None
    recovering.table.rows[key] = b"stale"
    announce(recovering)
    assert failure(lambda: get(recovering, key)).code() == grpc.StatusCode.UNAVAILABLE

    holder = start("holder", held(0))
    announce(recovering, holder)
    response = get(recovering, key)
    assert (response.value, response.served_by) == (ROWS[key], "holder")
    [page] = scan_pages(recovering, partitions=[0, 1])
    assert [(s.partition, s.served_by) for s in page[0].sources] == [
        (0, "holder"), (1, "recovering")
    ]  # fmt: skip


def test_unavailable_candidate_passes_the_read_to_the_next(start: Callable[..., Node]) -> None:
    router = start("router")
    owner = start("owner", held(2))
    replica = start("replica", held(2, "replica"))
    announce(router, owner, replica)
    key = key_in(2)
    assert get(router, key).served_by == "owner"  # the active owner first among equals
    owner.server.stop(grace=0)
    assert get(router, key).served_by == "replica"
    error = failure(lambda: get(router, key, ACTIVE))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "every replica failed" in error.details()


def test_get_many_answers_in_request_order_from_local_and_remote(
    start: Callable[..., Node],
) -> None:
    a = start("a", held(0), held(1))
    b = start("b", held(2), held(3))
    announce(a, b)
    keys = [*sorted(ROWS, reverse=True), b"no-such-key", key_in(3)]
    response = a.stub.GetMany(pb.GetManyRequest(table=TABLE, keys=keys), timeout=TIMEOUT)
    assert [r.key for r in response.results] == keys
    assert [r.value for r in response.results] == [ROWS.get(k, b"") for k in keys]
    assert [r.served_by for r in response.results] == ["a" if part(k) < 2 else "b" for k in keys]


def test_scan_merges_local_and_remote_partitions_in_key_order(
    start: Callable[..., Node],
) -> None:
    a = start("a", held(0), held(1))
    b = start("b", held(2), held(3))
    announce(a, b)
    for node in (a, b):
        [page] = scan_pages(node)
        assert entries(page) == ALL_ROWS
        assert [(s.partition, s.served_by, s.offset) for s in page[0].sources] == [
            (0, "a", OFFSET), (1, "a", OFFSET), (2, "b", OFFSET), (3, "b", OFFSET)
        ]  # fmt: skip
    [page] = scan_pages(a, prefix=b"key-1")
    assert entries(page) == [row for row in ALL_ROWS if row[0].startswith(b"key-1")]
    [page] = scan_pages(a, start=b"key-05", end=b"key-12", partitions=[1, 2])
    assert entries(page) == [
        row for row in ALL_ROWS if b"key-05" <= row[0] < b"key-12" and row[2] in (1, 2)
    ]


def test_scan_cap_ends_with_a_page_token_and_continuing_gives_the_rest(
    start: Callable[..., Node],
) -> None:
    limits = Limits(scan_cap=7, scan_batch_rows=3)
    a = start("a", held(0), held(1), limits=limits)
    b = start("b", held(2), held(3), limits=limits)
    announce(a, b)
    pages = scan_pages(a)
    assert len(pages) == -(-len(ROWS) // 7)
    for page in pages[:-1]:
        assert len(entries(page)) == 7
        assert all(not m.next_page_token for m in page[:-1]) and page[-1].next_page_token
    assert [row for page in pages for row in entries(page)] == ALL_ROWS
    # a limit below the cap pages the same way, from either member
    pages = scan_pages(b, limit=5)
    assert [len(entries(page)) for page in pages] == [5] * 8
    assert [row for page in pages for row in entries(page)] == ALL_ROWS
    over = pb.ScanRequest(table=TABLE, limit=8)
    error = failure(lambda: list(a.stub.Scan(over, timeout=TIMEOUT)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit" in error.details()


def test_scan_through_a_member_with_a_larger_cap_than_another(
    start: Callable[..., Node],
) -> None:
    a = start("a", held(0), held(1), limits=Limits(scan_cap=12))
    b = start("b", held(2), held(3), limits=Limits(scan_cap=5))
    announce(a, b)
    pages = scan_pages(a)
    assert all(len(entries(page)) <= 12 for page in pages)
    assert [row for page in pages for row in entries(page)] == ALL_ROWS


def test_scan_messages_hold_at_most_scan_batch_rows(start: Callable[..., Node]) -> None:
    limits = Limits(scan_batch_rows=3)
    a = start("a", held(0), held(1), limits=limits)
    b = start("b", held(2), held(3), limits=limits)
    announce(a, b)
    [page] = scan_pages(a)
    assert len(page) == -(-len(ROWS) // 3)
    assert all(len(m.entries) <= 3 for m in page)
    assert len(page[0].sources) == PARTITIONS and not any(m.sources for m in page[1:])
    assert entries(page) == ALL_ROWS


def _later(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_min_offsets_wait_until_the_copy_applied_them(start: Callable[..., Node]) -> None:
    node = start("a", *(held(p) for p in range(PARTITIONS)))
    table = node.table
    assert table is not None
    key = key_in(1)

    def apply_table_write() -> None:
        with table.lock:
            table.rows[key] = b"new"
        table.change(1, applied_offset=OFFSET + 3)  # applied offsets up to OFFSET + 2

    timer = _later(0.2, apply_table_write)
    response = get(node, key, pb.ReadOptions(min_offsets={1: OFFSET + 2}))
    timer.join(TIMEOUT)
    assert (response.value, response.offset) == (b"new", OFFSET + 3)

    # an input topic's offset: the processed position must pass it
    table.processed[(1, INPUT)] = 5

    def process_input() -> None:
        with table.lock:
            table.rows[key] = b"newer"
            table.processed[(1, INPUT)] = 8

    timer = _later(0.2, process_input)
    options = pb.ReadOptions(min_offsets={1: 7}, min_offsets_topic=INPUT)
    assert get(node, key, options).value == b"newer"
    timer.join(TIMEOUT)

    options = pb.ReadOptions(min_offsets={1: 1_000})
    error = failure(lambda: get(node, key, options, timeout=0.5))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_min_offsets_of_a_topic_that_is_not_an_input_are_refused_at_once(
    start: Callable[..., Node],
) -> None:
    owner = start("owner", held(1))
    options = pb.ReadOptions(min_offsets={1: 3}, min_offsets_topic="not-an-input")
    error = failure(lambda: get(owner, key_in(1), options, timeout=60))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        f"options.min_offsets_topic: 'not-an-input' is not an input of the group writing "
        f"{TABLE!r} (inputs: [{INPUT!r}]); pass one of them, or none for offsets of the table "
        "topic"
    )


def test_an_internal_failure_is_internal_without_its_text(
    start: Callable[..., Node], caplog: pytest.LogCaptureFixture
) -> None:
    node = start("owner", held(0), held(1))
    assert node.table is not None

    def broken(*args: object) -> Any:
        raise RuntimeError("secret internals")

    node.table.read = broken  # type: ignore[method-assign]
    node.table.items = broken  # type: ignore[method-assign]
    for call in (
        lambda: get(node, key_in(1)),
        lambda: node.stub.GetMany(
            pb.GetManyRequest(table=TABLE, keys=[key_in(1)]), timeout=TIMEOUT
        ),
        lambda: list(node.stub.Scan(pb.ScanRequest(table=TABLE, partitions=[1]), timeout=TIMEOUT)),
    ):
        error = failure(call)
        assert error.code() == grpc.StatusCode.INTERNAL
        assert "secret" not in (error.details() or "")
        assert "failed on owner with an internal error (in its log)" in (error.details() or "")
    assert "secret internals" in caplog.text
    del node.table.read, node.table.items  # the class's own methods again
    assert get(node, key_in(1)).value == ROWS[key_in(1)]  # the server goes on answering


def test_min_offsets_of_an_input_topic_are_left_to_the_active_owner(
    start: Callable[..., Node],
) -> None:
    owner = start("owner", held(1))
    standby = start("standby", held(1, "standby"))
    announce(owner, standby)
    assert owner.table is not None
    owner.table.processed[(1, INPUT)] = 4
    options = pb.ReadOptions(min_offsets={1: 3}, min_offsets_topic=INPUT)
    assert get(standby, key_in(1), options).served_by == "owner"
    assert get(standby, key_in(1)).served_by == "standby"


def health(node: Node, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(node.channel)
    request = health_pb2.HealthCheckRequest(service=service)
    status: int = stub.Check(request, timeout=TIMEOUT).status
    return status


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_health_is_not_serving_while_a_partition_recovers(start: Callable[..., Node]) -> None:
    node = start("a", held(0), held(1, recovering=True))
    assert node.table is not None
    assert health(node) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert health(node, LIVENESS) == health_pb2.HealthCheckResponse.SERVING  # not restarted
    time.sleep(0.5)  # some health checks of the server ran: still recovering
    assert health(node) == health_pb2.HealthCheckResponse.NOT_SERVING
    node.table.change(1, state="running")
    wait_for(lambda: health(node) == health_pb2.HealthCheckResponse.SERVING, "SERVING")
    node.table.change(0, state="recovering")
    wait_for(lambda: health(node) == health_pb2.HealthCheckResponse.NOT_SERVING, "NOT_SERVING")


def test_a_forwarded_request_is_not_forwarded_again(start: Callable[..., Node]) -> None:
    a = start("a", held(0), held(1))
    b = start("b", held(2), held(3))
    announce(a, b)
    marker = ((FORWARDED_BY, "b"),)
    error = failure(lambda: get(a, key_in(2), metadata=marker))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "not forwarded again" in error.details()
    assert get(a, key_in(0), metadata=marker).served_by == "a"


def test_bearer_token_is_required_and_forwarded(start: Callable[..., Node]) -> None:
    security = ServerSecurity(token="s3cret")
    a = start("a", held(0), held(1), security=security)
    b = start("b", held(2), held(3), security=security)
    announce(a, b)
    error = failure(lambda: get(a, key_in(0)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    wrong = (("authorization", "Bearer guess"),)
    assert failure(lambda: get(a, key_in(0), metadata=wrong)).code() == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    token = (("authorization", "Bearer s3cret"),)
    assert get(a, key_in(0), metadata=token).served_by == "a"
    assert get(a, key_in(3), metadata=token).served_by == "b"  # forwarded with the token
    # health (like reflection) is open without a token, for probes
    wait_for(lambda: health(a) == health_pb2.HealthCheckResponse.SERVING, "SERVING")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.GetRequest(table="", key=b"k"), "table"),
        (pb.GetRequest(table=TABLE, key=b"x" * 9), "key"),
        (pb.GetRequest(table=TABLE, key=b"k", options=pb.ReadOptions(max_lag=-1)), "max_lag"),
        (
            pb.GetRequest(table=TABLE, key=b"k", options=pb.ReadOptions(min_offsets={4: 1})),
            "min_offsets",
        ),
        (pb.GetManyRequest(table=TABLE, keys=[b"a", b"b", b"c", b"d"]), "keys"),
        (pb.ScanRequest(table=TABLE, limit=6), "limit"),
        (pb.ScanRequest(table=TABLE, partitions=[4]), "partitions"),
        (pb.ScanRequest(table=TABLE, start=b"b", end=b"a"), "end"),
        (pb.ScanRequest(table=TABLE, page_token="not a token"), "page_token"),
    ],
)
def test_malformed_requests_are_invalid_argument_naming_the_field(
    start: Callable[..., Node], request_: Any, field: str
) -> None:
    limits = Limits(max_key_bytes=8, max_keys=3, scan_cap=5)
    node = start("a", *(held(p) for p in range(PARTITIONS)), limits=limits)
    method = type(request_).__name__.removesuffix("Request")
    error = failure(lambda: list_or_value(getattr(node.stub, method)(request_, timeout=TIMEOUT)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details()


def list_or_value(result: Any) -> Any:
    return list(result) if isinstance(result, Iterator) else result


def test_unknown_table_is_not_found_naming_the_known_ones(start: Callable[..., Node]) -> None:
    node = start("a", held(0))
    error = failure(lambda: node.stub.Get(pb.GetRequest(table="nope", key=b"k"), timeout=TIMEOUT))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "'nope'" in error.details() and TABLE in error.details()


def test_page_token_of_another_scan_is_refused(start: Callable[..., Node]) -> None:
    node = start("a", *(held(p) for p in range(PARTITIONS)))
    request = pb.ScanRequest(table=TABLE, prefix=b"key-1", limit=2)
    first = list(node.stub.Scan(request, timeout=TIMEOUT))
    token = first[-1].next_page_token
    assert token
    other = pb.ScanRequest(table=TABLE, prefix=b"key-2", page_token=token)
    error = failure(lambda: list(node.stub.Scan(other, timeout=TIMEOUT)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token belongs to another scan" in error.details()


def test_members_forwarding_to_each_other_under_load_do_not_starve(
    start: Callable[..., Node],
) -> None:
    """More calls than worker threads on two members that forward to each other: every
    forwarded call still gets a thread (none waits behind calls that wait for it)."""
    limits = Limits(workers=2, max_watchers=1)
    a = start("a", held(0), held(1), limits=limits)
    b = start("b", held(2), held(3), limits=limits)
    announce(a, b)
    calls = [
        (node, key)
        for node, partitions in ((a, (2, 3)), (b, (0, 1)))
        for key in ROWS
        if part(key) in partitions
    ]
    futures = [
        node.stub.Get.future(pb.GetRequest(table=TABLE, key=key), timeout=TIMEOUT)
        for node, key in calls
    ]
    assert [f.result().value for f in futures] == [ROWS[key] for _, key in calls]


def gated_reads(table: FakeTable) -> tuple[threading.Event, threading.Semaphore]:
    """Makes every read of ``table`` wait for the returned event; the semaphore is released
    once per read that started waiting."""
    gate, entered = threading.Event(), threading.Semaphore(0)
    read = table.read

    def gated(partition: int, keys: Sequence[bytes]) -> tuple[list[bytes | None], int]:
        entered.release()
        assert gate.wait(TIMEOUT)
        return read(partition, keys)

    table.read = gated  # type: ignore[method-assign]
    return gate, entered


def test_calls_over_max_concurrent_rpcs_are_resource_exhausted(
    start: Callable[..., Node],
) -> None:
    node = start("a", held(0), held(1), limits=Limits(max_concurrent_rpcs=2, max_watchers=1))
    assert node.table is not None
    gate, entered = gated_reads(node.table)
    held_calls = [node.stub.Get.future(pb.GetRequest(table=TABLE, key=key_in(0))) for _ in "ab"]
    for _ in held_calls:
        assert entered.acquire(timeout=TIMEOUT)
    error = failure(lambda: get(node, key_in(1)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    gate.set()
    assert [call.result(timeout=TIMEOUT).value for call in held_calls] == [ROWS[key_in(0)]] * 2
    assert get(node, key_in(1)).value == ROWS[key_in(1)]  # a slot is free again


def test_a_request_over_max_request_bytes_is_refused(start: Callable[..., Node]) -> None:
    node = start("a", held(0), held(1), limits=Limits(max_request_bytes=4096))
    small = pb.GetManyRequest(table=TABLE, keys=[key_in(0)] * 10)
    assert [r.value for r in node.stub.GetMany(small, timeout=TIMEOUT).results] == [
        ROWS[key_in(0)]
    ] * 10
    big = pb.GetManyRequest(table=TABLE, keys=[b"k" * 500] * 10)  # over 4 KiB
    error = failure(lambda: node.stub.GetMany(big, timeout=TIMEOUT))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_stop_is_not_serving_at_once_and_finishes_the_calls_in_flight(
    start: Callable[..., Node],
) -> None:
    node = start("a", held(0), held(1))
    assert node.table is not None
    wait_for(lambda: health(node) == health_pb2.HealthCheckResponse.SERVING, "SERVING")
    gate, entered = gated_reads(node.table)
    in_flight = node.stub.Get.future(pb.GetRequest(table=TABLE, key=key_in(1)))
    assert entered.acquire(timeout=TIMEOUT)
    stopping = threading.Thread(target=node.server.stop, kwargs={"grace": 5.0, "drain": 0.5})
    stopping.start()
    wait_for(lambda: health(node) == health_pb2.HealthCheckResponse.NOT_SERVING, "NOT_SERVING")
    gate.set()
    assert in_flight.result(timeout=TIMEOUT).value == ROWS[key_in(1)]
    stopping.join(TIMEOUT)
    assert not stopping.is_alive()
    error = failure(lambda: get(node, key_in(1), timeout=1))
    assert error.code() == grpc.StatusCode.UNAVAILABLE  # stopped: nothing listens


def health_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the servers logged about their health, in order."""
    return [r.getMessage() for r in caplog.records if " health: " in r.getMessage()]


def test_ready_max_lag_bounds_serving_by_the_partitions_lag(
    start: Callable[..., Node], caplog: pytest.LogCaptureFixture
) -> None:
    """Each change of health, and each new reason for NOT_SERVING, is logged once."""
    caplog.set_level("INFO", logger="viewsvc.server")
    node = start("a", held(0, lag=3), held(1), ready_max_lag=5)
    assert node.table is not None
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    wait_for(lambda: health(node) == serving, "SERVING at lag 3 <= 5")
    node.table.change(0, lag=6)
    wait_for(lambda: health(node) == not_serving, "NOT_SERVING at lag 6 > 5")
    node.table.change(0, lag=-1)
    time.sleep(0.5)  # several health checks ran: an unknown lag is not within the bound
    assert health(node) == not_serving
    node.table.change(0, lag=5)
    wait_for(lambda: health(node) == serving, "SERVING at lag 5")
    assert health_log(caplog) == [
        "a health: SERVING",
        f"a health: NOT_SERVING, partition 0 of {TABLE} is over 5 offsets behind",
        f"a health: NOT_SERVING, the lag of partition 0 of {TABLE} is unknown",
        "a health: SERVING",
    ]


def test_health_is_not_serving_while_brokers_are_unreachable_past_the_bound(
    start: Callable[..., Node], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="viewsvc.server")
    node = start("a", held(0), held(1), unreachable_bound=10.0)
    assert node.table is not None
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    wait_for(lambda: health(node) == serving, "SERVING with brokers reachable")
    node.table.unreachable = 9.5
    time.sleep(0.5)  # several health checks ran: within the bound, it still serves
    assert health(node) == serving
    node.table.unreachable = 10.5
    wait_for(lambda: health(node) == not_serving, "NOT_SERVING past the bound")
    node.table.unreachable = 0.0
    wait_for(lambda: health(node) == serving, "SERVING once a broker is back")
    assert health_log(caplog) == [
        "a health: SERVING",
        "a health: NOT_SERVING, no broker connection for more than 10 s (the unreachable bound)",
        "a health: SERVING",
    ]


def test_a_router_is_not_serving_while_its_membership_is_cut_off_past_the_bound(
    start: Callable[..., Node],
) -> None:
    """A router holds no table: the membership's follower is its only broker connection."""
    node = start("router", unreachable_bound=10.0)
    assert node.table is None
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    wait_for(lambda: health(node) == serving, "SERVING with brokers reachable")
    node.members.unreachable = 10.5
    wait_for(lambda: health(node) == not_serving, "NOT_SERVING past the bound")
    node.members.unreachable = 0.0
    wait_for(lambda: health(node) == serving, "SERVING once a broker is back")


def test_the_unreachable_bound_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="unreachable_bound must be positive seconds, got 0"):
        TableServer("a", tables=[], membership=None, listen="127.0.0.1:0",  # type: ignore[arg-type]
                    unreachable_bound=0)  # fmt: skip


def test_get_many_sends_one_request_per_holder_in_parallel(start: Callable[..., Node]) -> None:
    """Each remote holder gets one GetMany for all its keys, and both are in flight at once:
    their reads wait for each other, which sequential calls would never get past."""
    router = start("router")
    b = start("b", held(0), held(1))
    c = start("c", held(2), held(3))
    announce(router, b, c)
    both = threading.Barrier(2, timeout=TIMEOUT)
    reads: list[tuple[str, int, int]] = []
    for node in (b, c):
        assert node.table is not None
        read = node.table.read

        def waiting(
            partition: int, keys: Sequence[bytes], read: Any = read, name: str = node.member_id
        ) -> tuple[list[bytes | None], int]:
            reads.append((name, partition, len(keys)))
            if partition in (0, 2):  # one read per holder waits for the other holder's
                both.wait()
            return read(partition, keys)

        node.table.read = waiting  # type: ignore[method-assign]
    keys = [k for p in range(PARTITIONS) for k in ROWS if part(k) == p]
    request = pb.GetManyRequest(table=TABLE, keys=keys, options=ANY)
    results = router.stub.GetMany(request, timeout=TIMEOUT).results
    assert [(r.key, r.value) for r in results] == [(k, ROWS[k]) for k in keys]
    by_holder = {(name, p): n for name, p, n in reads}
    assert by_holder == {
        (holder, p): sum(1 for k in keys if part(k) == p)
        for holder, ps in (("b", (0, 1)), ("c", (2, 3)))
        for p in ps
    }
    assert len(reads) == PARTITIONS  # one read per partition: one GetMany per holder


def test_min_offsets_at_the_applied_offset_answer_and_one_past_waits(
    start: Callable[..., Node],
) -> None:
    node = start("a", held(0), held(1))  # applied_offset OFFSET: offsets < OFFSET applied
    key = key_in(1)
    reached = pb.ReadOptions(min_offsets={1: OFFSET - 1})
    assert get(node, key, reached).offset == OFFSET
    ahead = pb.ReadOptions(min_offsets={1: OFFSET})
    error = failure(lambda: get(node, key, ahead, timeout=0.5))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
