"""DiscoveryService on a real gRPC server (port 0) over a hand-made membership, and the
conversion of members back to protobuf."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from discovery.model import MemberInfo, PartitionInfo, TableInfo, from_announcement
from discovery.v1 import discovery_pb2 as pb
from discovery.v1 import discovery_pb2_grpc
from viewsvc.server.discovery_service import DiscoveryServicer, to_member
from viewsvc.server.event_loop import EventLoopThread
from viewsvc.server.grpc_server import bounded_server
from viewsvc.server.limits import Limits
from viewsvc.wire.channels import open_channel

TIMEOUT = 5.0
NOW = datetime(2025, 3, 1, 12, 0, 10, 250_000, tzinfo=UTC)


def table(topic: str, *partitions: PartitionInfo) -> TableInfo:
    return TableInfo(topic, "murmur2", 4, "string", "int64", partitions)


def member(member_id: str, *tables: TableInfo, **kw: Any) -> MemberInfo:
    base = MemberInfo(
        member_id=member_id,
        role="processor",
        endpoint="10.0.0.1:50051",
        group="clicks",
        generation=1_740_000_000_000,
        sequence=17,
        heartbeat=2.5,
        emitted_at=NOW - timedelta(seconds=1),
        last_heard=NOW,
        tables=tables,
    )
    return dataclasses.replace(base, **kw)


CLICKS = member("a", table("clicks-table", PartitionInfo(0, "active", "running", 1042, 0)))
VIEW = member(
    "b",
    table("clicks-table", PartitionInfo(1, "replica", "recovering", -1, -1)),
    table("users-table", PartitionInfo(3, "replica", "running", 7, 2)),
    role="view",
    endpoint="",
)
IDLE = member("c", table("users-table"))  # announces the table, holds no partition of it
ROUTER = member("d", role="router", group="")


class FakeMembership:
    """The two callables a DiscoveryServicer reads, over a list the test changes."""

    def __init__(self, members: list[MemberInfo]) -> None:
        self.list = members
        self.callbacks: list[Callable[[], None]] = []
        self.lock = threading.Lock()

    def members(self) -> list[MemberInfo]:
        return list(self.list)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        with self.lock:
            self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    def change(self, members: list[MemberInfo]) -> None:
        self.list = members
        self.notify()

    def notify(self) -> None:
        with self.lock:
            callbacks = list(self.callbacks)
        for callback in callbacks:
            callback()


@pytest.fixture
def membership() -> FakeMembership:
    return FakeMembership([CLICKS, VIEW, IDLE, ROUTER])


@pytest.fixture
def stopping() -> threading.Event:
    return threading.Event()


@pytest.fixture
def stub(
    membership: FakeMembership, stopping: threading.Event
) -> Iterator[discovery_pb2_grpc.DiscoveryServiceStub]:
    servicer = DiscoveryServicer(
        membership.members, membership.subscribe, stopping, coalesce=0.2, poll=0.2, max_watchers=2
    )
    loop = EventLoopThread("test-discovery")

    async def serve() -> tuple[grpc.aio.Server, int]:
        server = bounded_server(futures.ThreadPoolExecutor(max_workers=4), Limits())
        discovery_pb2_grpc.add_DiscoveryServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = loop.run(serve(), TIMEOUT)
    channel = open_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(TIMEOUT)  # start() does not promise it at once
    try:
        yield discovery_pb2_grpc.DiscoveryServiceStub(channel)  # type: ignore[no-untyped-call]
    finally:
        channel.close()
        loop.run(server.stop(None), TIMEOUT)
        loop.close()


def ids(response: pb.MembersResponse | pb.WatchMembersResponse) -> list[str]:
    return [m.announcement.member_id for m in response.members]


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_members_all(stub: discovery_pb2_grpc.DiscoveryServiceStub) -> None:
    response = stub.Members(pb.MembersRequest(), timeout=TIMEOUT)
    assert ids(response) == ["a", "b", "c", "d"]
    assert response.members[1] == to_member(VIEW)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [("clicks-table", ["a", "b"]), ("users-table", ["b"]), ("unknown-table", [])],
)
def test_members_of_a_table_are_those_holding_its_partitions(
    stub: discovery_pb2_grpc.DiscoveryServiceStub, topic: str, expected: list[str]
) -> None:
    assert ids(stub.Members(pb.MembersRequest(table=topic), timeout=TIMEOUT)) == expected


def test_watch_sends_the_list_then_changes_until_cancelled(
    stub: discovery_pb2_grpc.DiscoveryServiceStub, membership: FakeMembership
) -> None:
    call = stub.WatchMembers(pb.WatchMembersRequest(), timeout=TIMEOUT)
    assert ids(next(call)) == ["a", "b", "c", "d"]
    membership.change([CLICKS, ROUTER])
    assert ids(next(call)) == ["a", "d"]
    # a heartbeat alone is no change; the next message is the next real change
    membership.change([dataclasses.replace(CLICKS, sequence=18, last_heard=NOW), ROUTER])
    membership.change([CLICKS])
    assert ids(next(call)) == ["a"]
    call.cancel()
    with pytest.raises(grpc.RpcError) as info:
        next(call)
    assert info.value.code() == grpc.StatusCode.CANCELLED
    wait_until(lambda: not membership.callbacks)  # the servicer unsubscribed


def test_watch_of_a_table_ignores_changes_of_others(
    stub: discovery_pb2_grpc.DiscoveryServiceStub, membership: FakeMembership
) -> None:
    call = stub.WatchMembers(pb.WatchMembersRequest(table="users-table"), timeout=TIMEOUT)
    assert ids(next(call)) == ["b"]
    membership.change([VIEW, IDLE, ROUTER])  # "a" holds clicks-table only
    moved = table("users-table", PartitionInfo(3, "replica", "running", 9, 0))
    membership.change([dataclasses.replace(VIEW, tables=(moved,))])
    response = next(call)
    assert ids(response) == ["b"]
    assert response.members[0].announcement.tables[0].partitions[0].applied_offset == 9
    call.cancel()


def test_watch_coalesces_a_burst(
    stub: discovery_pb2_grpc.DiscoveryServiceStub, membership: FakeMembership
) -> None:
    call = stub.WatchMembers(pb.WatchMembersRequest(), timeout=TIMEOUT)
    next(call)
    burst = [CLICKS, VIEW, IDLE, ROUTER]
    wait_until(lambda: bool(membership.callbacks))
    for _ in range(3):
        burst = burst[:-1]
        membership.change(burst)  # within the coalescing window: one message
    assert ids(next(call)) == ["a"]
    call.cancel()


def test_watch_ends_unavailable_when_the_server_stops(
    stub: discovery_pb2_grpc.DiscoveryServiceStub, stopping: threading.Event
) -> None:
    call = stub.WatchMembers(pb.WatchMembersRequest(), timeout=TIMEOUT)
    next(call)
    stopping.set()
    with pytest.raises(grpc.RpcError) as info:
        next(call)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in info.value.details()


def test_watches_beyond_the_limit_are_refused_until_one_ends(
    stub: discovery_pb2_grpc.DiscoveryServiceStub,
) -> None:
    first, second = (stub.WatchMembers(pb.WatchMembersRequest(), timeout=TIMEOUT) for _ in "ab")
    next(first)
    next(second)
    refused = stub.WatchMembers(pb.WatchMembersRequest(), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as info:
        next(refused)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_watchers" in info.value.details()
    first.cancel()
    deadline = time.monotonic() + TIMEOUT
    while True:  # the cancelled watch gives its slot back once its loop notices
        again = stub.WatchMembers(pb.WatchMembersRequest(), timeout=TIMEOUT)
        try:
            assert ids(next(again)) == ["a", "b", "c", "d"]
            break
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() < deadline, "the slot never came back"
            time.sleep(0.05)
    again.cancel()
    second.cancel()


@pytest.mark.parametrize("info", [CLICKS, VIEW, IDLE, ROUTER], ids=lambda m: m.member_id)
def test_to_member_round_trips_through_from_announcement(info: MemberInfo) -> None:
    converted = to_member(info)
    assert converted.last_heard.ToDatetime(tzinfo=UTC) == info.last_heard
    assert converted.announcement.heartbeat_interval.ToMilliseconds() == 2500
    again = from_announcement(
        pb.Announcement.FromString(converted.announcement.SerializeToString()),
        info.member_id.encode(),
        info.last_heard,
    )
    assert again == info
