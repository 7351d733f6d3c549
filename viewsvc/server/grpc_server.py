"""The gRPC server every node runs: TableService, DiscoveryService, grpc.health.v1 and server
reflection, behind the configured security and limits.

    server = TableServer(member_id, tables=[view.local_table()], membership=membership,
                         listen="0.0.0.0:50051", ready=lambda: view.state == "running")
    server.start()        # binds; health says SERVING once ready() and every partition runs
    ...
    server.stop(grace=5)  # NOT_SERVING, then finishes in-flight calls for up to `grace` s
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from discovery.model import MemberInfo
from discovery.v1 import discovery_pb2, discovery_pb2_grpc
from goka.errors import ConfigError, GokaError
from goka.local_table import LocalTable
from viewsvc.server.discovery_service import DiscoveryServicer
from viewsvc.server.event_loop import EventLoopThread
from viewsvc.server.limits import Limits
from viewsvc.server.local_tables import LocalTables
from viewsvc.server.metrics import Metrics
from viewsvc.server.planner import ReadPlanner
from viewsvc.server.security import ServerSecurity
from viewsvc.server.sync_handlers import InProcessContext, SyncHandlers
from viewsvc.server.table_service import TableServicer
from viewsvc.server.watch_service import Watches
from viewsvc.v1 import table_pb2, table_pb2_grpc
from viewsvc.wire.channels import ChannelPool

__all__ = [
    "LIVENESS",
    "UNREACHABLE_BOUND",
    "Members",
    "TableServer",
    "add_health_and_reflection",
    "bounded_server",
    "check_unreachable_bound",
]

_logger = logging.getLogger("viewsvc.server")
_SERVICES = (
    table_pb2.DESCRIPTOR.services_by_name["TableService"].full_name,
    discovery_pb2.DESCRIPTOR.services_by_name["DiscoveryService"].full_name,
)
_HEALTH_EVERY = 0.2
UNREACHABLE_BOUND = 30.0
"""Seconds without a broker connection after which health turns NOT_SERVING (default)."""


def check_unreachable_bound(bound: float | None) -> None:
    if bound is not None and not bound > 0:
        raise ConfigError(f"unreachable_bound must be positive seconds, got {bound}")


LIVENESS = "liveness"
"""A health service name that is SERVING from start to stop, whatever the partitions do: for
liveness probes, which must not restart a pod that is only recovering (readiness asks for the
service "", SERVING once the partitions run)."""
DRAIN = 1.0
"""Seconds a stopping node goes on answering after its tombstone (at most its grace): enough
for members and clients following the discovery topic to stop choosing it."""


class Members(Protocol):
    """What the server needs of a membership table (``discovery.Membership`` has it)."""

    def members(self) -> list[MemberInfo]: ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...

    def unreachable_for(self) -> float:
        """Seconds its follower has had no broker connection up (0.0: it has one)."""
        ...


class TableServer:
    """Serves ``tables`` (this node's partitions) and forwards the rest to other members.

    Args:
        member_id: this node's id in the membership (requests it forwards say so).
        tables: the local tables served (none for a router).
        membership: the deployment's membership table, started by the caller.
        listen: ``host:port`` to bind; port 0 picks a free port (see ``port``).
        ready: whether the node's own work is ready (e.g. the processor joined its group);
            health is SERVING when this holds and every held partition runs.
        security: TLS, mutual TLS and bearer token (default: none).
        peer_ca_file: with TLS, the PEM CA that signed the other members' certificates, to
            verify them when forwarding (default: ``client_ca_file``, else the system roots);
            with mutual TLS this server's certificate is its client certificate.
        limits: bounds of every call.
        metrics: where to count calls, forwards and held partitions (default: nowhere).
        ready_max_lag: health is SERVING only while every held partition is at most this
            many offsets behind the end of its table partition (default: no bound).
        unreachable_bound: health is NOT_SERVING once the holders of the tables, or the
            membership's follower (all a router has), have had no broker connection for
            longer than this many seconds, and SERVING again when one is back (default 30;
            None: no bound). Reads go on meanwhile, with lag unknown.
    """

    def __init__(
        self,
        member_id: str,
        *,
        tables: Iterable[LocalTable],
        membership: Members,
        listen: str,
        ready: Callable[[], bool] = lambda: True,
        security: ServerSecurity | None = None,
        peer_ca_file: str | None = None,
        limits: Limits | None = None,
        metrics: Metrics | None = None,
        ready_max_lag: int | None = None,
        unreachable_bound: float | None = UNREACHABLE_BOUND,
    ) -> None:
        check_unreachable_bound(unreachable_bound)
        self.member_id = member_id
        self._unreachable_bound = unreachable_bound
        self.listen = listen
        self.limits = limits or Limits()
        self._security = security or ServerSecurity()
        self._ready = ready
        self._ready_max_lag = ready_max_lag
        tables = list(tables)
        self._tables = LocalTables(tables)
        self._metrics = metrics
        self._membership = membership
        self._stopping = threading.Event()
        self._planner = ReadPlanner(
            member_id,
            self._tables,
            membership.members,
            _forwarding(self._security, peer_ca_file),
            self.limits,
        )
        # a thread for every admitted call: a call waiting for a forwarded one holds its
        # thread, so with fewer threads than calls, members forwarding to each other under
        # load would wait for one another until the deadline (threads start on demand)
        self._pool = futures.ThreadPoolExecutor(
            max_workers=self.limits.max_concurrent_rpcs,
            thread_name_prefix="viewsvc",
        )
        self._watch_slots = threading.BoundedSemaphore(self.limits.max_watchers)
        self._watches = Watches(self._planner, self.limits, self._pool, self._watch_slots)
        if metrics is not None:
            self._planner.on_forward = metrics.forwarded_call
            metrics.watch_tables(lambda: tables)
            metrics.watch_streams(self._watches.stats)
        self._forwards = futures.ThreadPoolExecutor(
            max_workers=self.limits.workers, thread_name_prefix="viewsvc-forward"
        )
        self._servicer = TableServicer(self._planner, self._forwards, self._watches)
        self._health = health.HealthServicer()
        self._loop: EventLoopThread | None = None
        self._server: grpc.aio.Server | None = None
        self._health_thread: threading.Thread | None = None
        self.port = 0
        """The bound port, once started."""

    def start(self) -> TableServer:
        self._loop = EventLoopThread(f"viewsvc-{self.member_id}")
        try:
            self._server = self._loop.run(self._serve())
        except BaseException:
            self._loop.close()
            raise
        self._health_thread = threading.Thread(
            target=self._watch_health, name=f"viewsvc-health-{self.member_id}", daemon=True
        )
        self._health_thread.start()
        _logger.info("%s serving on port %d", self.member_id, self.port)
        return self

    async def _serve(self) -> grpc.aio.Server:
        server = bounded_server(
            self._pool,
            self.limits,
            interceptors=[  # the first is outermost: refused calls are counted too
                *([self._metrics.interceptor()] if self._metrics else []),
                *self._security.interceptors(),
            ],
        )
        table_pb2_grpc.add_TableServiceServicer_to_server(  # type: ignore[no-untyped-call]
            self._servicer, server
        )
        discovery_pb2_grpc.add_DiscoveryServiceServicer_to_server(  # type: ignore[no-untyped-call]
            DiscoveryServicer(
                self._membership.members,
                self._subscribe,
                self._stopping,
                max_watchers=self.limits.max_watchers,
                watchers=self._watch_slots,
            ),
            server,
        )
        add_health_and_reflection(server, self._health)
        self.port = self._security.bind(server, self.listen)
        self._set_health(False)
        self._health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        await server.start()
        return server

    def get(self, table: str, key: bytes, timeout: float = 10.0) -> table_pb2.GetResponse:
        """``TableService.Get`` of this node, called in-process (the web monitor's queries):
        the same decision as over gRPC, local or forwarded. Raises ReadError."""
        response: table_pb2.GetResponse = self._servicer.Get(
            table_pb2.GetRequest(table=table, key=key), InProcessContext(timeout)
        )
        return response

    @property
    def serving(self) -> bool:
        """Whether health reports SERVING."""
        return self._serving

    _serving = False

    def _subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._membership.subscribe(lambda _: callback())

    def _set_health(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", *_SERVICES):
            self._health.set(service, status)
        self._serving = serving

    def _watch_health(self) -> None:
        logged: str | None = None  # the last reason logged for NOT_SERVING
        while not self._stopping.wait(_HEALTH_EVERY):
            try:
                problem = self._health_problem()
            except GokaError as exc:
                problem = f"its state cannot be read: {exc}"
            if (problem is None) == self._serving and problem == logged:
                continue
            if problem is None:
                _logger.info("%s health: SERVING", self.member_id)
            else:
                _logger.info("%s health: NOT_SERVING, %s", self.member_id, problem)
            logged = problem
            self._set_health(problem is None)

    def _health_problem(self) -> str | None:
        """Why health is NOT_SERVING now; None when it is SERVING."""
        if not self._ready():
            return "its own work is not ready (starting, rebalancing or stopped)"
        problem = self._tables.not_running(self._ready_max_lag)
        if problem is not None:
            return problem
        bound = self._unreachable_bound
        unreachable = max(self._tables.unreachable_for(), self._membership.unreachable_for())
        if bound is not None and unreachable > bound:
            return f"no broker connection for more than {bound:g} s (the unreachable bound)"
        return None

    def stop(self, grace: float = 5.0, *, drain: float = 0.0) -> None:
        """NOT_SERVING at once; goes on answering for ``drain`` seconds, so that clients and
        load balancers that saw the tombstone or the health change have moved on; then stops
        accepting calls and waits up to ``grace`` seconds for calls in flight. Idempotent."""
        self._stopping.set()
        self._health.enter_graceful_shutdown()
        self._serving = False
        if self._server is not None and drain > 0:
            time.sleep(drain)
        self._watches.close("the server is shutting down: watch another member")
        if self._server is not None and self._loop is not None:
            self._loop.run(self._server.stop(grace), grace + 1)
            self._loop.run(self._planner.aclose(), 1)
            self._server = None
        if self._loop is not None:
            self._loop.close()
        if self._health_thread is not None:
            self._health_thread.join(1)
        self._planner.close()
        self._forwards.shutdown(wait=False, cancel_futures=True)


def bounded_server(
    pool: futures.ThreadPoolExecutor,
    limits: Limits,
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
) -> grpc.aio.Server:
    """An asyncio grpc server (created on the running loop) that enforces ``limits`` (calls
    at once, request size, streams per connection), runs blocking handlers on ``pool`` and
    refuses to share its port; ``bench/grpc_reads.py`` measures a bare handler on one too, to
    tell the server's own cost from the handlers'."""
    return grpc.aio.server(
        migration_thread_pool=pool,
        interceptors=[*interceptors, SyncHandlers(pool)],
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", limits.max_request_bytes),
            ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
            ("grpc.so_reuseport", 0),
        ],
    )


def add_health_and_reflection(server: grpc.aio.Server, servicer: health.HealthServicer) -> None:
    """grpc.health.v1 and server reflection, listing every service a node serves."""
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    reflection.enable_server_reflection(
        (*_SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )


def _forwarding(security: ServerSecurity, peer_ca_file: str | None) -> ChannelPool:
    """Channels to other members, secured like this server: every member of a deployment
    uses the same TLS setup and token."""
    if security.cert_file is None:
        return ChannelPool(token=security.token)
    mutual = security.client_ca_file is not None
    return ChannelPool(
        tls=True,
        ca_file=peer_ca_file or security.client_ca_file,
        cert_file=security.cert_file if mutual else None,
        key_file=security.key_file if mutual else None,
        token=security.token,
    )
