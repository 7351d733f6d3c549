"""Command-line options shared by every serving command (``viewsvc serve-view``,
``viewsvc route``, ``examples.clickcount process --serve``): security, limits, and when
health turns NOT_SERVING without brokers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from goka.errors import ConfigError
from viewsvc.server.grpc_server import UNREACHABLE_BOUND
from viewsvc.server.limits import Limits
from viewsvc.server.security import ServerSecurity

__all__ = ["ServerSettings", "given_server_flags", "server_options", "server_settings"]

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = [
    click.option("--tls-cert", type=click.Path(dir_okay=False), help="PEM certificate: TLS"),
    click.option("--tls-key", type=click.Path(dir_okay=False), help="PEM key of --tls-cert"),
    click.option(
        "--tls-client-ca",
        type=click.Path(dir_okay=False),
        help="PEM CA; clients must present a certificate it signed (mutual TLS)",
    ),
    click.option(
        "--peer-ca",
        type=click.Path(dir_okay=False),
        help="PEM CA of the other members' certificates, for forwarding (default: "
        "--tls-client-ca, else the system roots)",
    ),
    click.option(
        "--token",
        envvar="VIEWSVC_TOKEN",
        help="bearer token clients must send (also $VIEWSVC_TOKEN)",
    ),
    click.option(
        "--scan-cap",
        type=click.IntRange(min=1),
        default=Limits.scan_cap,
        show_default=True,
        help="most rows one Scan call returns",
    ),
    click.option(
        "--max-concurrent-rpcs",
        type=click.IntRange(min=1),
        default=Limits.max_concurrent_rpcs,
        show_default=True,
        help="calls served at once; more get RESOURCE_EXHAUSTED",
    ),
    click.option(
        "--max-request-bytes",
        type=click.IntRange(min=1),
        default=Limits.max_request_bytes,
        show_default=True,
    ),
    click.option(
        "--max-watchers",
        type=click.IntRange(min=1),
        default=Limits.max_watchers,
        show_default=True,
        help="Watch and WatchMembers streams served at once; more get RESOURCE_EXHAUSTED",
    ),
    click.option(
        "--watch-buffer",
        type=click.IntRange(min=1),
        default=Limits.watch_buffer,
        show_default=True,
        help="changes a watcher may fall behind before its stream ends (RESOURCE_EXHAUSTED)",
    ),
    click.option(
        "--metrics-port",
        type=click.IntRange(min=0, max=65535),
        envvar="GOKA_METRICS_PORT",
        help="serve Prometheus metrics at http://0.0.0.0:PORT/metrics (also $GOKA_METRICS_PORT)",
    ),
    click.option(
        "--http-port",
        type=click.IntRange(min=0, max=65535),
        envvar="GOKA_HTTP_PORT",
        help="serve the web monitor and query page at http://0.0.0.0:PORT/ (also $GOKA_HTTP_PORT)",
    ),
    click.option(
        "--grace",
        type=click.FloatRange(min=0),
        default=5.0,
        show_default=True,
        help="seconds a stop waits for calls in flight",
    ),
    click.option(
        "--unreachable-bound",
        type=click.FloatRange(min=0, min_open=True),
        default=UNREACHABLE_BOUND,
        show_default=True,
        envvar="VIEWSVC_UNREACHABLE_BOUND",
        help="seconds without a broker connection after which health is NOT_SERVING (also "
        "$VIEWSVC_UNREACHABLE_BOUND)",
    ),
]


def server_options(command: F) -> F:
    """Adds the security and limit options (see ``server_settings``)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


_NAMES = frozenset(param.name for param in click.command()(server_options(lambda **_: None)).params)


def given_server_flags(ctx: click.Context) -> list[str]:
    """The ``server_options`` flags given on the command line (not defaults or environment),
    for commands where they only apply together with another option."""
    return [
        param.opts[0]
        for param in ctx.command.params
        if param.name in _NAMES
        and ctx.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE
    ]


@dataclass(frozen=True)
class ServerSettings:
    security: ServerSecurity
    limits: Limits
    peer_ca_file: str | None
    grace: float
    metrics_port: int | None
    unreachable_bound: float
    http_port: int | None


def server_settings(options: dict[str, Any]) -> ServerSettings:
    """Pops the ``server_options`` values from a command's keyword arguments."""
    try:
        security = ServerSecurity(
            cert_file=options.pop("tls_cert"),
            key_file=options.pop("tls_key"),
            client_ca_file=options.pop("tls_client_ca"),
            token=options.pop("token"),
        )
        limits = Limits(
            scan_cap=options.pop("scan_cap"),
            max_concurrent_rpcs=options.pop("max_concurrent_rpcs"),
            max_request_bytes=options.pop("max_request_bytes"),
            max_watchers=options.pop("max_watchers"),
            watch_buffer=options.pop("watch_buffer"),
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    return ServerSettings(
        security,
        limits,
        options.pop("peer_ca"),
        options.pop("grace"),
        options.pop("metrics_port"),
        options.pop("unreachable_bound"),
        options.pop("http_port"),
    )
