"""The web monitor and query page every node serves with ``--http-port``, as Goka's
``web/monitor`` and ``web/query`` do: static pages (no build step) that poll a small JSON API.

    GET /               the monitor: this node, its partitions and rates, its processor's
                        stats, and the whole deployment as the discovery topic shows it
    GET /query          the query page: a key's decoded value, partition, offset, server
    GET /api/node       this node (JSON)
    GET /api/members    the deployment's members (JSON)
    GET /api/get?table=T&key=K
                        a read through the node's TableService.Get: the same routing as gRPC

Read-only (GET only). The pages render every value as text (``textContent``), never as
markup. With a bearer token configured for gRPC, every ``/api`` request needs it too
(``Authorization: Bearer <token>``; the pages ask for it and keep it for the tab); the static
pages hold no data and stay open, like health and reflection over gRPC.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from discovery.model import MemberInfo, member_json, utc
from goka.codec import JSON, Int64, String
from goka.errors import CodecError, ConfigError, ReadError
from goka.local_table import LocalTable

__all__ = ["Monitor", "NodeSource"]

_logger = logging.getLogger("viewsvc.web")

_PAGES = {
    "/": ("monitor.html", "text/html; charset=utf-8"),
    "/query": ("query.html", "text/html; charset=utf-8"),
    "/monitor.js": ("monitor.js", "text/javascript; charset=utf-8"),
    "/query.js": ("query.js", "text/javascript; charset=utf-8"),
    "/common.js": ("common.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_DECODERS: dict[str, Callable[[bytes], Any]] = {
    "string": String().decode,
    "int64": Int64().decode,
    "json": JSON().decode,
}
_SAMPLE_EVERY = 1.0
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class NodeSource:
    """What the monitor shows of a node."""

    member_id: str
    role: str
    """"processor", "view" or "router"."""
    tables: Callable[[], list[LocalTable]]
    members: Callable[[], list[MemberInfo]]
    serving: Callable[[], bool]
    """Whether gRPC health says SERVING."""
    get: Callable[[str, bytes], Any]
    """TableService.Get of this node: (table, key) -> GetResponse; raises ReadError."""
    stats: Callable[[], dict[str, Any]] | None = None
    """The processor's stats, for a processor."""
    token: str | None = None


class _Rates:
    """Per table partition, applied records per second; per processor partition, processed
    input messages and recovered records per second, from samples a second apart."""

    def __init__(self, source: NodeSource) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._last: tuple[float, dict[tuple[str, int], tuple[int, int, int]]] | None = None
        self.rates: dict[tuple[str, int], tuple[float, float, float]] = {}

    def sample(self) -> None:
        now = time.monotonic()
        counts: dict[tuple[str, int], tuple[int, int, int]] = {}
        processed = self._processor_counts()
        for table in self._source.tables():
            meta = table.meta
            if meta is None:
                continue
            for partition, held in table.held().items():
                messages, recovered = processed.get(partition, (0, 0))
                counts[meta.name, partition] = (max(held.applied_offset, 0), messages, recovered)
        with self._lock:
            if self._last is not None:
                then, before = self._last
                elapsed = max(now - then, 1e-6)
                self.rates = {
                    where: tuple(  # type: ignore[misc]
                        max(0, now_count - then_count) / elapsed
                        for now_count, then_count in zip(count, before[where], strict=True)
                    )
                    for where, count in counts.items()
                    if where in before
                }
            self._last = (now, counts)

    def _processor_counts(self) -> dict[int, tuple[int, int]]:
        stats = self._source.stats() if self._source.stats is not None else {}
        return {
            int(p): (int(s.get("messages_in") or 0), int(s.get("recovered_records") or 0))
            for p, s in stats.get("partitions", {}).items()
        }

    def of(self, table: str, partition: int) -> tuple[float, float, float]:
        with self._lock:
            return self.rates.get((table, partition), (0.0, 0.0, 0.0))


def _input_lags(stats: dict[str, Any] | None) -> dict[int, int]:
    """Per processor partition of ``stats``, the messages of its inputs not processed yet
    (-1: unknown)."""
    lags = {}
    for p, s in (stats or {}).get("partitions", {}).items():
        values = [entry.get("lag") for entry in s.get("input", {}).values()]
        lags[int(p)] = -1 if None in values else sum(values)
    return lags


