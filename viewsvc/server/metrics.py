"""Prometheus metrics of a serving node: calls by method and status code, their latency,
forwarded calls, and (read at scrape time) the partitions held by kind and state, their lag,
recovery and, for processors, processed messages.

    metrics = Metrics()
    server = TableServer(..., metrics=metrics)    # counts calls through an interceptor
    metrics.watch_tables(local_tables)            # partitions, lag, offsets
    metrics.watch_processor(processor)            # recovery and processed messages
    metrics.watch_views(views)                    # or: a view pod's applied rows, recovery
    metrics.serve(9090)                           # GET http://host:9090/metrics
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from goka.errors import ConfigError
from goka.local_table import LocalTable
from goka.processor import Processor
from goka.view import View

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class Metrics:
    """One node's metrics, in a registry of their own (so several nodes fit one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "viewsvc_requests",
            "gRPC calls served, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "viewsvc_request_seconds",
            "Time to answer a gRPC call (streams: until the last message), by method",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.forwarded = Counter(
            "viewsvc_forwarded_requests",
            "Calls (or parts of GetMany and Scan) forwarded to another member, by method",
            ["method"],
            registry=self.registry,
        )
        self._http: Any = None

    def forwarded_call(self, method: str) -> None:
        self.forwarded.labels(method).inc()

    def interceptor(self) -> grpc.ServerInterceptor:
        return _Interceptor(self)

    def observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self.requests.labels(method, code.name).inc()
        self.latency.labels(method).observe(seconds)

    def watch_tables(self, tables: Callable[[], Iterable[LocalTable]]) -> None:
        """Reports the partitions of ``tables()`` at every scrape."""
        self.registry.register(_TablesCollector(tables))

    def watch_streams(self, stats: Callable[[], tuple[int, int, int]]) -> None:
        """Reports the Watch streams open, the changes waiting on them, and the most that
        waited on one (``stats()``)."""
        self.registry.register(_WatchCollector(stats))

    def watch_processor(self, processor: Processor) -> None:
        """Reports the processor's recovery and processed messages at every scrape."""
        self.registry.register(_ProcessorCollector(processor))

    def watch_views(self, views: Iterable[View[Any]]) -> None:
        """Reports the views' applied records and recovery time at every scrape."""
        self.registry.register(_ViewsCollector(list(views)))

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serves ``/metrics`` over HTTP on ``port`` (in a daemon thread)."""
        try:
            self._http = start_http_server(port, address, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {address}:{port}: {exc}; is the port in use? "
                "(--metrics-port)"
            ) from exc

    def close(self) -> None:
        if self._http is not None:
            server, thread = self._http
            server.shutdown()
            server.server_close()  # shutdown() only ends the loop; this frees the port
            thread.join(5)
            self._http = None


class _Interceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Times every call and counts it by its final status code (the outermost interceptor:
    the handlers it sees are coroutines, see ``viewsvc.server.sync_handlers``)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method.rsplit("/", 1)[-1]
        observe = self._metrics.observe
        if handler.unary_unary is not None:
            behavior = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                start = time.perf_counter()
                code = grpc.StatusCode.UNKNOWN
                try:
                    response = await behavior(request, context)
                    code = _code(context, grpc.StatusCode.OK)
                    return response
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except BaseException:
                    code = _code(context, grpc.StatusCode.UNKNOWN)
                    raise
                finally:
                    observe(method, code, time.perf_counter() - start)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            stream_behavior = handler.unary_stream

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                start = time.perf_counter()
                code = grpc.StatusCode.UNKNOWN
                try:
                    async for response in stream_behavior(request, context):
                        yield response
                    code = _code(context, grpc.StatusCode.OK)
                except (asyncio.CancelledError, GeneratorExit):  # the client cancelled
                    code = grpc.StatusCode.CANCELLED
                    raise
                except BaseException:
                    code = _code(context, grpc.StatusCode.UNKNOWN)
                    raise
                finally:
                    observe(method, code, time.perf_counter() - start)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler  # no client-streaming methods are served


def _code(context: Any, default: grpc.StatusCode) -> grpc.StatusCode:
    """The status the call ended with (the aio context's code() may be an int)."""
    code = context.code()
    if code is None:
        return default
    if isinstance(code, grpc.StatusCode):
        return code
    return next((c for c in grpc.StatusCode if c.value[0] == code), default)


class _WatchCollector(Collector):
    def __init__(self, stats: Callable[[], tuple[int, int, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        streams, waiting, most = self._stats()
        yield GaugeMetricFamily("viewsvc_watch_streams", "Watch streams open", value=streams)
        yield GaugeMetricFamily(
            "viewsvc_watch_waiting_changes",
            "Changes waiting to be sent on the Watch streams (each bounded by watch_buffer)",
            value=waiting,
        )
        yield GaugeMetricFamily(
            "viewsvc_watch_waiting_changes_max",
            "The most changes that waited on one Watch stream since the server started",
            value=most,
        )


class _TablesCollector(Collector):
    def __init__(self, tables: Callable[[], Iterable[LocalTable]]) -> None:
        self._tables = tables

    def collect(self) -> Iterator[Any]:
        held = GaugeMetricFamily(
            "goka_partitions",
            "Table partitions held, by kind and state",
            labels=["table", "kind", "state"],
        )
        lag = GaugeMetricFamily(
            "goka_partition_lag",
            "Offsets a held partition is behind the end of its table topic (-1: unknown)",
            labels=["table", "partition", "kind"],
        )
        offset = GaugeMetricFamily(
            "goka_partition_applied_offset",
            "The next table-topic offset a held partition would apply",
            labels=["table", "partition", "kind"],
        )
        for table in self._tables():
            meta = table.meta
            if meta is None:
                continue
            counts: dict[tuple[str, str], int] = {}
            for partition in table.held().values():
                key = (partition.kind, partition.state)
                counts[key] = counts.get(key, 0) + 1
                labels = [meta.name, str(partition.partition), partition.kind]
                lag.add_metric(labels, partition.lag)
                offset.add_metric(labels, partition.applied_offset)
            for kind in ("active", "standby", "replica"):
                for state in ("recovering", "running"):
                    held.add_metric([meta.name, kind, state], counts.get((kind, state), 0))
        yield from (held, lag, offset)


class _ViewsCollector(Collector):
    def __init__(self, views: list[View[Any]]) -> None:
        self._views = views

    def collect(self) -> Iterator[Any]:
        applied = CounterMetricFamily(
            "goka_view_applied_rows",
            "Table records a view applied since it started (recovery, then following)",
            labels=["table"],
        )
        seconds = GaugeMetricFamily(
            "goka_view_recovery_seconds",
            "Seconds from the view's start until its partitions had caught up (absent before)",
            labels=["table"],
        )
        wiped = CounterMetricFamily(
            "goka_view_wiped_stores",
            "Local stores found not to match their topic, wiped and replayed from the start",
            labels=["table"],
        )
        for view in self._views:
            applied.add_metric([view.table], view.recovered_records)
            wiped.add_metric([view.table], view.wiped_stores)
            if view.recovery_seconds is not None:
                seconds.add_metric([view.table], view.recovery_seconds)
        yield from (applied, seconds, wiped)


class _ProcessorCollector(Collector):
    def __init__(self, processor: Processor) -> None:
        self._processor = processor

    def collect(self) -> Iterator[Any]:
        group = self._processor.graph.group
        processed = CounterMetricFamily(
            "goka_processed_messages",
            "Input messages processed by this instance, per partition (since it got it)",
            labels=["group", "partition"],
        )
        recovered = CounterMetricFamily(
            "goka_recovery_rows",
            "Table records replayed while recovering or following as standby, per partition",
            labels=["group", "partition"],
        )
        seconds = GaugeMetricFamily(
            "goka_recovery_seconds",
            "How long the partition's last recovery took (absent while recovering)",
            labels=["group", "partition"],
        )
        stats = self._processor.stats()
        for partition, info in stats["partitions"].items():
            labels = [group, str(partition)]
            processed.add_metric(labels, info.get("messages_in", 0))
            recovered.add_metric(labels, info.get("recovered_records", 0))
            if info.get("recovery_seconds") is not None:
                seconds.add_metric(labels, info["recovery_seconds"])
        guarantee = GaugeMetricFamily(
            "goka_processor_guarantee",
            "1 for the processing guarantee the processor runs with",
            labels=["group", "guarantee"],
        )
        guarantee.add_metric([group, stats["guarantee"]], 1)
        transactions = CounterMetricFamily(
            "goka_processor_transactions",
            "Batches committed as Kafka transactions (exactly-once), and those aborted",
            labels=["group", "outcome"],
        )
        transactions.add_metric([group, "committed"], stats["transactions"])
        transactions.add_metric([group, "aborted"], stats["aborted_transactions"])
        yield from (processed, recovered, seconds, guarantee, transactions)
