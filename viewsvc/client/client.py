"""The smart client: reads goka tables over gRPC, straight from a node holding the key.

    with Client(["view-0:50051", "view-1:50051"], token=token) as client:
        client.wait_ready(5)                         # the first membership arrived
        client.get("clicks-counter-table", "user-1").value
        for entry in client.scan("clicks-counter-table", prefix=b"user-"):
            ...

The client follows the membership (``DiscoveryService.WatchMembers`` on one of the targets, or
the discovery topic with ``brokers=``), hashes each key with the table's announced partitioner
and sends the read to an eligible holder of its partition; if that holder cannot be reached it
tries the next one. When no holder is known, any node takes the read and forwards it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from discovery import DEFAULT_TOPIC, Location, MemberInfo, Owner
from discovery.routing import UnknownTable, locate
from goka.errors import ConfigError
from viewsvc.client.calls import Calls, ScanIterator
from viewsvc.client.members import KafkaMembers, MemberSource, WatchedMembers
from viewsvc.client.results import GetResult, ServedTable
from viewsvc.client.routing import fallbacks, key_routes, validate_table
from viewsvc.client.watching import WatchIterator
from viewsvc.v1 import table_pb2
from viewsvc.wire.channels import ChannelPool
from viewsvc.wire.read_options import Consistency, ReadOptions

__all__ = ["Client"]

Key = str | bytes


class Client:
    """Reads the tables of a goka deployment.

    Args:
        targets: ``host:port`` of nodes (processors, view pods or routers) to watch the
            membership on and to send reads to that no known holder can take.
        brokers: follow the discovery topic on these Kafka bootstrap servers instead of
            ``WatchMembers`` (with ``targets`` too, the targets are only the fallback).
        discovery_topic: the discovery topic (default ``goka-discovery``).
        extra_config: librdkafka settings for following the discovery topic.
        tls: connect with TLS (default False); ``ca_file`` (default: the system's roots),
            ``cert_file`` and ``key_file`` (mutual TLS) are PEM files.
        token: bearer token sent with every call (``authorization: Bearer <token>``).
        timeout: default seconds per read, failover included (default 10).

    Reads do not wait for the membership: until it arrives (see :meth:`wait_ready`) they go to
    the targets, which forward them. Keys are bytes as stored in Kafka; a ``str`` key is
    encoded as UTF-8.
    """

    def __init__(
        self,
        targets: str | Sequence[str] | None = None,
        *,
        brokers: str | None = None,
        discovery_topic: str = DEFAULT_TOPIC,
        extra_config: Mapping[str, Any] | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._targets = [targets] if isinstance(targets, str) else list(targets or ())
        if any(not isinstance(t, str) or not t for t in self._targets):
            raise ConfigError(f"targets must be 'host:port' strings, got {targets!r}")
        if not self._targets and not brokers:
            raise ConfigError(
                "pass targets=['host:port', ...] (nodes serving TableService) or brokers= "
                "(to follow the discovery topic)"
            )
        self._timeout = _check_timeout(timeout)
        self._pool = ChannelPool(
            tls=tls, ca_file=ca_file, cert_file=cert_file, key_file=key_file, token=token
        )
        self._calls = Calls(self._pool)
        self._source: MemberSource
        try:
            if brokers:
                self._source = KafkaMembers(brokers, discovery_topic, extra_config)
            else:
                self._source = WatchedMembers(self._pool, self._targets)
        except BaseException:
            self._pool.close()
            raise

    # -- membership ---------------------------------------------------------------------

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the first membership arrived; False if ``timeout`` seconds passed.

        With ``brokers``, raises GokaError if following the discovery topic failed."""
        return self._source.wait_ready(timeout)

    def members(self) -> list[MemberInfo]:
        """The live members as last learned."""
        return self._source.members()

    # -- reads --------------------------------------------------------------------------

    def get(
        self,
        table: str,
        key: Key,
        *,
        consistency: Consistency = "any",
        max_lag: int = 0,
        min_offsets: Mapping[int, int] | None = None,
        min_offsets_topic: str = "",
        timeout: float | None = None,
    ) -> GetResult:
        """The value of ``key``; a missing key has ``found`` False. Raises ReadError.

        ``min_offsets`` (partition -> offset, as ``Emitter.emit_sync`` returned) makes the
        answering replica wait until it applied them: read-your-writes.
        """
        table, raw = validate_table(table), _key(key)
        options = ReadOptions.from_arguments(consistency, max_lag, min_offsets, min_offsets_topic)
        deadline = self._deadline(timeout)
        request = table_pb2.GetRequest(table=table, key=raw, options=options.to_pb())
        [route] = key_routes(self.members(), table, [raw], options, self._targets)
        return GetResult.from_pb(self._calls.unary(route, "Get", request, deadline), raw)

    def get_many(
        self,
        table: str,
        keys: Iterable[Key],
        *,
        consistency: Consistency = "any",
        max_lag: int = 0,
        min_offsets: Mapping[int, int] | None = None,
        min_offsets_topic: str = "",
        timeout: float | None = None,
    ) -> list[GetResult]:
        """The values of ``keys``, in request order: one GetMany per holder, in parallel."""
        table, raws = validate_table(table), [_key(key) for key in keys]
        options = ReadOptions.from_arguments(consistency, max_lag, min_offsets, min_offsets_topic)
        deadline = self._deadline(timeout)
        if not raws:
            return []
        members = self.members()
        routes = key_routes(members, table, raws, options, self._targets)
        answers = self._calls.get_many(table, raws, routes, options.to_pb(), deadline)
        return [GetResult.from_pb(a, raw) for a, raw in zip(answers, raws, strict=True)]

    def scan(
        self,
        table: str,
        *,
        start: Key | None = None,
        end: Key | None = None,
        prefix: Key | None = None,
        limit: int = 0,
        page_token: str = "",
        partitions: Iterable[int] | None = None,
        consistency: Consistency = "any",
        max_lag: int = 0,
        timeout: float | None = None,
    ) -> ScanIterator:
        """Rows with ``start <= key < end`` and ``prefix``, in ascending key order.

        One node fans the scan out to the partitions' holders and merges the rows; ``limit``
        0 is the whole range up to the server's cap. When rows are left, the iterator's
        ``next_page_token`` (after exhaustion) continues the scan as ``page_token``. The
        timeout bounds the whole stream: read it promptly, or page with ``limit``.
        """
        table = validate_table(table)
        if type(limit) is not int or limit < 0:
            raise ConfigError(f"limit must be an int >= 0 (0: no limit), got {limit!r}")
        wanted = list(partitions or ())
        if any(type(p) is not int or p < 0 for p in wanted):
            raise ConfigError(f"partitions must be ints >= 0, got {partitions!r}")
        if not isinstance(page_token, str):
            raise ConfigError(f"page_token must be a previous scan's next_page_token (str), "
                              f"got {page_token!r}")  # fmt: skip
        request = table_pb2.ScanRequest(
            table=table,
            start=_key(start or b""),
            end=_key(end or b""),
            prefix=_key(prefix or b""),
            limit=limit,
            page_token=page_token,
            partitions=sorted(set(wanted)),
            options=ReadOptions.from_arguments(consistency, max_lag, None, "").to_pb(),
        )
        endpoints = fallbacks(self._targets, self.members())
        return ScanIterator(self._calls, endpoints, request, self._deadline(timeout))

    def watch(
        self,
        table: str,
        *,
        keys: Iterable[Key] | None = None,
        prefix: Key | None = None,
        start: Key | None = None,
        end: Key | None = None,
        partitions: Iterable[int] | None = None,
        from_offsets: Mapping[int, int] | None = None,
        snapshot: bool = False,
        consistency: Consistency = "any",
        max_lag: int = 0,
        timeout: float | None = None,
        reconnect_timeout: float | None = None,
    ) -> WatchIterator:
        """The changes of the matching keys (any of ``keys``, within ``prefix`` and
        ``start <= key < end``) as the deployment applies them, in offset order per
        partition; with ``snapshot``, first the current rows of the partitions without a
        ``from_offsets`` entry (``Change.snapshot``).

        ``from_offsets`` (per partition, the first offset to send, e.g. a previous watch's
        ``positions``) resumes a watch. The stream resumes by itself when it breaks, on any
        node that holds the partitions: no change is missed or repeated. It ends after
        ``timeout`` seconds (None: when closed); a watch that no node takes again within
        ``reconnect_timeout`` seconds (default: the client's timeout) raises ReadError.
        """
        table = validate_table(table)
        wanted = list(partitions or ())
        if any(type(p) is not int or p < 0 for p in wanted):
            raise ConfigError(f"partitions must be ints >= 0, got {partitions!r}")
        offsets = dict(from_offsets or {})
        if any(type(p) is not int or type(o) is not int or p < 0 or o < 0
               for p, o in offsets.items()):  # fmt: skip
            raise ConfigError(
                f"from_offsets must map partitions to offsets (ints >= 0), got {from_offsets!r}"
            )
        if not isinstance(snapshot, bool):
            raise ConfigError(f"snapshot must be True or False, got {snapshot!r}")
        request = table_pb2.WatchRequest(
            table=table,
            keys=[_key(k) for k in keys or ()],
            prefix=_key(prefix or b""),
            start=_key(start or b""),
            end=_key(end or b""),
            from_offsets=offsets,
            snapshot=snapshot,
            partitions=sorted(set(wanted)),
            options=ReadOptions.from_arguments(consistency, max_lag, None, "").to_pb(),
        )
        reconnect = self._timeout if reconnect_timeout is None else reconnect_timeout
        return WatchIterator(
            self._pool,
            lambda: fallbacks(self._targets, self.members()),
            request,
            None if timeout is None else _check_timeout(timeout),
            _check_timeout(reconnect),
        )

    def locate(self, table: str, key: Key, *, timeout: float | None = None) -> Location:
        """The key's partition and its holders, best first: computed from the membership, or
        asked of a node (``Locate``) when the membership does not know the table."""
        table, raw = validate_table(table), _key(key)
        members = self.members()
        try:
            return locate(members, table, raw)
        except UnknownTable:
            pass
        request = table_pb2.LocateRequest(table=table, key=raw)
        endpoints = fallbacks(self._targets, members)
        response = self._calls.unary(endpoints, "Locate", request, self._deadline(timeout))
        replicas = tuple(
            Owner(
                member_id=r.member_id,
                endpoint=r.endpoint,
                kind=r.kind,
                state=r.state,
                applied_offset=r.applied_offset,
                lag=r.lag,
                generation=-1,  # not part of a LocateResponse
            )
            for r in response.replicas
        )
        return Location(table, response.partition, replicas)

    def list_tables(self, *, timeout: float | None = None) -> list[ServedTable]:
        """The tables the deployment serves, by name (asked of a node)."""
        endpoints = fallbacks(self._targets, self.members())
        request = table_pb2.ListTablesRequest()
        response = self._calls.unary(endpoints, "ListTables", request, self._deadline(timeout))
        return [ServedTable.from_pb(info) for info in response.tables]

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop following the membership and close the channels."""
        self._source.close()
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _deadline(self, timeout: float | None) -> float:
        seconds = self._timeout if timeout is None else _check_timeout(timeout)
        return time.monotonic() + seconds


def _check_timeout(timeout: object) -> float:
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
        raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    return float(timeout)


def _key(key: object) -> bytes:
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    raise ConfigError(f"keys must be bytes or str (encoded as UTF-8), got {type(key).__name__}")
