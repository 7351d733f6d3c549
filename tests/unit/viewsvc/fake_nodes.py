"""Fake deployment nodes for the client tests: real gRPC servers on 127.0.0.1 port 0 serving a
dict-backed table (TableService) and the fake membership (DiscoveryService).

Each node announces the partitions it was given; every node serves every key (as a real node
would after forwarding), and counts its calls, so tests see where the client sent a read.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from discovery.model import KIND_VALUES, ROLE_VALUES, STATE_VALUES, from_announcement
from discovery.routing import locate
from discovery.v1 import discovery_pb2, discovery_pb2_grpc
from goka.partitioner import murmur2
from viewsvc.v1 import table_pb2, table_pb2_grpc
from viewsvc.wire.scan_pages import decode_page_token, encode_page_token, request_fingerprint

TABLE = "clicks-table"
PARTITIONS = 4
OFFSET = 10
BATCH = 2


def key_in(partition: int, prefix: str = "key") -> bytes:
    """The first ``<prefix>-<n>`` key that lives in ``partition``."""
    n = 0
    while murmur2(f"{prefix}-{n}".encode(), PARTITIONS) != partition:
        n += 1
    return f"{prefix}-{n}".encode()


@dataclass(frozen=True)
class Held:
    partition: int
    kind: str = "active"
    state: str = "running"
    lag: int = 0


class FakeNode:
    """One node; ``unavailable`` makes its table calls answer UNAVAILABLE, ``delay`` slows
    them, ``token`` requires a bearer token."""

    def __init__(
        self,
        cluster: Cluster,
        member_id: str,
        held: list[Held],
        role: str,
        token: str | None,
        credentials: Any,
    ) -> None:
        self.cluster = cluster
        self.member_id = member_id
        self.held = held
        self.role = role
        self.token = token
        self.unavailable = False
        self.delay = 0.0
        self.break_scans_after: int | None = None
        """Scan streams end with UNAVAILABLE after this many messages (a node going away)."""
        self.calls: Counter[str] = Counter()
        self.metadata: list[dict[str, str]] = []
        self.requests: list[Any] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        table_pb2_grpc.add_TableServiceServicer_to_server(_Tables(self), self._server)
        discovery_pb2_grpc.add_DiscoveryServiceServicer_to_server(_Discovery(self), self._server)
        if credentials is None:
            port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self.endpoint = f"localhost:{port}" if credentials else f"127.0.0.1:{port}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(0).wait(5)

    def announcement(self) -> discovery_pb2.Announcement:
        return announcement(self.member_id, self.endpoint, self.held, self.role)

    def enter(self, method: str, request: Any, context: Any) -> None:
        """Records the call and applies auth, the table check, ``unavailable`` and ``delay``."""
        self.calls[method] += 1
        self.requests.append(request)
        metadata = {k: v for k, v in context.invocation_metadata()}
        self.metadata.append(metadata)
        if self.token is not None and metadata.get("authorization") != f"Bearer {self.token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.member_id} is draining")
        if self.delay:
            threading.Event().wait(self.delay)
        if getattr(request, "table", TABLE) != TABLE:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown table {request.table!r}")


def announcement(
    member_id: str, endpoint: str, held: list[Held], role: str = "processor"
) -> discovery_pb2.Announcement:
    """The announcement of a member holding ``held`` of the fake table."""
    emitted = Timestamp()
    emitted.FromDatetime(datetime.now(UTC))
    partitions = [
        discovery_pb2.PartitionHolding(
            partition=h.partition,
            kind=KIND_VALUES[h.kind],
            state=STATE_VALUES[h.state],
            applied_offset=OFFSET,
            lag=h.lag,
        )
        for h in held
    ]
    return discovery_pb2.Announcement(
        member_id=member_id,
        role=ROLE_VALUES[role],
        endpoint=endpoint,
        generation=1,
        sequence=1,
        heartbeat_interval=Duration(seconds=1),
        emitted_at=emitted,
        tables=[
            discovery_pb2.TableHoldings(
                topic=TABLE,
                partitioner="murmur2",
                partition_count=PARTITIONS,
                key_codec="string",
                value_codec="int64",
                partitions=partitions,
            )
        ]
        if held
        else [],
    )


class Cluster:
    """The nodes of one fake deployment, sharing one table's data and one membership."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.nodes: list[FakeNode] = []
        self.hide_members = False
        self.changed = threading.Condition()
        self.version = 0

    def add(
        self,
        member_id: str,
        held: list[Held],
        *,
        role: str = "processor",
        token: str | None = None,
        credentials: Any = None,
    ) -> FakeNode:
        """A started node; ``credentials`` (``grpc.ssl_server_credentials``) serve TLS."""
        node = FakeNode(self, member_id, held, role, token, credentials)
        with self.changed:
            self.nodes.append(node)
            self.version += 1
            self.changed.notify_all()
        return node

    def members(self) -> list[discovery_pb2.Member]:
        if self.hide_members:
            return []
        heard = Timestamp()
        heard.FromDatetime(datetime.now(UTC))
        return [
            discovery_pb2.Member(announcement=node.announcement(), last_heard=heard)
            for node in sorted(self.nodes, key=lambda n: n.member_id)
        ]

    def close(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Discovery(discovery_pb2_grpc.DiscoveryServiceServicer):
    def __init__(self, node: FakeNode) -> None:
        self.node = node

    def Members(self, request: Any, context: Any) -> discovery_pb2.MembersResponse:
        self.node.calls["Members"] += 1
        return discovery_pb2.MembersResponse(members=self.node.cluster.members())

    def WatchMembers(self, request: Any, context: Any) -> Any:
        self.node.calls["WatchMembers"] += 1
        cluster = self.node.cluster
        seen = -1
        while context.is_active():
            with cluster.changed:
                if cluster.version == seen:
                    cluster.changed.wait(0.05)
                    continue
                seen = cluster.version
            yield discovery_pb2.WatchMembersResponse(members=cluster.members())


class _Tables(table_pb2_grpc.TableServiceServicer):
    def __init__(self, node: FakeNode) -> None:
        self.node = node

    def _get(self, key: bytes) -> table_pb2.GetResponse:
        value = self.node.cluster.data.get(key)
        return table_pb2.GetResponse(
            found=value is not None,
            value=value or b"",
            partition=murmur2(key, PARTITIONS),
            offset=OFFSET,
            served_by=self.node.member_id,
            key=key,
        )

    def Get(self, request: Any, context: Any) -> table_pb2.GetResponse:
        self.node.enter("Get", request, context)
        return self._get(request.key)

    def GetMany(self, request: Any, context: Any) -> table_pb2.GetManyResponse:
        self.node.enter("GetMany", request, context)
        return table_pb2.GetManyResponse(results=[self._get(key) for key in request.keys])

    def Scan(self, request: Any, context: Any) -> Any:
        self.node.enter("Scan", request, context)
        fingerprint = request_fingerprint(
            request.start, request.end, request.prefix, request.partitions
        )
        after = (
            decode_page_token(request.table, fingerprint, request.page_token)
            if request.page_token
            else None
        )
        rows = [
            (key, value)
            for key, value in sorted(self.node.cluster.data.items())
            if key.startswith(request.prefix)
            and key >= request.start
            and (not request.end or key < request.end)
            and (after is None or key > after)
        ]
        limit = request.limit or len(rows)
        page, left = rows[:limit], rows[limit:]
        sources = [
            table_pb2.PartitionSource(partition=p, served_by=self.node.member_id, offset=OFFSET)
            for p in range(PARTITIONS)
        ]
        batches = [page[i : i + BATCH] for i in range(0, len(page), BATCH)] or [[]]
        for i, batch in enumerate(batches):
            if i == self.node.break_scans_after:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.node.member_id} went away")
            last = i == len(batches) - 1
            yield table_pb2.ScanResponse(
                entries=[
                    table_pb2.Entry(key=k, value=v, partition=murmur2(k, PARTITIONS))
                    for k, v in batch
                ],
                next_page_token=(
                    encode_page_token(request.table, fingerprint, page[-1][0])
                    if last and left
                    else ""
                ),
                sources=sources if i == 0 else [],
            )

    def Locate(self, request: Any, context: Any) -> table_pb2.LocateResponse:
        self.node.enter("Locate", request, context)
        now = datetime.now(UTC)
        members = [from_announcement(n.announcement(), None, now) for n in self.node.cluster.nodes]
        location = locate(members, request.table, request.key)
        return table_pb2.LocateResponse(
            table=_table_info(),
            partition=location.partition,
            replicas=[
                table_pb2.Replica(
                    member_id=o.member_id,
                    endpoint=o.endpoint,
                    role="processor",
                    kind=o.kind,
                    state=o.state,
                    applied_offset=o.applied_offset,
                    lag=o.lag,
                )
                for o in location.owners
            ],
        )

    def ListTables(self, request: Any, context: Any) -> table_pb2.ListTablesResponse:
        self.node.enter("ListTables", request, context)
        return table_pb2.ListTablesResponse(tables=[_table_info()])


def _table_info() -> table_pb2.TableInfo:
    return table_pb2.TableInfo(
        name=TABLE,
        key_codec="string",
        value_codec="int64",
        partitioner="murmur2",
        partition_count=PARTITIONS,
        running_partitions=PARTITIONS,
    )
