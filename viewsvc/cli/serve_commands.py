"""``viewsvc serve-view`` and ``viewsvc route``: run a view server or a router until SIGTERM
or Ctrl-C. Each prints ``serving <member id> on <advertised address>`` once it listens."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
from confluent_kafka import KafkaException

from discovery import DEFAULT_TOPIC
from goka.errors import GokaError
from viewsvc.cli.common_options import config_option, extra_config, topic_options
from viewsvc.cli.server_options import server_options, server_settings
from viewsvc.nodes.standalone import NodeConfig, Router, ViewServer

__all__ = ["route", "serve_view"]

_node_options = [
    click.option(
        "--brokers",
        required=True,
        envvar="GOKA_BROKERS",
        help="bootstrap servers, host:port[,host:port] (also $GOKA_BROKERS)",
    ),
    click.option(
        "--listen",
        default="0.0.0.0:50051",
        envvar="VIEWSVC_LISTEN",
        show_default=True,
        metavar="HOST:PORT",
        help="address to bind (port 0: any free port)",
    ),
    click.option(
        "--advertise",
        default="",
        envvar="GOKA_ADVERTISE",
        metavar="HOST:PORT",
        help="address other members reach this node at (default: from --listen)",
    ),
    click.option(
        "--discovery-topic", default=DEFAULT_TOPIC, show_default=True, envvar="GOKA_DISCOVERY_TOPIC"
    ),
    click.option(
        "--heartbeat",
        type=click.FloatRange(min=0.05),
        default=2.0,
        show_default=True,
        help="seconds between announcements",
    ),
    click.option(
        "--member-id",
        default="",
        envvar="GOKA_MEMBER_ID",
        help="this node's id (default: generated)",
    ),
]


def node_options(command: Any) -> Any:
    for option in reversed(_node_options):
        command = option(command)
    return server_options(topic_options(config_option(command)))


def _config(options: dict[str, Any]) -> NodeConfig:
    settings = server_settings(options)
    return NodeConfig(
        listen=options.pop("listen"),
        advertise=options.pop("advertise"),
        discovery_topic=options.pop("discovery_topic"),
        heartbeat=options.pop("heartbeat"),
        replication_factor=options.pop("replication_factor"),
        min_insync_replicas=options.pop("min_insync_replicas"),
        member_id=options.pop("member_id"),
        security=settings.security,
        limits=settings.limits,
        peer_ca_file=settings.peer_ca_file,
        grace=settings.grace,
        metrics_port=settings.metrics_port,
        unreachable_bound=settings.unreachable_bound,
        http_port=settings.http_port,
        extra_config=extra_config(options.pop("config")),
    )


def _run(node: ViewServer | Router) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        node.start()
        click.echo(f"serving {node.member_id} on {node.advertised}", nl=True)
        stop.wait()
    except (GokaError, KafkaException) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        node.stop()


@click.command("serve-view")
@click.option(
    "--table",
    "tables",
    multiple=True,
    required=True,
    envvar="VIEWSVC_TABLES",
    help="table topic to serve (repeatable; $VIEWSVC_TABLES: separated by spaces)",
)
@click.option(
    "--storage",
    type=click.Path(file_okay=False),
    envvar="GOKA_STORAGE",
    help="directory for the LMDB copies (default: a temporary one)",
)
@click.option(
    "--partitioner",
    type=click.Choice(["murmur2", "fnv1a"]),
    help="the tables' partitioner (default: as their processors announce, else murmur2)",
)
@click.option(
    "--value-codec",
    help="the tables' value codec name (default: as announced, else bytes)",
)
@click.option(
    "--view-group",
    default="",
    envvar="VIEWSVC_VIEW_GROUP",
    help="shard the tables over the live pods of this view group (default: hold everything)",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    envvar="VIEWSVC_REPLICAS",
    help="pods holding each partition within the view group",
)
@click.option(
    "--ready-max-lag",
    type=click.IntRange(min=0),
    default=None,
    envvar="VIEWSVC_READY_MAX_LAG",
    help="health is SERVING only while every held partition is at most this many offsets "
    "behind (default: running is enough)",
)
@node_options
def serve_view(
    tables: tuple[str, ...],
    storage: str | None,
    partitioner: str | None,
    value_codec: str | None,
    view_group: str,
    replicas: int,
    ready_max_lag: int | None,
    **options: Any,
) -> None:
    """Hold copies of tables (all partitions, or a view group's share) and serve them over
    gRPC (role view). SIGTERM drains: tombstone, NOT_SERVING, calls finish, exit 0."""
    brokers = options.pop("brokers")
    config = _config(options)
    try:
        node = ViewServer(
            brokers,
            tables,
            config,
            storage_dir=storage,
            partitioner=partitioner,
            value_codec=value_codec,
            view_group=view_group,
            replicas=replicas,
            ready_max_lag=ready_max_lag,
        )
    except GokaError as exc:
        raise click.UsageError(str(exc)) from exc
    _run(node)


@click.command("route")
@node_options
def route(**options: Any) -> None:
    """Serve reads by forwarding them to the members holding the data (holds nothing)."""
    brokers = options.pop("brokers")
    _run(Router(brokers, _config(options)))
