"""TableService.Watch on in-process TableServers over fake tables whose changes go through
real change feeds: what a stream sends, in which order, from where it resumes, and how it
ends."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from click.testing import CliRunner

from tests.unit.viewsvc.table_servers import (
    PARTITIONS,
    ROWS,
    TABLE,
    TIMEOUT,
    FakeTable,
    Node,
    announce,
    held,
    key_in,
    part,
    servers,
)
from viewsvc.cli.main import cli
from viewsvc.client import Client
from viewsvc.server.limits import Limits
from viewsvc.server.watch_service import RESUME_OFFSETS
from viewsvc.v1 import table_pb2 as pb

ALL = [held(p) for p in range(PARTITIONS)]


@pytest.fixture
def start() -> Iterator[Callable[..., Node]]:
    with servers() as start_node:
        yield start_node


def changes_of(response: pb.WatchResponse) -> list[tuple[bytes, bytes | None, int, int]]:
    return [
        (c.key, None if c.deleted else c.value, c.partition, c.offset) for c in response.changes
    ]


class Stream:
    """A Watch call read in a thread, keeping every message."""

    def __init__(self, stub: Any, request: pb.WatchRequest) -> None:
        self.call = stub.Watch(request, timeout=TIMEOUT * 4)
        self.first: pb.WatchResponse = next(self.call)
        self.messages: list[pb.WatchResponse] = []
        self.error: grpc.RpcError | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                with self._cond:
                    self.messages.append(message)
                    self._cond.notify_all()
        except grpc.RpcError as exc:
            with self._cond:
                self.error = exc
                self._cond.notify_all()

    def changes(self) -> list[tuple[bytes, bytes | None, int, int]]:
        with self._cond:
            return [c for m in self.messages for c in changes_of(m)]

    def wait(self, condition: Callable[[], bool]) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: condition() or self.error is not None, TIMEOUT), (
                "timed out"
            )

    def ended(self) -> grpc.RpcError:
        self._thread.join(TIMEOUT)
        assert self.error is not None, "the stream did not end"
        return self.error

    def close(self) -> None:
        self.call.cancel()
        self._thread.join(TIMEOUT)


def test_changes_of_matching_keys_come_in_offset_order_from_the_current_position(
    start: Callable[..., Node],
) -> None:
    node = start("a", *ALL)
    table = node.table
    assert table is not None
    stream = Stream(node.stub, pb.WatchRequest(table=TABLE, prefix=b"key-1"))
    assert dict(stream.first.positions) == {p: 10 for p in range(PARTITIONS)}
    assert sorted(s.partition for s in stream.first.sources) == list(range(PARTITIONS))
    written = table.write((b"key-10", b"a"), (b"other", b"x"), (b"key-11", None), (b"key-10", b"b"))
    expected = sorted(
        (key, value, partition, offset)
        for partition, records in written.items()
        for key, value, offset in records
        if key.startswith(b"key-1")
    )
    stream.wait(lambda: len(stream.changes()) == len(expected))
    assert sorted(stream.changes()) == expected
    by_partition: dict[int, list[int]] = {}
    for _, _, partition, offset in stream.changes():
        by_partition.setdefault(partition, []).append(offset)
    assert all(offsets == sorted(set(offsets)) for offsets in by_partition.values())
    stream.close()


def test_a_snapshot_is_the_state_at_the_position_that_follows_it(
    start: Callable[..., Node],
) -> None:
    node = start("a", *ALL)
    table = node.table
    assert table is not None
    partition = part(b"key-05")
    stream = Stream(node.stub, pb.WatchRequest(table=TABLE, partitions=[partition], snapshot=True))
    assert dict(stream.first.positions) == {}  # the partition's comes after its rows
    stream.wait(lambda: any(partition in m.positions for m in stream.messages))
    rows = {e.key: e.value for m in stream.messages for e in m.rows}
    assert rows == {k: v for k, v in ROWS.items() if part(k) == partition}
    position = next(m.positions[partition] for m in stream.messages if m.positions)
    assert position == 10
    table.write((b"key-05", b"new"))
    stream.wait(lambda: len(stream.changes()) == 1)
    assert stream.changes() == [(b"key-05", b"new", partition, 10)]
    stream.close()


def test_a_watch_resumes_from_offsets_with_exactly_the_changes_since(
    start: Callable[..., Node],
) -> None:
    node = start("a", *ALL)
    table = node.table
    assert table is not None
    key = key_in(1)
    for i in range(5):
        table.write((key, str(i).encode()))  # offsets 10..14 of partition 1
    stream = Stream(node.stub, pb.WatchRequest(table=TABLE, partitions=[1], from_offsets={1: 12}))
    stream.wait(lambda: len(stream.changes()) == 3)
    assert stream.changes() == [(key, b"2", 1, 12), (key, b"3", 1, 13), (key, b"4", 1, 14)]
    stream.close()


def test_a_watch_from_before_the_history_is_out_of_range(start: Callable[..., Node]) -> None:
    node = start("a", table=FakeTable(ALL, history=2))
    table = node.table
    assert table is not None
    for i in range(5):
        table.write((key_in(0), str(i).encode()))  # offsets 10..14; 13 and 14 are kept
    with pytest.raises(grpc.RpcError) as error:
        next(node.stub.Watch(pb.WatchRequest(table=TABLE, from_offsets={0: 11}), timeout=TIMEOUT))
    assert error.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "from offset 13 here, not from 11" in error.value.details()


def test_a_router_relays_the_holders_changes(start: Callable[..., Node]) -> None:
    a, b = start("a", held(0), held(1)), start("b", held(2), held(3))
    router = start("router")
    announce(a, b, router)
    stream = Stream(router.stub, pb.WatchRequest(table=TABLE))
    assert dict(stream.first.positions) == {p: 10 for p in range(PARTITIONS)}
    assert {s.partition: s.served_by for s in stream.first.sources} == {
        0: "a",
        1: "a",
        2: "b",
        3: "b",
    }
    assert a.table is not None and b.table is not None
    a.table.write((key_in(0), b"x"))
    b.table.write((key_in(3), b"y"))
    stream.wait(lambda: len(stream.changes()) == 2)
    assert sorted(stream.changes()) == [(key_in(0), b"x", 0, 10), (key_in(3), b"y", 3, 10)]
    stream.close()


def test_a_released_partition_ends_the_stream_with_the_offsets_to_resume_from(
    start: Callable[..., Node],
) -> None:
    node = start("a", *ALL)
    table = node.table
    assert table is not None
    stream = Stream(node.stub, pb.WatchRequest(table=TABLE, partitions=[2]))
    table.write((key_in(2), b"v"))
    stream.wait(lambda: len(stream.changes()) == 1)
    table.feeds[2].close("partition 2 is no longer held here")
    error = stream.ended()
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "partition 2 is no longer held here" in error.details()
    assert (RESUME_OFFSETS, "2=11") in error.trailing_metadata()


def test_stopping_the_server_ends_its_watches(start: Callable[..., Node]) -> None:
    node = start("a", *ALL)
    stream = Stream(node.stub, pb.WatchRequest(table=TABLE))
    node.server.stop(grace=1)
    assert stream.ended().code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("request_", "code", "names"),
    [
        (pb.WatchRequest(table="nope"), grpc.StatusCode.NOT_FOUND, "'nope'"),
        (pb.WatchRequest(table=TABLE, partitions=[9]), grpc.StatusCode.INVALID_ARGUMENT, "[9]"),
        (
            pb.WatchRequest(table=TABLE, partitions=[0], from_offsets={1: 3}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "partition 1 is not one of the watched",
        ),
        (
            pb.WatchRequest(table=TABLE, from_offsets={0: -1}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "offset -1",
        ),
        (
            pb.WatchRequest(table=TABLE, options=pb.ReadOptions(min_offsets={0: 1})),
            grpc.StatusCode.INVALID_ARGUMENT,
            "from_offsets",
        ),
    ],
)
def test_bad_requests_are_refused_naming_the_field(
    start: Callable[..., Node], request_: pb.WatchRequest, code: grpc.StatusCode, names: str
) -> None:
    node = start("a", *ALL)
    with pytest.raises(grpc.RpcError) as error:
        next(node.stub.Watch(request_, timeout=TIMEOUT))
    assert error.value.code() == code
    assert names in error.value.details()


def test_watchers_are_bounded_by_configuration(start: Callable[..., Node]) -> None:
    node = start("a", *ALL, limits=Limits(max_watchers=1))
    stream = Stream(node.stub, pb.WatchRequest(table=TABLE))
    with pytest.raises(grpc.RpcError) as error:
        next(node.stub.Watch(pb.WatchRequest(table=TABLE), timeout=TIMEOUT))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_watchers" in error.value.details()
    stream.close()


def test_the_client_resumes_on_another_replica_missing_and_repeating_nothing(
    start: Callable[..., Node],
) -> None:
    """Two nodes hold partition 0 (the active owner and a replica fed the same records); the
    client's node stops mid-stream and the client goes on on the other."""
    first, second = start("a", held(0)), start("b", held(0, "replica"))
    announce(first, second)
    assert first.table is not None and second.table is not None
    key = key_in(0)

    def write(value: bytes) -> None:
        for table in (first.table, second.table):
            assert table is not None
            table.write((key, value))

    with Client([first.endpoint, second.endpoint]) as client:
        changes = client.watch(
            TABLE, keys=[key], from_offsets={0: 10}, reconnect_timeout=TIMEOUT
        )  # from the offset the nodes start at: the stream opens on the first next()
        write(b"1")
        assert next(changes).value == b"1"
        first.server.stop(grace=0)
        write(b"2")
        write(b"3")
        assert [next(changes).value, next(changes).value] == [b"2", b"3"]
        assert changes.positions == {0: 13}
        assert changes.resumed >= 1
        changes.close()


def test_viewsvc_watch_prints_changes_and_the_offsets_to_resume_from(
    start: Callable[..., Node],
) -> None:
    node = start("a", *ALL)
    table = node.table
    assert table is not None
    key = key_in(1)
    table.write((key, b"7"))
    table.write((key, None))
    args = ["watch", "--target", node.endpoint, "--table", TABLE, "--partition", "1"]
    result = CliRunner().invoke(cli, [*args, "--from", "1=10", "--duration", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"1@10\t{key.decode()}\t7",
        f"1@11\t{key.decode()}\t<deleted>",
    ]
    assert result.stderr.strip() == "resume with: --from 1=12"
    as_json = CliRunner().invoke(cli, [*args, "--from", "1=11", "--duration", "1", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        {"key": key.decode(), "value": None, "deleted": True, "partition": 1, "offset": 11,
         "snapshot": False}
    ]  # fmt: skip
    bad = CliRunner().invoke(cli, [*args, "--from", "one=2"])
    assert bad.exit_code == 2 and "is not PARTITION=OFFSET" in bad.output
