"""TableService: Get, GetMany, Locate and ListTables, answered locally or forwarded one hop
(Scan is in ``scan_service``); the read planner decides which."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from discovery import routing
from goka.partitioner import get_partitioner
from viewsvc.server.planner import ReadFailure, ReadPlanner, invalid
from viewsvc.server.scan_service import scan
from viewsvc.server.watch_service import Watches, resume_metadata
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import FORWARDED_BY
from viewsvc.wire.read_options import ReadOptions

__all__ = ["TableServicer"]

_logger = logging.getLogger("viewsvc.server")

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def _answered(method: Callable[[Any, Req, grpc.ServicerContext], Resp]) -> Any:
    """Turns a ReadFailure into the call's status, and any other exception into INTERNAL
    without its text (which is logged instead)."""

    def handler(self: TableServicer, request: Req, context: grpc.ServicerContext) -> Resp:
        try:
            return method(self, request, context)
        except ReadFailure as failure:
            context.abort(failure.code, failure.message)
            raise  # abort() raises; this line is never reached
        except Exception:
            context.abort(*self._internal(method.__name__))
            raise

    handler.__doc__ = method.__doc__
    return handler


def _forwarded(context: grpc.ServicerContext) -> bool:
    return any(key == FORWARDED_BY for key, _ in context.invocation_metadata())


class TableServicer(table_pb2_grpc.TableServiceServicer):
    """The blocking methods run on the server's pool (see ``sync_handlers``); Watch, a
    coroutine, on its event loop."""

    def __init__(self, planner: ReadPlanner, pool: ThreadPoolExecutor, watches: Watches) -> None:
        self._planner = planner
        self._pool = pool
        self._watches = watches

    @_answered
    def Get(self, request: pb.GetRequest, context: grpc.ServicerContext) -> pb.GetResponse:
        planner = self._planner
        meta = planner.meta(request.table)
        key = request.key
        planner.check_key(key)
        options = planner.options(request, meta)
        partition = planner.partition_of(meta, key)
        local = planner.local(meta.name, partition, options)
        if local is not None:  # the hot path: keep it short
            if options.min_offsets:
                planner.wait_applied(
                    local, meta.name, partition, options, planner.deadline(context)
                )
            values, offset = planner.read(local, partition, [key])
            value = values[0]
            return pb.GetResponse(
                found=value is not None,
                value=value or b"",
                partition=partition,
                offset=offset,
                served_by=planner.member_id,
                key=key,
            )
        owners = planner.remote(meta.name, partition, options, forwarded=_forwarded(context))
        response: pb.GetResponse = planner.forward(
            owners,
            "Get",
            request,
            planner.deadline(context),
            f"partition {partition} of {meta.name!r}",
        )
        return response

    @_answered
    def GetMany(
        self, request: pb.GetManyRequest, context: grpc.ServicerContext
    ) -> pb.GetManyResponse:
        """Keys grouped by partition: one read of each local partition, one forwarded
        GetMany per member for the others; results in request order."""
        planner = self._planner
        meta = planner.meta(request.table)
        keys = list(request.keys)
        if len(keys) > planner.limits.max_keys:
            raise invalid("keys", f"{len(keys)} keys, over the limit of {planner.limits.max_keys}")
        if keys and max(map(len, keys)) > planner.limits.max_key_bytes:
            planner.check_key(max(keys, key=len), "keys")  # raises, naming the size
        options = planner.options(request, meta)
        deadline = planner.deadline(context)
        partition_of, count = get_partitioner(meta.partitioner), meta.partition_count
        partitions = [partition_of(key, count) for key in keys]
        by_partition: dict[int, list[int]] = defaultdict(list)  # partition -> key indexes
        for index, partition in enumerate(partitions):
            by_partition[partition].append(index)
        values: list[bytes | None] = [None] * len(keys)
        offsets: dict[int, int] = {}
        remote: dict[int, list[int]] = {}
        for partition, indexes in by_partition.items():
            local = planner.local(meta.name, partition, options)
            if local is None:
                remote[partition] = indexes
                continue
            planner.wait_applied(local, meta.name, partition, options, deadline)
            read, offsets[partition] = planner.read(local, partition, [keys[i] for i in indexes])
            for index, value in zip(indexes, read, strict=True):
                values[index] = value
        forwarded: dict[int, pb.GetResponse] = {}
        if remote:
            self._get_remote(
                request, keys, remote, options, deadline, _forwarded(context), forwarded
            )
        response = pb.GetManyResponse()
        add, member_id = response.results.add, planner.member_id
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
        planner = self._planner
        owners = {p: planner.remote(request.table, p, options, forwarded=forwarded) for p in remote}
        metadata = planner.forward_metadata()

        def start(endpoint: str, partitions: list[int], timeout: float) -> Callable[[], Any]:
            indexes = [i for p in partitions for i in remote[p]]
            sub = pb.GetManyRequest(
                table=request.table, keys=[keys[i] for i in indexes], options=request.options
            )
            stub = planner.stub(endpoint, "GetMany")
            future = self._pool.submit(stub.GetMany, sub, timeout=timeout, metadata=metadata)
            return lambda: list(zip(indexes, future.result().results, strict=True))

        for sent in planner.forward_grouped(request.table, owners, start, deadline):
            results.update(sent.answer)

    def Scan(self, request: pb.ScanRequest, context: grpc.ServicerContext) -> Any:
        try:
            yield from scan(self._planner, request, context, _forwarded(context))
        except ReadFailure as failure:
            context.abort(failure.code, failure.message)
        except Exception:
            context.abort(*self._internal("Scan"))

    async def Watch(
        self, request: pb.WatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchResponse]:
        try:
            async for response in self._watches.watch(request, context, _forwarded(context)):
                yield response
        except ReadFailure as failure:
            context.set_trailing_metadata(tuple(resume_metadata(failure)))
            await context.abort(failure.code, failure.message)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception:
            await context.abort(*self._internal("Watch"))

    def _internal(self, method: str) -> tuple[grpc.StatusCode, str]:
        """Logs the exception being handled; the status for the client, without its text."""
        member = self._planner.member_id
        _logger.exception("TableService.%s failed on %s", method, member)
        return (
            grpc.StatusCode.INTERNAL,
            f"TableService.{method} failed on {member} with an internal error (in its log); "
            "retry, or report it with that log",
        )

    @_answered
    def Locate(self, request: pb.LocateRequest, context: grpc.ServicerContext) -> Any:
        planner = self._planner
        meta = planner.meta(request.table)
        planner.check_key(request.key)
        partition = planner.partition_of(meta, request.key)
        members = planner.members()
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
            tables=[self._table_info(meta.name) for meta in self._planner.metas()]
        )

    def _table_info(self, table: str) -> pb.TableInfo:
        planner = self._planner
        meta = planner.meta(table)
        members = planner.members()
        running = {
            p
            for p in range(meta.partition_count)
            if any(o.state == "running" for o in routing.owners(members, table, p))
        }
        local = planner.tables.get(table)
        if local is not None:
            running |= {p for p, held in local.partitions.items() if held.state == "running"}
        return pb.TableInfo(
            name=meta.name,
            key_codec=meta.key_codec,
            value_codec=meta.value_codec,
            partitioner=meta.partitioner,
            partition_count=meta.partition_count,
            running_partitions=len(running),
        )
