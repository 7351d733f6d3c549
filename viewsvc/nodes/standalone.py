"""The serving nodes that are not processors: a view server (full-table replicas of one or
more tables) and a stateless router. Each follows the membership, announces itself and runs
a TableServer until stopped.

    node = ViewServer(brokers, ["clicks-counter-table"], NodeConfig(listen="0.0.0.0:50051"))
    node.start()     # binds, announces (role view), recovers the tables, then SERVING
    node.stop()      # tombstone, NOT_SERVING, in-flight calls finish within the grace
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from discovery import DEFAULT_TOPIC, Announcer, DiscoveryConfig, Membership, routing
from discovery.config import check_address, check_port
from goka import codec
from goka.errors import ConfigError
from goka.storage import LMDBStorage
from goka.view import View
from viewsvc.nodes.sharding import wanted_partitions
from viewsvc.server.grpc_server import (
    DRAIN,
    UNREACHABLE_BOUND,
    TableServer,
    check_unreachable_bound,
)
from viewsvc.server.limits import Limits
from viewsvc.server.metrics import Metrics
from viewsvc.server.security import ServerSecurity
from viewsvc.web.monitor import Monitor, NodeSource

__all__ = ["NodeConfig", "Router", "ViewServer"]

_logger = logging.getLogger("viewsvc")


@dataclass(frozen=True)
class NodeConfig:
    """What every view server and router needs besides its tables.

    Args:
        listen: ``host:port`` to bind; port 0 picks a free port.
        advertise: ``host:port`` other members reach this node at (default: the listen host,
            or this machine's hostname when listening on all interfaces, with the bound port).
        discovery_topic: the discovery topic (default ``goka-discovery``).
        heartbeat: seconds between announcements (default 2).
        replication_factor, min_insync_replicas: of the discovery topic if this node
            creates it (default: the broker's defaults).
        member_id: this node's id (default ``<role>@<hostname>:<pid>:<random>``).
        security, limits, peer_ca_file, grace: see ``TableServer`` and ``ServeConfig``.
        extra_config: librdkafka settings for every Kafka client.
        metrics_port: serve Prometheus metrics on this port at ``/metrics`` (default: none).
        http_port: serve the web monitor and query page on this port (default: none; see
            ``viewsvc.web``).
        unreachable_bound: health says NOT_SERVING after this many seconds without a broker
            connection, of the held tables' readers or of the membership's follower (default
            30; None: never).
    """

    listen: str
    advertise: str = ""
    discovery_topic: str = DEFAULT_TOPIC
    heartbeat: float = 2.0
    replication_factor: int = -1
    min_insync_replicas: int | None = None
    member_id: str = ""
    security: ServerSecurity = field(default_factory=ServerSecurity)
    limits: Limits = field(default_factory=Limits)
    peer_ca_file: str | None = None
    grace: float = 5.0
    extra_config: Mapping[str, Any] = field(default_factory=dict)
    metrics_port: int | None = None
    unreachable_bound: float | None = UNREACHABLE_BOUND
    http_port: int | None = None

    def __post_init__(self) -> None:
        check_address("listen", self.listen, "0.0.0.0:50051")
        check_port("metrics_port", self.metrics_port)
        check_port("http_port", self.http_port)
        check_unreachable_bound(self.unreachable_bound)
        if self.advertise:
            check_address("advertise", self.advertise)
        if self.grace < 0:
            raise ConfigError(f"grace must be >= 0 seconds, got {self.grace}")


class _StandaloneNode:
    """What a view server and a router share: the membership, the TableServer, the
    announcer and the metrics."""

    role: Literal["view", "router"]

    def __init__(self, brokers: str | Iterable[str], config: NodeConfig) -> None:
        self.brokers = brokers
        self.config = config
        self.member_id = config.member_id or (
            f"{self.role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self.membership = Membership(
            brokers,
            config.discovery_topic,
            replication_factor=config.replication_factor,
            min_insync_replicas=config.min_insync_replicas,
            extra_config=config.extra_config,
        )
        self.server: TableServer | None = None
        self.monitor: Monitor | None = None
        self.announcer: Announcer | None = None
        self.advertised = ""
        self.metrics = Metrics() if config.metrics_port is not None else None

    def _serve(
        self,
        views: list[tuple[View[Any], str]],
        *,
        group: str = "",
        ready_max_lag: int | None = None,
    ) -> None:
        config = self.config
        local = [view.local_table(value_codec=name) for view, name in views]
        self.server = TableServer(
            self.member_id,
            tables=local,
            membership=self.membership,
            listen=config.listen,
            ready=lambda: all(view.state == "running" for view, _ in views),
            security=config.security,
            peer_ca_file=config.peer_ca_file,
            limits=config.limits,
            metrics=self.metrics,
            ready_max_lag=ready_max_lag,
            unreachable_bound=config.unreachable_bound,
        ).start()
        if self.metrics is not None and config.metrics_port is not None:
            self.metrics.watch_views(view for view, _ in views)
            self.metrics.serve(config.metrics_port)
        if config.http_port is not None:
            server = self.server
            self.monitor = Monitor(
                NodeSource(
                    self.member_id,
                    self.role,
                    lambda: local,
                    self.membership.members,
                    lambda: server.serving,
                    server.get,
                    None,
                    config.security.token,
                ),
                config.http_port,
            ).start()
        self.advertised = _advertised(config, self.server.port)
        self.announcer = Announcer(
            DiscoveryConfig(
                config.discovery_topic,
                self.advertised,
                config.heartbeat,
                config.replication_factor,
                config.min_insync_replicas,
            ),
            member_id=self.member_id,
            role=self.role,
            brokers=self.brokers,
            extra_config=config.extra_config,
            group=group,
            tables=lambda: local,
        ).start()

    def stop(self) -> None:
        """Tombstone first (clients stop choosing this node), then drain the server."""
        if self.monitor is not None:
            self.monitor.stop()
        if self.announcer is not None:
            self.announcer.stop()
        if self.server is not None:
            self.server.stop(self.config.grace, drain=min(DRAIN, self.config.grace))
        self.membership.stop()
        if self.metrics is not None:
            self.metrics.close()


class ViewServer(_StandaloneNode):
    """Holds partitions of ``tables`` (as views) and serves them: every partition, or with a
    ``view_group`` those that the hash ring over the group's live pods places on this one.

    Args:
        brokers: bootstrap servers.
        tables: table topics to hold.
        config: listen address, discovery and security settings.
        storage_dir: where the views' LMDB files live (default: a temporary directory).
        table_timeout: seconds to wait for a processor to announce how a table's keys are
            partitioned and its values encoded, before falling back to ``partitioner`` and
            ``value_codec``.
        partitioner, value_codec: the table's partitioner and value codec name when no
            member announces them (or to override them).
        view_group: shard the tables over the live view pods of this group (default: hold
            everything). Pods recompute placement on every membership change, recover newly
            placed partitions, and keep lost ones until their new holders run them.
        replicas: pods holding each partition within the view group (default 1).
        ready_max_lag: health says SERVING only while every held partition is at most this
            many offsets behind its table's end (default: no bound).
    """

    role = "view"

    def __init__(
        self,
        brokers: str | Iterable[str],
        tables: Iterable[str],
        config: NodeConfig,
        *,
        storage_dir: str | None = None,
        table_timeout: float = 10.0,
        partitioner: str | None = None,
        value_codec: str | None = None,
        view_group: str = "",
        replicas: int = 1,
        ready_max_lag: int | None = None,
    ) -> None:
        super().__init__(brokers, config)
        if replicas < 1:
            raise ConfigError(f"replicas must be at least 1, got {replicas}")
        if replicas != 1 and not view_group:
            raise ConfigError("replicas only apply within a view group: pass --view-group too")
        if ready_max_lag is not None and ready_max_lag < 0:
            raise ConfigError(f"ready_max_lag must be >= 0 offsets, got {ready_max_lag}")
        self.view_group = view_group
        self.replicas = replicas
        self._ready_max_lag = ready_max_lag
        self.tables = list(dict.fromkeys(tables))
        if not self.tables or not all(self.tables):
            raise ConfigError("name at least one table topic to serve (--table), none empty")
        self._storage = LMDBStorage(storage_dir) if storage_dir else None
        self._table_timeout = table_timeout
        self._partitioner = partitioner
        self._value_codec = value_codec
        self.views: list[View[bytes]] = []

    def start(self) -> ViewServer:
        self.membership.start()
        self.membership.wait_synced(self._table_timeout)
        chosen = []
        for table in self.tables:
            partitioner, value_codec = self._table_codecs(table)
            view = View(
                self.brokers,
                table,
                codec.Bytes(),
                partitions=[] if self.view_group else None,
                storage=self._storage,
                partitioner=partitioner,
                extra_config=self.config.extra_config,
            )
            self.views.append(view)
            chosen.append((view, value_codec))
        if self.view_group:
            self._place()
            self.membership.subscribe(lambda _: self._place())
        self._serve(
            chosen,
            group=self.view_group,
            ready_max_lag=self._ready_max_lag,
        )
        for view in self.views:
            view.start()
        return self

    def _place(self) -> None:
        """Holds what the view group's placement (and handing over) asks for now."""
        members = self.membership.members()
        for view in self.views:
            wanted = wanted_partitions(
                members,
                self.member_id,
                self.view_group,
                view.table,
                view.partition_count,
                self.replicas,
                view.partitions,
            )
            if wanted != set(view.partitions):
                view.set_partitions(wanted)

    def _table_codecs(self, table: str) -> tuple[str, str]:
        info = routing.table_info(self.membership.members(), table)
        if info is None and (self._partitioner is None or self._value_codec is None):
            _logger.warning(
                "no live member announces table %s: assuming partitioner %s and value codec "
                "%s (set --partitioner and --value-codec to be sure)",
                table,
                self._partitioner or "murmur2",
                self._value_codec or "bytes",
            )
        partitioner = self._partitioner or (info.partitioner if info else "murmur2")
        value_codec = self._value_codec or (info.value_codec if info else "bytes")
        return partitioner, value_codec

    def stop(self) -> None:
        super().stop()
        for view in self.views:
            view.stop()


class Router(_StandaloneNode):
    """Holds no data: forwards every read to a member holding the partition."""

    role = "router"

    def start(self, timeout: float = 10.0) -> Router:
        """Reads the discovery topic to its end (up to ``timeout`` seconds), then serves."""
        self.membership.start()
        self.membership.wait_synced(timeout)
        self._serve([])
        return self


def _advertised(config: NodeConfig, port: int) -> str:
    if config.advertise:
        host, _, wanted = config.advertise.rpartition(":")
        return f"{host}:{port}" if wanted == "0" else config.advertise
    host = config.listen.rpartition(":")[0]
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = socket.gethostname()
    return f"{host}:{port}"
