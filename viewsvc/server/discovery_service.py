"""DiscoveryService: the membership table over gRPC, for clients that do not read Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc

from discovery.model import KIND_VALUES, ROLE_VALUES, STATE_VALUES, MemberInfo
from discovery.v1 import discovery_pb2 as pb
from discovery.v1 import discovery_pb2_grpc

__all__ = ["DiscoveryServicer", "threadsafe_setter", "to_member"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DiscoveryServicer(discovery_pb2_grpc.DiscoveryServiceServicer):
    """Answers from ``members()``; ``subscribe(changed)`` registers a callback run after every
    change of the membership and returns a function that unregisters it.

    ``coalesce`` (default 0.1 s) is how long WatchMembers waits after a change for more
    changes before it sends, so a burst (a rebalance) is one message; ``poll`` (default 1 s)
    bounds how late it notices ``stopping``. At most ``max_watchers`` watch streams run at
    once (``watchers``: a semaphore shared with Watch); more are refused with
    RESOURCE_EXHAUSTED.
    """

    def __init__(
        self,
        members: Callable[[], list[MemberInfo]],
        subscribe: Callable[[Callable[[], None]], Callable[[], None]],
        stopping: threading.Event,
        *,
        coalesce: float = 0.1,
        poll: float = 1.0,
        max_watchers: int = 128,
        watchers: threading.BoundedSemaphore | None = None,
    ) -> None:
        self._members = members
        self._max_watchers = max_watchers
        self._watchers = watchers or threading.BoundedSemaphore(max_watchers)
        self._subscribe = subscribe
        self._stopping = stopping
        self._coalesce = coalesce
        self._poll = poll

    def Members(
        self, request: pb.MembersRequest, context: grpc.ServicerContext
    ) -> pb.MembersResponse:
        return pb.MembersResponse(members=[to_member(m) for m in self._live(request.table)])

    async def WatchMembers(
        self, request: pb.WatchMembersRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchMembersResponse]:
        """Sends the list at once, then whenever it changed other than by heartbeats.

        A heartbeat only renews ``sequence``, ``emitted_at`` and ``last_heard``; sending the
        whole list for each one would cost a message per member per heartbeat interval for
        nothing: liveness is the server's business, and a member that dies drops out of the
        list, which is a change. The stream waits on the event loop, holding no thread.
        """
        if not self._watchers.acquire(blocking=False):
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this node serves at most {self._max_watchers} watch streams "
                "(Limits.max_watchers): watch another node, or follow the discovery topic "
                "with Client(brokers=...)",
            )
        changed = asyncio.Event()
        unsubscribe = self._subscribe(threadsafe_setter(changed))
        try:
            sent: tuple[MemberInfo, ...] | None = None
            while True:
                if self._stopping.is_set():
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        "the server is shutting down: watch another member",
                    )
                changed.clear()  # before reading, so a change while reading is not lost
                members = self._live(request.table)
                seen = tuple(_without_heartbeat(m) for m in members)
                if seen != sent:
                    yield pb.WatchMembersResponse(members=[to_member(m) for m in members])
                    sent = seen
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self._poll)
                    await asyncio.sleep(self._coalesce)
        finally:
            unsubscribe()
            self._watchers.release()

    def _live(self, table: str) -> list[MemberInfo]:
        members = self._members()
        if not table:
            return members
        return [m for m in members if any(t.topic == table and t.partitions for t in m.tables)]


def to_member(info: MemberInfo) -> pb.Member:
    """The protobuf form of a member: the inverse of ``discovery.model.from_announcement``."""
    announcement = pb.Announcement(
        member_id=info.member_id,
        role=ROLE_VALUES.get(info.role, pb.ROLE_UNSPECIFIED),
        endpoint=info.endpoint,
        group=info.group,
        generation=info.generation,
        sequence=info.sequence,
    )
    announcement.heartbeat_interval.FromNanoseconds(round(info.heartbeat * 1e9))
    announcement.emitted_at.FromDatetime(info.emitted_at)
    for table in info.tables:
        holdings = announcement.tables.add(
            topic=table.topic,
            partitioner=table.partitioner,
            partition_count=table.partition_count,
            key_codec=table.key_codec,
            value_codec=table.value_codec,
        )
        for p in table.partitions:
            holdings.partitions.add(
                partition=p.partition,
                kind=KIND_VALUES.get(p.kind, pb.PARTITION_KIND_UNSPECIFIED),
                state=STATE_VALUES.get(p.state, pb.PARTITION_STATE_UNSPECIFIED),
                applied_offset=p.applied_offset,
                lag=p.lag,
            )
    member = pb.Member(announcement=announcement)
    member.last_heard.FromDatetime(info.last_heard)
    return member


def _without_heartbeat(info: MemberInfo) -> MemberInfo:
    return dataclasses.replace(info, sequence=0, emitted_at=_EPOCH, last_heard=_EPOCH)


def threadsafe_setter(event: asyncio.Event) -> Callable[[], None]:
    """A function any thread may call to set ``event`` (of the running loop); a no-op once
    the loop is closed."""
    loop = asyncio.get_running_loop()

    def set_event() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(event.set)

    return set_event
