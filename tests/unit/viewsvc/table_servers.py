"""In-process TableServers over dict-backed local tables and a hand-made membership, for
the server tests: real gRPC servers on 127.0.0.1 port 0, announced to each other through the
fake membership."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from discovery.model import MemberInfo, PartitionInfo, TableInfo
from goka.changes import Change, ChangeFeed
from goka.local_table import (
    HeldPartition,
    PartitionKind,
    PartitionNotHeld,
    PartitionState,
    TableMeta,
)
from goka.partitioner import murmur2
from viewsvc.server.grpc_server import TableServer
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import open_channel

TABLE = "clicks-table"
INPUT = "clicks"
PARTITIONS = 4
META = TableMeta(TABLE, "string", "int64", "murmur2", PARTITIONS)
TIMEOUT = 5.0
OFFSET = 10
ROWS = {f"key-{i:02d}".encode(): str(i).encode() for i in range(40)}
ANY = pb.ReadOptions(consistency=pb.CONSISTENCY_ANY)
ACTIVE = pb.ReadOptions(consistency=pb.CONSISTENCY_ACTIVE)


def part(key: bytes) -> int:
    return murmur2(key, PARTITIONS)


def key_in(partition: int) -> bytes:
    return next(key for key in ROWS if part(key) == partition)


def held(
    partition: int, kind: PartitionKind = "active", *, recovering: bool = False, lag: int = 0
) -> HeldPartition:
    state: PartitionState = "recovering" if recovering else "running"
    return HeldPartition(partition, kind, state, OFFSET, lag)


class FakeTable:
    """A LocalTable over dicts; tests change partitions, rows and offsets while it serves."""

    def __init__(self, partitions: Iterable[HeldPartition], *, history: int = 1000) -> None:
        self.lock = threading.Lock()
        self.partitions = {h.partition: h for h in partitions}
        self.rows = {k: v for k, v in ROWS.items() if part(k) in self.partitions}
        self.feeds = {
            p: ChangeFeed(p, h.applied_offset, history) for p, h in self.partitions.items()
        }
        self.processed: dict[tuple[int, str], int] = {}
        self.unreachable = 0.0
        """What ``unreachable_for`` answers: tests play a broker outage with it."""

    @property
    def meta(self) -> TableMeta | None:
        return META

    def held(self) -> dict[int, HeldPartition]:
        with self.lock:
            return dict(self.partitions)

    def read(self, partition: int, keys: Sequence[bytes]) -> tuple[list[bytes | None], int]:
        with self.lock:
            if partition not in self.partitions:
                raise PartitionNotHeld(f"partition {partition} is not held")
            values = [self.rows.get(key) for key in keys]
            return values, self.partitions[partition].applied_offset

    def items(
        self, partition: int, start: bytes | None, end: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        with self.lock:
            rows = sorted((k, v) for k, v in self.rows.items() if part(k) == partition)
        for key, value in rows:
            if (start is None or key >= start) and (end is None or key < end):
                yield key, value

    input_topics = frozenset({INPUT})

    def processed_offset(self, partition: int, topic: str) -> int | None:
        with self.lock:
            return self.processed.get((partition, topic))

    def unreachable_for(self) -> float:
        return self.unreachable

    def changes(self, partition: int) -> ChangeFeed | None:
        return self.feeds.get(partition)

    def write(self, *changes: tuple[bytes, bytes | None]) -> dict[int, list[Change]]:
        """Apply ``changes`` (key, value or None) at the next offsets of their partitions,
        through the partitions' feeds, as a holder applies its records; returns them."""
        by_partition: dict[int, list[Change]] = {}
        for key, value in changes:
            partition = part(key)
            offset = self.partitions[partition].applied_offset + len(
                by_partition.get(partition, [])
            )
            by_partition.setdefault(partition, []).append((key, value, offset))
        for partition, records in by_partition.items():
            writes = {key: value for key, value, _ in records}
            self.feeds[partition].apply(_Rows(self, partition), writes, records[-1][2] + 1, records)
        return by_partition

    def change(self, partition: int, **changes: Any) -> None:
        with self.lock:
            self.partitions[partition] = dataclasses.replace(self.partitions[partition], **changes)


