"""``Client.watch``: a Watch stream that resumes by itself.

The iterator keeps, per partition, the offset up to which it has received every matching
change (``positions``). When the stream breaks (the node stopped, its partition moved, the
connection dropped) it watches again from those offsets, on the other nodes first, so that
it misses no change and repeats none; a change at an offset it already passed is dropped.
A partition whose snapshot was not finished gets its snapshot again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from goka.errors import ReadError
from viewsvc.client.results import Source, read_error
from viewsvc.v1 import table_pb2
from viewsvc.wire.channels import ChannelPool
from viewsvc.wire.failover import retryable

__all__ = ["Change", "WatchIterator"]

_RESUMABLE = frozenset({grpc.StatusCode.OUT_OF_RANGE})
"""Codes after which another node may serve the watch, besides the failover rule's."""
_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class Change:
    """A change of a key, or (``snapshot``) a row of the snapshot."""

    key: bytes
    value: bytes | None
    """The new value as stored in Kafka; None when the key was deleted."""
    partition: int
    offset: int
    """The table-topic offset of the change; -1 for a snapshot row."""
    snapshot: bool = False

    @property
    def deleted(self) -> bool:
        return self.value is None


class WatchIterator(Iterator[Change]):
    """The changes of a watch, as they come; the request is sent on the first ``next``.

    ``positions`` (per partition, the offset to resume from) and ``sources`` (where each
    partition is read) follow the stream; ``resumed`` counts the reconnections. The iteration
    ends after ``timeout`` seconds if one was given; a node that cannot be reached for
    ``reconnect_timeout`` seconds, or an error that no node can get past, raises ReadError.
    Call :meth:`close` (or use ``with``) to stop watching.
    """

    def __init__(
        self,
        pool: ChannelPool,
        endpoints: Callable[[], Sequence[str]],
        request: table_pb2.WatchRequest,
        timeout: float | None,
        reconnect_timeout: float,
    ) -> None:
        self.positions: dict[int, int] = dict(request.from_offsets)
        self.sources: dict[int, Source] = {}
        self.resumed = 0
        self.dropped = 0
        """Changes received again after a reconnection (at offsets already passed), dropped."""
        self._pool = pool
        self._call: Any = None
        self._closed = False
        self._changes = self._read(endpoints, request, timeout, reconnect_timeout)

    def __next__(self) -> Change:
        return next(self._changes)

    def __enter__(self) -> WatchIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop watching; safe from another thread than the one iterating."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
        with contextlib.suppress(ValueError):  # being iterated now: the cancel ends it
            self._changes.close()

    def _read(
        self,
        endpoints: Callable[[], Sequence[str]],
        request: table_pb2.WatchRequest,
        timeout: float | None,
        reconnect_timeout: float,
    ) -> Generator[Change, None, None]:
        ends = None if timeout is None else time.monotonic() + timeout
        last: grpc.RpcError | None = None
        failed_at: float | None = None
        tried: list[str] = []
        attempt = 0
        while not self._closed:
            order = [e for e in endpoints() if e not in tried] + tried
            if not order:
                raise ReadError(
                    grpc.StatusCode.UNAVAILABLE,
                    "no node to watch on: pass targets=[...] (--target), or call wait_ready()",
                )
            endpoint = order[0]
            left = None if ends is None else ends - time.monotonic()
            if left is not None and left <= 0:
                return
            self._call = self._pool.table_stub(endpoint).Watch(
                self._resumed(request), timeout=left, metadata=self._pool.metadata()
            )
            try:
                for response in self._call:
                    failed_at, attempt, tried = None, 0, []
                    yield from self._changes_of(response)
                return  # the server ended the stream cleanly: it does so only at shutdown
            except grpc.RpcError as exc:
                code = exc.code()
                if self._closed:
                    return
                timed_out = code == grpc.StatusCode.DEADLINE_EXCEEDED and ends is not None
                if timed_out and time.monotonic() >= ends - 0.01:  # type: ignore[operator]
                    return
                if not (retryable(code) or code in _RESUMABLE):
                    raise read_error(exc) from exc
                last = exc
            now = time.monotonic()
            failed_at = failed_at or now
            if now - failed_at > reconnect_timeout:
                error = read_error(last) if last is not None else None
                raise ReadError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"no node took the watch again within {reconnect_timeout}s (tried "
                    f"{', '.join(tried or [endpoint])}); last error: {error}",
                )
            tried = [*[e for e in tried if e != endpoint], endpoint]
            self.resumed += 1
            if len(tried) >= len(order):  # every node tried once: wait before the next round
                time.sleep(_BACKOFF[min(attempt, len(_BACKOFF) - 1)])
                attempt += 1

    def _resumed(self, request: table_pb2.WatchRequest) -> table_pb2.WatchRequest:
        current = table_pb2.WatchRequest()
        current.CopyFrom(request)
        current.from_offsets.clear()
        current.from_offsets.update(self.positions)
        return current

    def _changes_of(self, response: table_pb2.WatchResponse) -> Iterator[Change]:
        for source in response.sources:
            self.sources[source.partition] = Source(
                source.partition, source.served_by, source.offset
            )
        for row in response.rows:
            if row.partition not in self.positions:
                yield Change(row.key, row.value, row.partition, -1, snapshot=True)
        positions = self.positions
        for change in response.changes:
            partition, offset = change.partition, change.offset
            if offset < positions.get(partition, 0):
                self.dropped += 1
                continue
            positions[partition] = offset + 1
            yield Change(change.key, None if change.deleted else change.value, partition, offset)
        for partition, position in response.positions.items():
            if position > positions.get(partition, -1):
                positions[partition] = position
