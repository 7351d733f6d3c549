"""TableService.Watch: the changes of some keys as this node applies them (its partitions'
change feeds, see ``goka.changes``), and those of other members' partitions relayed from a
Watch forwarded to them, in one stream that waits on the event loop.

Per partition, a stream sends: an optional snapshot (rows, exact at the position that follows
them), then every matching change in offset order, each exactly once from the position the
stream started at; ``positions`` say how far it got, so a client resumes anywhere. A
watcher's changes wait in a bounded buffer; one that is full ends the stream with
RESOURCE_EXHAUSTED and the offsets to resume from, so a slow client costs bounded memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc

from discovery.model import Owner
from goka.changes import Change, ChangeFeed
from goka.errors import HistoryUnavailable, PartitionNotHeld
from goka.local_table import LocalTable
from goka.partitioner import get_partitioner
from viewsvc.server.discovery_service import threadsafe_setter
from viewsvc.server.limits import Limits
from viewsvc.server.planner import ReadFailure, ReadPlanner, invalid
from viewsvc.v1 import table_pb2 as pb
from viewsvc.wire.errors import InvalidArgument
from viewsvc.wire.scan_pages import scan_bounds

__all__ = ["RESUME_OFFSETS", "Watches", "format_offsets"]

RESUME_OFFSETS = "x-goka-resume-offsets"
"""Trailing metadata of a Watch that ended early: ``partition=offset`` pairs, comma-separated,
to pass as from_offsets when watching again."""

_logger = logging.getLogger("viewsvc.server")
_RELAYED = 16
"""Messages of a forwarded Watch waiting to be sent on; more hold the forwarded stream back."""


def format_offsets(offsets: dict[int, int]) -> str:
    return ",".join(f"{p}={o}" for p, o in sorted(offsets.items()))


class _Watcher:
    """One stream's changes, handed over by the feeds' threads, taken by the event loop."""

    def __init__(self, limit: int, wake: Callable[[], None]) -> None:
        self._limit = limit
        self._wake = wake
        self._lock = threading.Lock()
        self._changes: dict[int, list[Change]] = {}
        self._positions: dict[int, int] = {}
        self._count = 0
        self.most = 0
        """The most changes that waited at once."""
        self.failure: tuple[grpc.StatusCode, str] | None = None

    def push(self, partition: int, changes: Sequence[Change], position: int) -> None:
        with self._lock:
            if self.failure is not None:
                return
            if self._count >= self._limit:  # a batch is taken whole: at most limit + one
                self.failure = (
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"this watcher fell over {self._limit} changes behind (Limits.watch_buffer): "
                    "read faster, or watch fewer keys",
                )
            else:
                if changes:
                    self._changes.setdefault(partition, []).extend(changes)
                    self._count += len(changes)
                    self.most = max(self.most, self._count)
                self._positions[partition] = position
        self._wake()

    @property
    def waiting(self) -> int:
        return self._count

    def end(self, code: grpc.StatusCode, reason: str) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = (code, reason)
        self._wake()

    def take(self) -> tuple[dict[int, list[Change]], dict[int, int]]:
        with self._lock:
            changes, self._changes, self._count = self._changes, {}, 0
            positions, self._positions = self._positions, {}
        return changes, positions

    def take_before(self, partition: int, offset: int) -> list[Change]:
        """The waiting changes of ``partition`` before ``offset`` (a snapshot absorbs them)."""
        with self._lock:
            waiting = self._changes.get(partition, [])
            taken = [c for c in waiting if c[2] < offset]
            if taken:
                self._changes[partition] = waiting[len(taken) :]
                self._count -= len(taken)
        return taken


class _Listener:
    """A feed's listener for one watched partition: keeps the matching changes from
    ``start``."""

    def __init__(
        self, partition: int, match: Callable[[bytes], bool], start: int, watcher: _Watcher
    ) -> None:
        self._partition = partition
        self._match = match
        self._start = start
        self._watcher = watcher

    def changes(self, changes: Sequence[Change], position: int) -> None:
        start, match = self._start, self._match
        kept = [c for c in changes if c[2] >= start and match(c[0])]
        self._watcher.push(self._partition, kept, position)

    def ended(self, reason: str) -> None:
        self._watcher.end(grpc.StatusCode.UNAVAILABLE, f"{reason}: watch again from the offsets")


@dataclass
class _Local:
    table: LocalTable
    feed: ChangeFeed
    listener: _Listener


class Watches:
    """The Watch streams of one server: admitted up to ``Limits.max_watchers`` (with the
    WatchMembers streams, through ``slots``), ended together by ``close``."""

    def __init__(
        self,
        planner: ReadPlanner,
        limits: Limits,
        pool: ThreadPoolExecutor,
        slots: threading.BoundedSemaphore,
    ) -> None:
        self._planner = planner
        self._limits = limits
        self._pool = pool
        self._slots = slots
        self._watchers: set[_Watcher] = set()
        self._most = 0
        self._lock = threading.Lock()
        self._closed: str | None = None

    def stats(self) -> tuple[int, int, int]:
        """The Watch streams open, the changes waiting to be sent on them, and the most that
        ever waited on one."""
        with self._lock:
            watchers = list(self._watchers)
            most = max([self._most, *(w.most for w in watchers)])
        return len(watchers), sum(w.waiting for w in watchers), most

    def close(self, reason: str) -> None:
        """End every stream (UNAVAILABLE) and admit no more."""
        with self._lock:
            self._closed = reason
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher.end(grpc.StatusCode.UNAVAILABLE, reason)

    async def watch(
        self, request: pb.WatchRequest, context: Any, forwarded: bool
    ) -> AsyncIterator[pb.WatchResponse]:
        planner = self._planner
        meta = planner.meta(request.table)
        partitions, match = self._validate(request, meta.partition_count, meta.partitioner)
        options = planner.options(request, meta)
        if options.min_offsets:
            raise invalid("options.min_offsets", "are not used by Watch: pass from_offsets")
        if not self._slots.acquire(blocking=False):
            raise ReadFailure(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this node serves at most {self._limits.max_watchers} watch streams "
                "(Limits.max_watchers): watch through another node",
            )
        wake = asyncio.Event()
        watcher = _Watcher(self._limits.watch_buffer, threadsafe_setter(wake))
        with self._lock:
            closed = self._closed
            self._watchers.add(watcher)
        locals_: dict[int, _Local] = {}
        relays: list[asyncio.Task[None]] = []
        sent: dict[int, int] = {}
        """Per partition, where a client resumes: after the last change or position sent."""
        try:
            if closed is not None:
                raise ReadFailure(grpc.StatusCode.UNAVAILABLE, closed)
            from_offsets = dict(request.from_offsets)
            remote: dict[int, list[Owner]] = {}
            for partition in partitions:
                local = planner.local(meta.name, partition, options)
                feed = local.table.changes(partition) if local is not None else None
                start = from_offsets.get(partition)
                missing: HistoryUnavailable | None = None
                if local is not None and feed is not None:
                    listener = _Listener(partition, match, start or 0, watcher)
                    try:
                        position = feed.subscribe(listener, start)
                    except HistoryUnavailable as exc:
                        missing = exc  # another holder may still have the changes
                    else:
                        locals_[partition] = _Local(local.table, feed, listener)
                        if start is not None or not request.snapshot:  # else: once sent
                            sent[partition] = position if start is None else start
                        continue
                try:
                    remote[partition] = planner.remote(
                        meta.name, partition, options, forwarded=forwarded
                    )
                except ReadFailure as exc:
                    if missing is None:
                        raise
                    raise ReadFailure(grpc.StatusCode.OUT_OF_RANGE, str(missing)) from exc
            queue: asyncio.Queue[pb.WatchResponse] = asyncio.Queue(_RELAYED)
            first = pb.WatchResponse(
                sources=[
                    pb.PartitionSource(
                        partition=p, served_by=planner.member_id, offset=held.feed.position
                    )
                    for p, held in sorted(locals_.items())
                ],
                positions=sent,
            )
            for response in await self._open_remote(request, remote, queue, wake, watcher, relays):
                first.sources.extend(response.sources)
                first.positions.update(response.positions)
                sent.update(response.positions)
            first.sources.sort(key=lambda s: s.partition)
            yield first
            if request.snapshot:
                for partition in sorted(set(locals_) - set(from_offsets)):
                    held = locals_[partition]
                    async for response in self._snapshot(partition, held, match, watcher):
                        yield response
                    sent[partition] = response.positions[partition]
            async for response in self._follow(watcher, wake, queue, sent):
                yield response
        finally:
            for held in locals_.values():
                held.feed.unsubscribe(held.listener)
            for relay in relays:
                relay.cancel()
            with self._lock:
                self._watchers.discard(watcher)
                self._most = max(self._most, watcher.most)
            self._slots.release()

    def _validate(
        self, request: pb.WatchRequest, count: int, partitioner: str
    ) -> tuple[list[int], Callable[[bytes], bool]]:
        planner = self._planner
        for name in ("start", "end", "prefix"):
            planner.check_key(getattr(request, name), name)
        if len(request.keys) > planner.limits.max_keys:
            raise invalid(
                "keys", f"{len(request.keys)} keys, over the limit of {planner.limits.max_keys}"
            )
        for key in request.keys:
            planner.check_key(key, "keys")
        bad = [p for p in request.partitions if not 0 <= p < count]
        if bad:
            raise invalid("partitions", f"{bad} are not partitions 0..{count - 1} of the table")
        try:
            low, high = scan_bounds(request.start, request.end, request.prefix, None)
        except InvalidArgument as exc:
            raise invalid(exc.field, str(exc)) from exc
        keys = frozenset(request.keys)
        partitions = set(request.partitions)
        if not partitions and keys:
            partition_of = get_partitioner(partitioner)
            partitions = {partition_of(key, count) for key in keys}
        partitions = partitions or set(range(count))
        for partition, offset in request.from_offsets.items():
            if partition not in partitions:
                raise invalid(
                    "from_offsets", f"partition {partition} is not one of the watched partitions"
                )
            if offset < 0:
                raise invalid("from_offsets", f"offset {offset} of partition {partition} < 0")

        def match(key: bytes) -> bool:
            return (
                (not keys or key in keys)
                and (low is None or key >= low)
                and (high is None or key < high)
            )

        return sorted(partitions), match

    async def _snapshot(
        self, partition: int, local: _Local, match: Callable[[bytes], bool], watcher: _Watcher
    ) -> AsyncIterator[pb.WatchResponse]:
        """The partition's matching rows exactly as of the position sent after them.

        The rows are read in chunks while changes go on, so each reflects some state between
        the feed's position before the read and after it; the changes of that interval (which
        the listener holds) are laid over them, giving the state at the later position."""
        limits = self._limits
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._pool, _read_rows, local.table, partition, match)
        if len(rows) > limits.scan_cap:
            raise ReadFailure(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the snapshot of partition {partition} has over {limits.scan_cap} rows "
                "(Limits.scan_cap): watch fewer keys, or Scan and watch from its offsets",
            )
        position = await loop.run_in_executor(self._pool, lambda: local.feed.position)
        for key, value, _ in watcher.take_before(partition, position):
            if value is None:
                rows.pop(key, None)
            else:
                rows[key] = value
        entries = [pb.Entry(key=k, value=rows[k], partition=partition) for k in sorted(rows)]
        step = limits.scan_batch_rows
        for at in range(0, len(entries), step):
            yield pb.WatchResponse(rows=entries[at : at + step])
        yield pb.WatchResponse(positions={partition: position})

    async def _follow(
        self,
        watcher: _Watcher,
        wake: asyncio.Event,
        queue: asyncio.Queue[pb.WatchResponse],
        sent: dict[int, int],
    ) -> AsyncIterator[pb.WatchResponse]:
        step, progress = self._limits.scan_batch_rows, self._limits.watch_progress
        told = dict(sent)
        """The positions the client was last told."""
        while True:
            wake.clear()
            while not queue.empty():
                response = queue.get_nowait()
                for change in response.changes:
                    sent[change.partition] = change.offset + 1
                sent.update(response.positions)
                told.update(response.positions)
                yield response
            changes, positions = watcher.take()
            if changes:
                out = [
                    pb.Change(
                        key=key,
                        value=value or b"",
                        deleted=value is None,
                        partition=partition,
                        offset=offset,
                    )
                    for partition, chunk in changes.items()
                    for key, value, offset in chunk
                ]
                for partition, position in positions.items():
                    sent[partition] = max(sent.get(partition, 0), position)
                for at in range(0, len(out), step):
                    last = at + step >= len(out)
                    yield pb.WatchResponse(
                        changes=out[at : at + step], positions=dict(sent) if last else {}
                    )
                told = dict(sent)
            else:
                for partition, position in positions.items():
                    sent[partition] = max(sent.get(partition, 0), position)
            if watcher.failure is not None:
                code, reason = watcher.failure
                raise _Ended(code, f"{reason} (resume from offsets {format_offsets(sent)})", sent)
            if not changes:
                try:
                    await asyncio.wait_for(wake.wait(), progress)
                except TimeoutError:
                    if sent != told:
                        yield pb.WatchResponse(positions=dict(sent))
                        told = dict(sent)

    async def _open_remote(
        self,
        request: pb.WatchRequest,
        remote: dict[int, list[Owner]],
        queue: asyncio.Queue[pb.WatchResponse],
        wake: asyncio.Event,
        watcher: _Watcher,
        relays: list[asyncio.Task[None]],
    ) -> list[pb.WatchResponse]:
        """Forwards the Watch of ``remote`` partitions, one stream per member chosen (the
        best holder of each); returns their first messages and relays the rest."""
        planner = self._planner
        by_endpoint: dict[str, list[int]] = {}
        for partition, owners in remote.items():
            by_endpoint.setdefault(owners[0].endpoint, []).append(partition)
        firsts = []
        for endpoint, partitions in sorted(by_endpoint.items()):
            sub = pb.WatchRequest()
            sub.CopyFrom(request)
            del sub.partitions[:]
            sub.partitions.extend(partitions)
            sub.from_offsets.clear()
            sub.from_offsets.update(
                {p: o for p, o in request.from_offsets.items() if p in partitions}
            )
            call = planner.aio_stub(endpoint, "Watch").Watch(
                sub, metadata=planner.forward_metadata()
            )
            try:
                first = await asyncio.wait_for(call.read(), self._limits.default_deadline)
            except grpc.aio.AioRpcError as exc:
                call.cancel()
                raise ReadFailure(exc.code(), exc.details() or "forwarded Watch failed") from exc
            except TimeoutError as exc:
                call.cancel()
                raise ReadFailure(
                    grpc.StatusCode.UNAVAILABLE, f"{endpoint} did not answer the Watch"
                ) from exc
            firsts.append(first)
            relays.append(asyncio.create_task(_relay(call, endpoint, queue, wake, watcher)))
        return firsts


def _read_rows(
    table: LocalTable, partition: int, match: Callable[[bytes], bool]
) -> dict[bytes, bytes]:
    try:
        return {key: value for key, value in table.items(partition, None, None) if match(key)}
    except PartitionNotHeld as exc:
        raise ReadFailure(
            grpc.StatusCode.UNAVAILABLE,
            f"partition {partition} was released during the snapshot: {exc}",
        ) from exc


async def _relay(
    call: Any,
    endpoint: str,
    queue: asyncio.Queue[pb.WatchResponse],
    wake: asyncio.Event,
    watcher: _Watcher,
) -> None:
    """Hands the messages of a forwarded Watch on (after its first); its end ends the
    stream, whose client resumes."""
    try:
        while True:
            response = await call.read()  # not ``async for``: the first was read() already
            if response is grpc.aio.EOF:
                break
            await queue.put(response)
            wake.set()
        watcher.end(grpc.StatusCode.UNAVAILABLE, f"the Watch forwarded to {endpoint} ended")
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            watcher.end(exc.code(), exc.details() or f"the Watch forwarded to {endpoint} failed")
    except asyncio.CancelledError:
        call.cancel()
        raise
    except Exception:
        _logger.exception("relaying the Watch forwarded to %s failed", endpoint)
        watcher.end(grpc.StatusCode.INTERNAL, f"relaying the Watch of {endpoint} failed")


class _Ended(ReadFailure):
    """A stream ended early, with the offsets to resume from."""

    def __init__(self, code: grpc.StatusCode, message: str, offsets: dict[int, int]) -> None:
        super().__init__(code, message)
        self.offsets = dict(offsets)


def resume_metadata(failure: ReadFailure) -> Iterable[tuple[str, str]]:
    """The trailing metadata of a stream that ended with ``failure``."""
    if isinstance(failure, _Ended):
        return ((RESUME_OFFSETS, format_offsets(failure.offsets)),)
    return ()