class _Rows:
    """A FakeTable's partition as the store a feed writes."""

    def __init__(self, table: FakeTable, partition: int) -> None:
        self._table = table
        self._partition = partition

    def apply(self, writes: Mapping[bytes, bytes | None], next_offset: int) -> None:
        table = self._table
        with table.lock:
            for key, value in writes.items():
                if value is None:
                    table.rows.pop(key, None)
                else:
                    table.rows[key] = value
            held = table.partitions[self._partition]
            table.partitions[self._partition] = dataclasses.replace(
                held, applied_offset=next_offset
            )


class FakeMembers:
    """What TableServer reads of a membership, over a list the test sets."""

    def __init__(self) -> None:
        self.list: list[MemberInfo] = []
        self.unreachable = 0.0

    def members(self) -> list[MemberInfo]:
        return list(self.list)

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None

    def unreachable_for(self) -> float:
        return self.unreachable


@dataclass
class Node:
    """A started TableServer, its membership, and a stub to call it."""

    member_id: str
    server: TableServer
    table: FakeTable | None
    members: FakeMembers
    channel: grpc.Channel
    stub: Any

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def info(self, lag: Mapping[int, int] | None = None) -> MemberInfo:
        """This node as an announcement would show it; ``lag`` overrides announced lags."""
        partitions = tuple(
            PartitionInfo(p, h.kind, h.state, h.applied_offset, (lag or {}).get(p, h.lag))
            for p, h in sorted(self.table.held().items() if self.table else [])
        )
        now = datetime.now(UTC)
        return MemberInfo(
            member_id=self.member_id,
            role="processor" if self.table else "router",
            endpoint=self.endpoint,
            group="clicks" if self.table else "",
            generation=1,
            sequence=1,
            heartbeat=1.0,
            emitted_at=now,
            last_heard=now,
            tables=(TableInfo(TABLE, "murmur2", PARTITIONS, "string", "int64", partitions),)
            if self.table
            else (),
        )


@contextlib.contextmanager
def servers() -> Iterator[Callable[..., Node]]:
    """``start(member_id, *partitions, table=None, **options)`` starts a TableServer
    holding ``partitions`` of a FakeTable (or ``table``; neither: a router), with
    TableServer ``options``; every one is stopped on exit (see the ``start`` fixture)."""
    nodes: list[Node] = []

    def start_node(
        member_id: str,
        *partitions: HeldPartition,
        table: FakeTable | None = None,
        **options: Any,
    ) -> Node:
        table = table or (FakeTable(partitions) if partitions else None)
        members = FakeMembers()
        server = TableServer(
            member_id,
            tables=[table] if table else [],
            membership=members,
            listen="127.0.0.1:0",
            **options,
        ).start()
        channel = open_channel(f"127.0.0.1:{server.port}")
        # gRPC's start() does not promise that the first connection succeeds at once: a call
        # that comes too soon fails UNAVAILABLE (connection refused) without waiting
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = table_pb2_grpc.TableServiceStub(channel)  # type: ignore[no-untyped-call]
        node = Node(member_id, server, table, members, channel, stub)
        nodes.append(node)
        return node

    try:
        yield start_node
    finally:
        for node in nodes:
            node.channel.close()
            node.server.stop(grace=0)


def announce(*nodes: Node, lag: Mapping[str, Mapping[int, int]] | None = None) -> None:
    """Every node learns every node (itself included), as from the discovery topic."""
    infos = [node.info((lag or {}).get(node.member_id)) for node in nodes]
    for node in nodes:
        node.members.list = infos


def get(node: Node, key: bytes, options: pb.ReadOptions = ANY, **kw: Any) -> pb.GetResponse:
    request = pb.GetRequest(table=TABLE, key=key, options=options)
    response: pb.GetResponse = node.stub.Get(request, timeout=kw.pop("timeout", TIMEOUT), **kw)
    return response


def failure(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value