class Monitor:
    """Serves the pages and the API on ``address:port`` in daemon threads until ``stop()``."""

    def __init__(self, source: NodeSource, port: int, address: str = "0.0.0.0") -> None:
        self._source = source
        self._rates = _Rates(source)
        self._stopping = threading.Event()
        monitor = self

        class Handler(_Handler):
            owner = monitor

        try:
            self._http = ThreadingHTTPServer((address, port), Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve the web monitor on {address}:{port}: {exc.strerror}; is the port "
                "in use? (--http-port)"
            ) from exc
        self._http.daemon_threads = True
        self.port: int = self._http.server_address[1]
        self._threads = [
            threading.Thread(target=self._http.serve_forever, name="viewsvc-web", daemon=True),
            threading.Thread(target=self._sample, name="viewsvc-web-rates", daemon=True),
        ]

    def start(self) -> Monitor:
        for thread in self._threads:
            thread.start()
        _logger.info("%s web monitor on port %d", self._source.member_id, self.port)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(5)

    def _sample(self) -> None:
        while not self._stopping.wait(_SAMPLE_EVERY):
            try:
                self._rates.sample()
            except Exception:  # a holder closing meanwhile: the next sample tells
                _logger.debug("sampling the rates failed", exc_info=True)

    # -- the API ------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        token = self._source.token
        if token is None:
            return True
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )

    def node(self) -> dict[str, Any]:
        source = self._source
        stats = source.stats() if source.stats is not None else None
        input_lags = _input_lags(stats)
        tables = []
        for table in source.tables():
            meta = table.meta
            if meta is None:
                continue
            partitions = []
            for partition, held in sorted(table.held().items()):
                applied, processed, recovered = self._rates.of(meta.name, partition)
                partitions.append(
                    {
                        "partition": partition,
                        "kind": held.kind,
                        "state": held.state,
                        "applied_offset": held.applied_offset,
                        "lag": held.lag,
                        "input_lag": input_lags.get(partition) if held.kind == "active" else None,
                        "applied_per_s": round(applied, 1),
                        "processed_per_s": round(processed, 1),
                        "recovered_per_s": round(recovered, 1),
                    }
                )
            tables.append({**_meta(meta), "partitions": partitions})
        return {
            "member_id": source.member_id,
            "role": source.role,
            "serving": source.serving(),
            "tables": tables,
            "processor": stats,
        }

    def members(self) -> dict[str, Any]:
        """The membership as ``viewsvc members --json`` shows it, with how long ago each
        member was heard and which one is this node."""
        now = time.time()
        return {
            "members": [
                {
                    **member_json(m),
                    "heard_s_ago": round(max(0.0, now - utc(m.last_heard).timestamp()), 1),
                    "self": m.member_id == self._source.member_id,
                }
                for m in sorted(self._source.members(), key=lambda m: m.member_id)
            ]
        }

    def get(self, table: str, key: str) -> dict[str, Any]:
        response = self._source.get(table, key.encode("utf-8"))
        codec = self._value_codec(table)
        return {
            "table": table,
            "key": key,
            "found": response.found,
            "value": _decoded(codec, response.value) if response.found else None,
            "value_base64": base64.b64encode(response.value).decode(),
            "value_codec": codec,
            "partition": response.partition,
            "offset": response.offset,
            "served_by": response.served_by,
        }

    def _value_codec(self, table: str) -> str:
        for local in self._source.tables():
            if local.meta is not None and local.meta.name == table:
                return local.meta.value_codec
        for member in self._source.members():
            for info in member.tables:
                if info.topic == table:
                    return info.value_codec
        return ""


def _meta(meta: Any) -> dict[str, Any]:
    return {
        "name": meta.name,
        "key_codec": meta.key_codec,
        "value_codec": meta.value_codec,
        "partitioner": meta.partitioner,
        "partition_count": meta.partition_count,
    }


def _decoded(codec: str, value: bytes) -> Any:
    """The value decoded with the table's codec; its bytes literal if the codec is not known
    here or the value is not of it."""
    decode = _DECODERS.get(codec)
    if decode is not None:
        try:
            return decode(value)
        except CodecError:
            pass
    return repr(value)


class _Handler(BaseHTTPRequestHandler):
    owner: Monitor
    server_version = "goka-monitor"
    sys_version = ""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        page = _PAGES.get(url.path)
        if page is not None:
            name, content_type = page
            body = resources.files("viewsvc.web").joinpath("static", name).read_bytes()
            self._send(HTTPStatus.OK, body, content_type)
            return
        if not url.path.startswith("/api/"):
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {url.path}: try / or /query"})
            return
        if not self.owner.authorized(self.headers.get("Authorization")):
            self._json(
                HTTPStatus.UNAUTHORIZED,
                {"error": "this node needs its bearer token: Authorization: Bearer <token>"},
            )
            return
        try:
            self._api(url.path, parse_qs(url.query, keep_blank_values=True))
        except Exception:  # the client gets no internal text, the log has it
            _logger.exception("web monitor %s failed", url.path)
            self._json(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": "internal error (in the node's log)"},
            )

    def _api(self, path: str, query: dict[str, list[str]]) -> None:
        if path == "/api/node":
            self._json(HTTPStatus.OK, self.owner.node())
        elif path == "/api/members":
            self._json(HTTPStatus.OK, self.owner.members())
        elif path == "/api/get":
            table = (query.get("table") or [""])[0]
            keys = query.get("key")
            if not table or not keys:
                self._json(
                    HTTPStatus.BAD_REQUEST,
                    {"error": "pass ?table=<table topic>&key=<key, UTF-8>"},
                )
                return
            try:
                self._json(HTTPStatus.OK, self.owner.get(table, keys[0]))
            except ReadError as exc:
                status = _HTTP_STATUS.get(exc.code.name, HTTPStatus.BAD_GATEWAY)
                self._json(status, {"error": str(exc), "code": exc.code.name})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no API {path}"})

    def do_POST(self) -> None:
        self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "the monitor is read-only"})

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _json(self, status: HTTPStatus, payload: Any) -> None:
        body = json.dumps(payload, default=str).encode()
        self._send(status, body, "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in _HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _logger.debug("%s %s", self.address_string(), format % args)


_HTTP_STATUS = {
    "NOT_FOUND": HTTPStatus.NOT_FOUND,
    "INVALID_ARGUMENT": HTTPStatus.BAD_REQUEST,
    "UNAVAILABLE": HTTPStatus.SERVICE_UNAVAILABLE,
    "DEADLINE_EXCEEDED": HTTPStatus.GATEWAY_TIMEOUT,
    "FAILED_PRECONDITION": HTTPStatus.CONFLICT,
}
