"""TableService: Get, GetMany, Locate and ListTables, answered locally or forwarded one hop
(Scan is in ``_scan_service``)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from discovery import routing
from goka.partitioner import get_partitioner
from viewsvc.server.planner import FORWARDED_BY, Node
from viewsvc.server.scan_service import scan
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import retryable
from viewsvc.wire.read_options import DEFAULTS, ReadFailure, ReadOptions, invalid, parse_options

__all__ = ["TableServicer"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def _answered(method: Callable[[Any, Req, grpc.ServicerContext], Resp]) -> Any:
    """Turns a ReadFailure into the call's status."""

    def handler(self: Any, request: Req, context: grpc.ServicerContext) -> Resp:
        try:
            return method(self, request, context)
        except ReadFailure as failure:
            context.abort(failure.code, failure.message)
            raise  # abort() raises; this line is never reached

    handler.__doc__ = method.__doc__
    return handler


def _forwarded(context: grpc.ServicerContext) -> bool:
    return any(key == FORWARDED_BY for key, _ in context.invocation_metadata())


class TableServicer(table_pb2_grpc.TableServiceServicer):
    def __init__(self, node: Node, pool: ThreadPoolExecutor) -> None:
        self._node = node
        self._pool = pool

    @_answered
    def Get(self, request: pb.GetRequest, context: grpc.ServicerContext) -> pb.GetResponse:
        node = self._node
        meta = node.meta(request.table)
        key = request.key
        node.check_key(key)
        options = parse_options(request.options, meta) if request.HasField("options") else DEFAULTS
        partition = node.partition_of(meta, key)
        local = node.local(meta.name, partition, options)
        if local is not None:  # the hot path: keep it short
            if options.min_offsets:
                node.wait_applied(local, meta.name, partition, options, node.deadline(context))
            values, offset = node.read(local, partition, [key])
            value = values[0]
            return pb.GetResponse(
                found=value is not None,
                value=value or b"",
                partition=partition,
                offset=offset,
                served_by=node.member_id,
                key=key,
            )
        owners = node.remote(meta.name, partition, options, forwarded=_forwarded(context))
        metadata = node.forward_metadata()
        response: pb.GetResponse = node.forward(
            owners,
            lambda stub, timeout: stub.Get(request, timeout=timeout, metadata=metadata),
            node.deadline(context),
            f"partition {partition} of {meta.name!r}",
        )
        return response

    @_answered
    def GetMany(
        self, request: pb.GetManyRequest, context: grpc.ServicerContext
    ) -> pb.GetManyResponse:
        """Keys grouped by partition: one read of each local partition, one forwarded
        GetMany per member for the others; results in request order."""
        node = self._node
        meta = node.meta(request.table)
        keys = list(request.keys)
        if len(keys) > node.limits.max_keys:
            raise invalid("keys", f"{len(keys)} keys, over the limit of {node.limits.max_keys}")
        if keys and max(map(len, keys)) > node.limits.max_key_bytes:
            node.check_key(max(keys, key=len), "keys")  # raises, naming the size
        options = parse_options(request.options, meta)
        deadline = node.deadline(context)
        partition_of, count = get_partitioner(meta.partitioner), meta.partition_count
        partitions = [partition_of(key, count) for key in keys]
        by_partition: dict[int, list[int]] = defaultdict(list)  # partition -> key indexes
        for index, partition in enumerate(partitions):
            by_partition[partition].append(index)
        values: list[bytes | None] = [None] * len(keys)
        offsets: dict[int, int] = {}
        remote: dict[int, list[int]] = {}
        for partition, indexes in by_partition.items():
            local = node.local(meta.name, partition, options)
            if local is None:
                remote[partition] = indexes
                continue
            node.wait_applied(local, meta.name, partition, options, deadline)
            read, offsets[partition] = node.read(local, partition, [keys[i] for i in indexes])
            for index, value in zip(indexes, read, strict=True):
                values[index] = value
        forwarded: dict[int, pb.GetResponse] = {}
        if remote:
            self._get_remote(
                request, keys, remote, options, deadline, _forwarded(context), forwarded
            )
        response = pb.GetManyResponse()
        add, member_id = response.results.add, node.member_id
        for index, (key, partition, value) in enumerate(zip(keys, partitions, values, strict=True)):
            if partition in remote:
                response.results.append(forwarded[index])
            else:
                add(
                    found=value is not None,
                    value=value or b"",
                    partition=partition,
                    offset=offsets[partition],
                    served_by=member_id,
                    key=key,
                )
        return response

    def _get_remote(
        self,
        request: pb.GetManyRequest,
        keys: list[bytes],
        remote: dict[int, list[int]],
        options: ReadOptions,
        deadline: float,
        forwarded: bool,
        results: dict[int, pb.GetResponse],
    ) -> None:
        """One GetMany per member, in parallel; a failed member's keys go to the next
        candidate of their partitions."""
        node = self._node
        owners = {p: node.remote(request.table, p, options, forwarded=forwarded) for p in remote}
        metadata = node.forward_metadata()
        while owners:
            by_endpoint: dict[str, list[int]] = defaultdict(list)
            for partition, candidates in owners.items():
                by_endpoint[candidates[0].endpoint].append(partition)

            def fetch(endpoint: str, partitions: list[int]) -> tuple[str, list[int], Any]:
                indexes = [i for p in partitions for i in remote[p]]
                sub = pb.GetManyRequest(
                    table=request.table, keys=[keys[i] for i in indexes], options=request.options
                )
                timeout = deadline - time.monotonic()
                try:
                    reply = node.stub(endpoint, "GetMany").GetMany(
                        sub, timeout=timeout, metadata=metadata
                    )
                except grpc.RpcError as exc:
                    return endpoint, partitions, exc
                for index, result in zip(indexes, reply.results, strict=True):
                    results[index] = result
                return endpoint, partitions, None

            futures = [self._pool.submit(fetch, e, ps) for e, ps in by_endpoint.items()]
            for future in futures:
                endpoint, partitions, error = future.result()
                for partition in partitions:
                    if error is None:
                        del owners[partition]
                        continue
                    if not retryable(error.code()):
                        raise ReadFailure(error.code(), error.details() or str(error.code()))
                    owners[partition] = owners[partition][1:]
                    if not owners[partition] or time.monotonic() >= deadline:
                        raise ReadFailure(
                            grpc.StatusCode.UNAVAILABLE,
                            f"partition {partition} of {request.table!r}: every replica "
                            f"failed, last {endpoint}: {error.details()}",
                        )

    def Scan(self, request: pb.ScanRequest, context: grpc.ServicerContext) -> Any:
        try:
            yield from scan(self._node, request, context, _forwarded(context))
        except ReadFailure as failure:
            context.abort(failure.code, failure.message)

    @_answered
    def Locate(self, request: pb.LocateRequest, context: grpc.ServicerContext) -> Any:
        node = self._node
        meta = node.meta(request.table)
        node.check_key(request.key)
        partition = node.partition_of(meta, request.key)
        members = node.members()
        roles = {m.member_id: m.role for m in members}
        replicas = [
            pb.Replica(
                member_id=o.member_id,
                endpoint=o.endpoint,
                role=roles.get(o.member_id, ""),
                kind=o.kind,
                state=o.state,
                applied_offset=o.applied_offset,
                lag=o.lag,
            )
            for o in routing.owners(members, meta.name, partition)
        ]
        return pb.LocateResponse(
            table=self._table_info(meta.name), partition=partition, replicas=replicas
        )

    @_answered
    def ListTables(self, request: pb.ListTablesRequest, context: grpc.ServicerContext) -> Any:
        return pb.ListTablesResponse(
            tables=[self._table_info(meta.name) for meta in self._node.metas()]
        )

    def _table_info(self, table: str) -> pb.TableInfo:
        node = self._node
        meta = node.meta(table)
        members = node.members()
        running = {
            p
            for p in range(meta.partition_count)
            if any(o.state == "running" for o in routing.owners(members, table, p))
        }
        local = node.tables.get(table)
        if local is not None:
            running |= {p for p, held in local[2].items() if held.state == "running"}
        return pb.TableInfo(
            name=meta.name,
            key_codec=meta.key_codec,
            value_codec=meta.value_codec,
            partitioner=meta.partitioner,
            partition_count=meta.partition_count,
            running_partitions=len(running),
        )
