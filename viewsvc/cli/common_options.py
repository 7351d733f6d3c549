"""Command-line pieces shared by ``viewsvc`` and the examples: librdkafka settings as
repeatable ``--config KEY=VALUE`` options, how to reach a deployment's gRPC nodes, and
logging."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

__all__ = [
    "Connection",
    "config_option",
    "connection_options",
    "extra_config",
    "group_protocol_option",
    "guarantee_option",
    "setup_logging",
    "topic_options",
]

config_option = click.option(
    "--config",
    "config",
    multiple=True,
    metavar="KEY=VALUE",
    help="librdkafka setting (repeatable), e.g. session.timeout.ms=6000 or security.protocol=SSL",
)

guarantee_option = click.option(
    "--guarantee",
    type=click.Choice(["at_least_once", "exactly_once"]),
    default="at_least_once",
    show_default=True,
    envvar="GOKA_GUARANTEE",
    help="processing guarantee: exactly_once makes each batch one Kafka transaction "
    "(also $GOKA_GUARANTEE)",
)

group_protocol_option = click.option(
    "--group-protocol",
    type=click.Choice(["classic", "consumer", "auto"]),
    default="auto",
    show_default=True,
    envvar="GOKA_GROUP_PROTOCOL",
    help="consumer group protocol: consumer (KIP-848, Kafka 4.0+) rebalances incrementally, "
    "auto picks it where the broker offers it, else classic (also $GOKA_GROUP_PROTOCOL)",
)


def topic_options(command: Any) -> Any:
    """``--replication-factor`` and ``--min-insync-replicas`` of the topics a command creates
    (table, loop, discovery), as keyword arguments of the same names; both default to the
    broker's defaults."""
    command = click.option(
        "--min-insync-replicas",
        type=click.IntRange(min=1),
        default=None,
        envvar="GOKA_MIN_INSYNC_REPLICAS",
        help="min.insync.replicas of the topics created (default: the broker's; "
        "also $GOKA_MIN_INSYNC_REPLICAS)",
    )(command)
    return click.option(
        "--replication-factor",
        type=click.IntRange(min=-1),
        default=-1,
        show_default=True,
        envvar="GOKA_REPLICATION_FACTOR",
        help="replication factor of the topics created (-1: the broker's "
        "default.replication.factor; also $GOKA_REPLICATION_FACTOR)",
    )(command)


def extra_config(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("a=1", "b=2")`` -> ``{"a": "1", "b": "2"}``; a bad pair is a usage error."""
    config = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--config")
        config[name] = value
    return config


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


@dataclass(frozen=True)
class Connection:
    """How to reach a deployment, as the ``connection_options`` gave it."""

    targets: tuple[str, ...]
    brokers: str | None
    discovery_topic: str
    extra_config: dict[str, str]
    tls: bool
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    token: str | None
    timeout: float


_CONNECTION_OPTIONS = [
    click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="HOST:PORT",
        help="a node serving TableService (repeatable); it also tells the client the members",
    ),
    click.option(
        "--brokers", help="follow the discovery topic on these Kafka servers instead of --target"
    ),
    click.option(
        "--discovery-topic",
        default="goka-discovery",
        show_default=True,
        help="the discovery topic (with --brokers)",
    ),
    config_option,
    click.option("--tls", is_flag=True, help="connect with TLS"),
    click.option(
        "--ca-file",
        type=click.Path(exists=True, dir_okay=False),
        help="PEM CA certificates to verify the servers with (default: the system's); needs --tls",
    ),
    click.option(
        "--cert-file",
        type=click.Path(exists=True, dir_okay=False),
        help="PEM client certificate for mutual TLS; needs --key-file and --tls",
    ),
    click.option(
        "--key-file",
        type=click.Path(exists=True, dir_okay=False),
        help="PEM private key of --cert-file",
    ),
    click.option(
        "--token",
        envvar="VIEWSVC_TOKEN",
        show_envvar=True,
        help="bearer token sent with every call",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=10.0,
        show_default=True,
        help="seconds a read may take, trying other nodes included",
    ),
]

_CONNECTION_NAMES = ("targets", "brokers", "discovery_topic", "config", "tls", "ca_file",
                     "cert_file", "key_file", "token", "timeout")  # fmt: skip


def connection_options(command: Callable[..., None]) -> Callable[..., None]:
    """Adds the options above and passes them to ``command`` as one ``connection=Connection``.

    One of ``--target`` and ``--brokers`` is required (a usage error otherwise).
    """

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        given = {name: kwargs.pop(name) for name in _CONNECTION_NAMES}
        if not given["targets"] and not given["brokers"]:
            raise click.UsageError(
                "pass --target HOST:PORT (a node serving TableService) or --brokers "
                "(to follow the discovery topic)"
            )
        config = extra_config(given.pop("config"))
        command(connection=Connection(extra_config=config, **given), **kwargs)

    for option in reversed(_CONNECTION_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
