"""Serving a processor's table over gRPC: ``Processor(..., serve=ServeConfig(listen=...))``.

The processor's active and standby partitions are served; reads of other partitions are
forwarded to their holders, found in the discovery topic (the processor's
``DiscoveryConfig`` topic, so pass ``discovery=DiscoveryConfig(advertise=...)`` too, or other
members cannot find this one).
"""

from __future__ import annotations

from dataclasses import dataclass

from discovery import DEFAULT_TOPIC, DiscoveryConfig, Membership
from discovery.config import check_address, check_port
from goka.errors import ConfigError
from goka.processor import Processor
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

__all__ = ["ProcessorServer", "ServeConfig"]


@dataclass(frozen=True)
class ServeConfig:
    """Serve a processor's table partitions over gRPC (TableService, DiscoveryService,
    health and reflection).

    Args:
        listen: ``host:port`` to bind, e.g. ``"0.0.0.0:50051"``.
        security: TLS, mutual TLS and bearer token (default: none).
        limits: bounds of every call (default ``Limits()``).
        peer_ca_file: see ``TableServer``.
        grace: seconds a stop waits for calls in flight (default 5).
        metrics_port: serve Prometheus metrics on this port at ``/metrics`` (default: none).
        http_port: serve the web monitor and query page on this port (default: none; see
            ``viewsvc.web``).
        unreachable_bound: health turns NOT_SERVING after this many seconds without a broker
            connection (default 30; None: never); see ``TableServer``.
    """

    listen: str
    security: ServerSecurity | None = None
    limits: Limits | None = None
    peer_ca_file: str | None = None
    grace: float = 5.0
    metrics_port: int | None = None
    unreachable_bound: float | None = UNREACHABLE_BOUND
    http_port: int | None = None

    def __post_init__(self) -> None:
        check_address("listen", self.listen, "0.0.0.0:50051")
        check_port("metrics_port", self.metrics_port)
        check_port("http_port", self.http_port)
        if self.grace < 0:
            raise ConfigError(f"grace must be >= 0 seconds, got {self.grace}")
        check_unreachable_bound(self.unreachable_bound)

    def attach(self, processor: Processor) -> ProcessorServer:
        return ProcessorServer(self, processor)


class ProcessorServer:
    """The ProcessorObserver that runs a processor's TableServer."""

    def __init__(self, config: ServeConfig, processor: Processor) -> None:
        self.config = config
        self._processor = processor
        announced = processor.discovery
        self._discovery = (
            announced if isinstance(announced, DiscoveryConfig) else DiscoveryConfig(DEFAULT_TOPIC)
        )
        self.server: TableServer | None = None
        self._membership: Membership | None = None
        self.metrics: Metrics | None = None
        self.monitor: Monitor | None = None

    def started(self) -> None:
        processor, config = self._processor, self.config
        self._membership = Membership(
            processor.brokers,
            self._discovery.topic,
            replication_factor=self._discovery.replication_factor,
            min_insync_replicas=self._discovery.min_insync_replicas,
            extra_config=processor.extra_config,
        ).start()
        if config.metrics_port is not None:
            self.metrics = Metrics()
            self.metrics.watch_processor(processor)
            self.metrics.serve(config.metrics_port)
        self.server = TableServer(
            processor.member_id,
            tables=[processor.local_table()],
            membership=self._membership,
            listen=config.listen,
            ready=lambda: processor.state == "running" and processor.generation >= 0,
            security=config.security,
            peer_ca_file=config.peer_ca_file,
            limits=config.limits,
            metrics=self.metrics,
            unreachable_bound=config.unreachable_bound,
        ).start()
        if config.http_port is not None:
            server, table = self.server, processor.local_table()
            self.monitor = Monitor(
                NodeSource(
                    processor.member_id,
                    "processor",
                    lambda: [table],
                    self._membership.members,
                    lambda: server.serving,
                    server.get,
                    processor.stats,
                    config.security.token if config.security else None,
                ),
                config.http_port,
            ).start()

    def changed(self) -> None:
        """Health follows the partitions by itself."""

    def stopped(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        if self.server is not None:
            self.server.stop(self.config.grace, drain=min(DRAIN, self.config.grace))
        if self._membership is not None:
            self._membership.stop()
        if self.metrics is not None:
            self.metrics.close()

    def standby_partitions(self) -> set[int] | None:
        return None  # placed by the discovery plugin
