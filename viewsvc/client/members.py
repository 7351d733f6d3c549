"""Where the smart client learns the live members: a node's ``DiscoveryService.WatchMembers``
stream, or the discovery topic itself (``discovery.Membership``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any, Protocol

import grpc

from discovery import MemberInfo, Membership
from discovery.model import MalformedAnnouncement, from_announcement
from discovery.v1 import discovery_pb2, discovery_pb2_grpc
from viewsvc.wire.channels import ChannelPool

__all__ = ["KafkaMembers", "MemberSource", "WatchedMembers"]

_logger = logging.getLogger("goka.viewsvc.client")
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 5.0


class MemberSource(Protocol):
    def members(self) -> list[MemberInfo]: ...

    def wait_ready(self, timeout: float | None) -> bool: ...

    def close(self) -> None: ...


class WatchedMembers:
    """Follows ``WatchMembers`` on one of ``targets`` in a daemon thread.

    When the stream breaks (or a target cannot be reached), the next target is tried after a
    growing pause (0.1 s doubling up to 5 s); the last known members stay in use meanwhile. The
    server sends only live members, so its list is taken as it is.
    """

    def __init__(self, pool: ChannelPool, targets: Sequence[str]) -> None:
        self._pool = pool
        self._targets = list(targets)
        self._lock = threading.Lock()
        self._members: list[MemberInfo] = []
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._call: Any = None
        self._thread = threading.Thread(target=self._follow, name="goka-client-watch", daemon=True)
        self._thread.start()

    def members(self) -> list[MemberInfo]:
        with self._lock:
            return list(self._members)

    def wait_ready(self, timeout: float | None) -> bool:
        return self._ready.wait(timeout)

    def close(self) -> None:
        with self._lock:
            self._stopping.set()
            call = self._call
        if call is not None:
            call.cancel()
        self._thread.join(5.0)

    def _follow(self) -> None:
        backoff, attempt = _FIRST_BACKOFF, 0
        while not self._stopping.is_set():
            target = self._targets[attempt % len(self._targets)]
            attempt += 1
            try:
                for response in self._open(target):
                    self._update(response.members)
                    backoff = _FIRST_BACKOFF
            except grpc.RpcError as exc:
                if not self._stopping.is_set():
                    _logger.info("watching members on %s: %s", target, _describe(exc))
            except Exception:
                _logger.exception("watching members on %s failed", target)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _open(self, target: str) -> Iterable[discovery_pb2.WatchMembersResponse]:
        stub = discovery_pb2_grpc.DiscoveryServiceStub(self._pool.channel(target))  # type: ignore[no-untyped-call]
        call = stub.WatchMembers(
            discovery_pb2.WatchMembersRequest(), metadata=self._pool.metadata()
        )
        with self._lock:
            if self._stopping.is_set():
                call.cancel()
            self._call = call
        return call  # type: ignore[no-any-return]

    def _update(self, members: Iterable[discovery_pb2.Member]) -> None:
        converted = []
        for member in members:
            heard = member.last_heard.ToDatetime(tzinfo=UTC)
            try:
                converted.append(from_announcement(member.announcement, None, heard))
            except MalformedAnnouncement as exc:
                _logger.warning("ignoring a malformed member: %s", exc)
        with self._lock:
            self._members = converted
        self._ready.set()


class KafkaMembers:
    """Follows the discovery topic (which must exist) with a ``Membership``."""

    def __init__(
        self, brokers: str, topic: str, extra_config: Mapping[str, Any] | None = None
    ) -> None:
        self._membership = Membership(brokers, topic, create=False, extra_config=extra_config)
        self._membership.start()

    def members(self) -> list[MemberInfo]:
        return self._membership.members()

    def wait_ready(self, timeout: float | None) -> bool:
        return self._membership.wait_synced(timeout)

    def close(self) -> None:
        self._membership.stop()


def _describe(exc: grpc.RpcError) -> str:
    code = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    if callable(code) and callable(details):
        return f"{code().name}: {details()}"
    return str(exc)
