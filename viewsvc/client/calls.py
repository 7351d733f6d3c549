"""The client's TableService calls: each read sent to a list of nodes, best first, within
one overall deadline (the rule is :mod:`viewsvc.wire.failover`). The client never sets
``x-goka-forwarded-by``: only a node forwarding a request does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

import grpc

from viewsvc.client.results import Entry, ReadError, Source, read_error
from viewsvc.v1 import table_pb2
from viewsvc.wire.channels import ChannelPool
from viewsvc.wire.failover import Exhausted, first_answer, grouped, retryable
from viewsvc.wire.scan_pages import encode_page_token, request_fingerprint

__all__ = ["Calls", "ScanIterator"]

T = TypeVar("T")


class Calls:
    """TableService calls with failover."""

    def __init__(self, pool: ChannelPool) -> None:
        self._pool = pool

    def unary(self, endpoints: Sequence[str], method: str, request: Any, deadline: float) -> Any:
        """``TableService.<method>(request)`` on the first node of ``endpoints`` that answers."""

        def call(endpoint: str, timeout: float) -> Any:
            rpc = getattr(self._pool.table_stub(endpoint), method)
            return rpc(request, timeout=timeout, metadata=self._pool.metadata())

        return _answer(lambda: first_answer(endpoints, call, deadline))

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

        def start(endpoint: str, indexes: list[int], timeout: float) -> Any:
            future = self._pool.table_stub(endpoint).GetMany.future(
                table_pb2.GetManyRequest(
                    table=table, keys=[keys[i] for i in indexes], options=options
                ),
                timeout=timeout,
                metadata=self._pool.metadata(),
            )
            return lambda: _results(endpoint, future.result(), len(indexes))

        sent = _answer(lambda: grouped(dict(enumerate(routes)), start, deadline))
        results: list[table_pb2.GetResponse | None] = [None] * len(keys)
        for answer in sent:
            for i, result in zip(answer.items, answer.answer, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def open_scan(
        self, endpoints: Sequence[str], request: table_pb2.ScanRequest, deadline: float
    ) -> tuple[str, Any, table_pb2.ScanResponse | None]:
        """The endpoint and Scan stream of the first node that sends its first message (or
        ends cleanly), with that message."""

        def call(endpoint: str, timeout: float) -> tuple[str, Any, table_pb2.ScanResponse | None]:
            stream = self._pool.table_stub(endpoint).Scan(
                request, timeout=timeout, metadata=self._pool.metadata()
            )
            return endpoint, stream, next(stream, None)

        return _answer(lambda: first_answer(endpoints, call, deadline))


def _answer(read: Callable[[], T]) -> T:
    """``read()``, with its failures as ReadError."""
    try:
        return read()
    except Exhausted as exc:
        raise _exhausted(exc) from exc
    except grpc.RpcError as exc:
        raise read_error(exc) from exc


def _results(endpoint: str, reply: table_pb2.GetManyResponse, wanted: int) -> list[Any]:
    answers = list(reply.results)
    if len(answers) != wanted:
        raise ReadError(
            grpc.StatusCode.INTERNAL,
            f"{endpoint} answered {len(answers)} results for {wanted} keys",
        )
    return answers


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


def _exhausted(exhausted: Exhausted) -> ReadError:
    endpoints, last = exhausted.candidates, exhausted.last
    if not endpoints:
        return ReadError(
            grpc.StatusCode.UNAVAILABLE,
            "no node to send the read to: no member with an endpoint is known yet; pass "
            "targets=[...] (--target), or call wait_ready() first",
        )
    if last is not None and not exhausted.deadline_passed:
        error = read_error(last)
        return ReadError(error.code, f"{error.details} (tried {', '.join(endpoints)})")
    seen = f"; last error: {read_error(last)}" if last is not None else ""
    return ReadError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"the deadline passed before any of {', '.join(endpoints)} answered{seen}",
    )
