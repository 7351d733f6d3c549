"""Sending a read to a list of nodes, best first, within one overall deadline.

A node that cannot be reached, or answers UNAVAILABLE (or CANCELLED: see ``retryable``), passes
the read to the next node in the list with the time that is left; any other error is the
answer. The client never sets
``x-goka-forwarded-by``: only a node forwarding a request does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import grpc

from viewsvc.client.results import Entry, ReadError, Source, read_error
from viewsvc.v1 import table_pb2, table_pb2_grpc
from viewsvc.wire.channels import ChannelPool, retryable
from viewsvc.wire.scan_pages import encode_page_token, request_fingerprint

__all__ = ["Calls", "ScanIterator"]

_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


class Calls:
    """TableService calls with failover; one stub per endpoint."""

    def __init__(self, pool: ChannelPool) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._stubs: dict[str, Any] = {}

    def unary(self, endpoints: Sequence[str], method: str, request: Any, deadline: float) -> Any:
        """``TableService.<method>(request)`` on the first node of ``endpoints`` that answers."""
        last: grpc.RpcError | None = None
        for endpoint in endpoints:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _exhausted(endpoints, last, deadline_passed=True)
            rpc = getattr(self._stub(endpoint), method)
            try:
                return rpc(request, timeout=left, metadata=self._pool.metadata())
            except grpc.RpcError as exc:
                if not retryable(exc.code()):
                    raise read_error(exc) from exc
                last = exc
        raise _exhausted(endpoints, last)

    def get_many(
        self,
        table: str,
        keys: Sequence[bytes],
        routes: Sequence[Sequence[str]],
        options: table_pb2.ReadOptions,
        deadline: float,
    ) -> list[table_pb2.GetResponse]:
        """One GetMany per node, in parallel; ``routes[i]`` are the nodes for ``keys[i]``.

        Keys whose node failed with UNAVAILABLE are sent again, grouped by their next node.
        """
        results: list[table_pb2.GetResponse | None] = [None] * len(keys)
        left_routes = [list(route) for route in routes]
        pending = list(range(len(keys)))
        last: grpc.RpcError | None = None
        while pending:
            groups: dict[str, list[int]] = {}
            for i in pending:
                if not left_routes[i]:
                    raise _exhausted(routes[i], last)
                groups.setdefault(left_routes[i][0], []).append(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise _exhausted(routes[pending[0]], last, deadline_passed=True)
            futures = {
                endpoint: self._stub(endpoint).GetMany.future(
                    table_pb2.GetManyRequest(
                        table=table, keys=[keys[i] for i in group], options=options
                    ),
                    timeout=left,
                    metadata=self._pool.metadata(),
                )
                for endpoint, group in groups.items()
            }
            pending, failure = [], None
            for endpoint, future in futures.items():
                group = groups[endpoint]
                try:
                    answers = list(future.result().results)
                except grpc.RpcError as exc:
                    if not retryable(exc.code()):
                        failure = failure or exc
                        continue
                    last = exc
                    for i in group:
                        left_routes[i].pop(0)
                    pending.extend(group)
                    continue
                if len(answers) != len(group):
                    raise ReadError(
                        grpc.StatusCode.INTERNAL,
                        f"{endpoint} answered {len(answers)} results for {len(group)} keys",
                    )
                for i, answer in zip(group, answers, strict=True):
                    results[i] = answer
            if failure is not None:
                raise read_error(failure) from failure
            pending.sort()
        return [r for r in results if r is not None]

    def open_scan(
        self, endpoints: Sequence[str], request: table_pb2.ScanRequest, deadline: float
    ) -> tuple[str, Any, table_pb2.ScanResponse | None]:
        """The endpoint and Scan stream of the first node that sends its first message (or
        ends cleanly), with that message."""
        last: grpc.RpcError | None = None
        for endpoint in endpoints:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _exhausted(endpoints, last, deadline_passed=True)
            call = self._stub(endpoint).Scan(request, timeout=left, metadata=self._pool.metadata())
            try:
                return endpoint, call, next(call, None)
            except grpc.RpcError as exc:
                if not retryable(exc.code()):
                    raise read_error(exc) from exc
                last = exc
        raise _exhausted(endpoints, last)

    def _stub(self, endpoint: str) -> Any:
        with self._lock:
            stub = self._stubs.get(endpoint)
            if stub is None:
                stub = table_pb2_grpc.TableServiceStub(self._pool.channel(endpoint))  # type: ignore[no-untyped-call]
                self._stubs[endpoint] = stub
            return stub


class ScanIterator(Iterator[Entry]):
    """The rows of a scan, in ascending key order; the request is sent on the first ``next``.

    A stream that breaks midway (UNAVAILABLE or CANCELLED: the node stopped) is resumed
    after the last row received, on the other nodes first, within the same deadline; rows
    are neither repeated nor skipped. After the rows are exhausted, ``next_page_token`` is the
    token to continue with (empty when the range is exhausted) and ``sources`` says where
    each partition was read. Call :meth:`close` (or use ``with``) to cancel a scan that is
    not read to its end.
    """

    def __init__(
        self,
        calls: Calls,
        endpoints: Sequence[str],
        request: table_pb2.ScanRequest,
        deadline: float,
    ) -> None:
        self.next_page_token = ""
        self.sources: tuple[Source, ...] = ()
        self.resumed = 0
        """How many times a broken stream was resumed."""
        self._call: Any = None
        self._closed = False
        self._rows = self._read(calls, endpoints, request, deadline)

    def __next__(self) -> Entry:
        return next(self._rows)

    def __enter__(self) -> ScanIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        if self._call is not None:
            self._call.cancel()
        self._rows.close()

    def _read(
        self,
        calls: Calls,
        endpoints: Sequence[str],
        request: table_pb2.ScanRequest,
        deadline: float,
    ) -> Generator[Entry, None, None]:
        fingerprint = request_fingerprint(
            request.start, request.end, request.prefix, request.partitions
        )
        order, current = list(endpoints), request
        received, last_key = 0, b""
        while True:
            endpoint, self._call, response = calls.open_scan(order, current, deadline)
            try:
                while response is not None:
                    if response.sources:
                        self.sources = tuple(
                            Source(s.partition, s.served_by, s.offset) for s in response.sources
                        )
                    self.next_page_token = response.next_page_token
                    for entry in response.entries:
                        received, last_key = received + 1, entry.key
                        yield Entry(entry.key, entry.value, entry.partition)
                    response = next(self._call, None)
                return
            except grpc.RpcError as exc:
                # each resume starts with open_scan's first message, which carries rows (only
                # a final message is empty), so resuming progresses until the deadline
                if self._closed or not retryable(exc.code()) or time.monotonic() >= deadline:
                    raise read_error(exc) from exc
            self.resumed += 1
            order = [e for e in order if e != endpoint] + [endpoint]  # the others first
            if received:
                token = encode_page_token(request.table, fingerprint, last_key)
                if request.limit and received >= request.limit:
                    self.next_page_token = token  # the page is complete; more rows may follow
                    return
                current = _resumed(request, token, received)


def _resumed(request: table_pb2.ScanRequest, token: str, received: int) -> table_pb2.ScanRequest:
    """The rest of ``request`` once ``received`` of its rows arrived, the last of which
    ``token`` names."""
    rest = table_pb2.ScanRequest()
    rest.CopyFrom(request)
    rest.page_token = token
    if request.limit:
        rest.limit = request.limit - received
    return rest


def _exhausted(
    endpoints: Sequence[str], last: grpc.RpcError | None, *, deadline_passed: bool = False
) -> ReadError:
    if not endpoints:
        return ReadError(
            _UNAVAILABLE,
            "no node to send the read to: no member with an endpoint is known yet; pass "
            "targets=[...] (--target), or call wait_ready() first",
        )
    if last is not None and not deadline_passed:
        error = read_error(last)
        return ReadError(error.code, f"{error.details} (tried {', '.join(endpoints)})")
    seen = f"; last error: {read_error(last)}" if last is not None else ""
    return ReadError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"the deadline passed before any of {', '.join(endpoints)} answered{seen}",
    )
