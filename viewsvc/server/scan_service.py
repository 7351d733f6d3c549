"""TableService.Scan: local partitions and forwarded ones (one stream per member holding
them), merged into one key order, streamed in bounded batches, with page tokens."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from discovery.model import Owner
from goka.errors import PartitionNotHeld
from viewsvc.server.planner import ReadFailure, ReadPlanner, invalid
from viewsvc.v1 import table_pb2 as pb
from viewsvc.wire.errors import InvalidArgument
from viewsvc.wire.read_options import ReadOptions
from viewsvc.wire.scan_pages import (
    Row,
    batches,
    decode_page_token,
    encode_page_token,
    merge,
    request_fingerprint,
    scan_bounds,
)

__all__ = ["scan"]


@dataclass
class _Remote:
    """A Scan forwarded to one member for some partitions; ``truncated`` once it ended with
    a page token (it had more rows than we asked for)."""

    call: Any
    first: pb.ScanResponse
    truncated: bool = False
    sources: list[pb.PartitionSource] = field(default_factory=list)

    def rows(self) -> Iterator[Row]:
        response: pb.ScanResponse | None = self.first
        while response is not None:
            for entry in response.entries:
                yield entry.key, entry.value, entry.partition
            if response.next_page_token:
                self.truncated = True
            response = next(self.call, None)


def scan(
    planner: ReadPlanner, request: pb.ScanRequest, context: grpc.ServicerContext, forwarded: bool
) -> Iterator[pb.ScanResponse]:
    meta = planner.meta(request.table)
    limits = planner.limits
    # a forwarded scan asks for the origin's page size, which may pass this member's cap:
    # it gets up to the cap and a page token, and the origin stops its page there
    if request.limit < 0 or (request.limit > limits.scan_cap and not forwarded):
        raise invalid(
            "limit", f"{request.limit} is not within 0..{limits.scan_cap} (0: up to the cap)"
        )
    for name in ("start", "end", "prefix"):
        planner.check_key(getattr(request, name), name)
    bad = [p for p in request.partitions if not 0 <= p < meta.partition_count]
    if bad:
        raise invalid(
            "partitions",
            f"{bad} are not partitions of {meta.name!r} (0..{meta.partition_count - 1})",
        )
    options = planner.options(request, meta)
    fingerprint = request_fingerprint(
        request.start, request.end, request.prefix, request.partitions
    )
    try:
        after = (
            decode_page_token(meta.name, fingerprint, request.page_token)
            if request.page_token
            else None
        )
        low, high = scan_bounds(request.start, request.end, request.prefix, after)
    except InvalidArgument as exc:
        raise invalid(exc.field, str(exc)) from exc
    take = min(request.limit or limits.scan_cap, limits.scan_cap)
    partitions = sorted(set(request.partitions)) or list(range(meta.partition_count))
    deadline = planner.deadline(context)
    sources: list[pb.PartitionSource] = []
    rows: list[Iterator[Row]] = []
    remote: dict[int, list[Owner]] = {}
    for partition in partitions:
        local = planner.local(meta.name, partition, options)
        if local is None:
            remote[partition] = planner.remote(meta.name, partition, options, forwarded=forwarded)
            continue
        planner.wait_applied(local, meta.name, partition, options, deadline)
        offset = local.table.held().get(partition, local.held).applied_offset
        sources.append(
            pb.PartitionSource(partition=partition, served_by=planner.member_id, offset=offset)
        )
        rows.append(_local_rows(local.table, partition, low, high))
    streams = _open_remote(planner, meta.name, remote, low, high, take, options, deadline)
    context.add_callback(lambda: [s.call.cancel() for s in streams])
    for stream in streams:
        sources.extend(stream.sources)
        rows.append(stream.rows())
    sources.sort(key=lambda s: s.partition)
    if low is not None and high is not None and low >= high:
        rows = []
    merged = merge(rows)
    chosen = itertools.islice(_until_truncated(merged, streams), take)
    pending: list[Row] | None = None
    first = True
    for batch in batches(
        chosen, max_rows=limits.scan_batch_rows, max_bytes=limits.scan_batch_bytes
    ):
        if pending is not None:
            yield _response(pending, sources if first else [], "")
            first = False
        pending = batch
    more = next(merged, None) is not None or any(s.truncated for s in streams)
    token = encode_page_token(meta.name, fingerprint, pending[-1][0]) if more and pending else ""
    for stream in streams:
        stream.call.cancel()
    yield _response(pending or [], sources if first else [], token)


def _until_truncated(rows: Iterator[Row], streams: list[_Remote]) -> Iterator[Row]:
    """The merged rows up to the end of the first remote stream that stopped short (at its
    cap): rows after its last one may be missing, so the page ends there. The merge reads a
    stream's next row right after yielding its last, so the flag is set before any later row
    comes out."""
    for row in rows:
        if any(stream.truncated for stream in streams):
            return
        yield row


def _response(rows: list[Row], sources: list[pb.PartitionSource], token: str) -> pb.ScanResponse:
    return pb.ScanResponse(
        entries=[pb.Entry(key=k, value=v, partition=p) for k, v, p in rows],
        next_page_token=token,
        sources=sources,
    )


def _local_rows(table: Any, partition: int, low: bytes | None, high: bytes | None) -> Iterator[Row]:
    try:
        for key, value in table.items(partition, low, high):
            yield key, value, partition
    except PartitionNotHeld as exc:  # released while we read: the caller retries with the token
        raise ReadFailure(
            grpc.StatusCode.UNAVAILABLE,
            f"partition {partition} was released during the scan: {exc}",
        ) from exc


def _open_remote(
    planner: ReadPlanner,
    table: str,
    remote: dict[int, list[Owner]],
    low: bytes | None,
    high: bytes | None,
    take: int,
    options: ReadOptions,
    deadline: float,
) -> list[_Remote]:
    """Starts one forwarded Scan per member for its partitions, reading the first message
    (to learn the sources, and to try the next candidate on UNAVAILABLE)."""
    metadata = planner.forward_metadata()

    def start(endpoint: str, partitions: list[int], timeout: float) -> Callable[[], _Remote]:
        request = pb.ScanRequest(
            table=table,
            start=low or b"",
            end=high or b"",
            limit=take,
            partitions=partitions,
            options=options.to_pb(),
        )
        call = planner.stub(endpoint, "Scan").Scan(request, timeout=timeout, metadata=metadata)

        def first() -> _Remote:
            response = next(call, None) or pb.ScanResponse()
            return _Remote(call, response, sources=list(response.sources))

        return first

    sent = planner.forward_grouped(
        table, remote, start, deadline, discard=lambda stream: stream.call.cancel()
    )
    return [answer.answer for answer in sent]
