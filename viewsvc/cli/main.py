"""The ``viewsvc`` command line (also ``python -m viewsvc``).

viewsvc members --brokers B                    # who holds which table partitions, once
viewsvc members --brokers B --watch            # redrawn every second until Ctrl-C
viewsvc members --brokers B --json | jq ...    # the same facts for scripts
viewsvc get --target T --table clicks-counter-table user-1 user-2
viewsvc scan --target T --table clicks-counter-table --prefix user- --limit 100
viewsvc locate --target T --table clicks-counter-table user-1
viewsvc serve-view --brokers B --table clicks-counter-table --listen 0.0.0.0:50051
viewsvc route --brokers B --listen 0.0.0.0:50052
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import click
from confluent_kafka import KafkaException

from discovery import DEFAULT_TOPIC, MemberInfo, Membership
from goka.errors import GokaError
from viewsvc.cli.common_options import config_option, extra_config, setup_logging
from viewsvc.cli.members import format_table, only_table, to_json
from viewsvc.cli.read_commands import get, locate, scan, watch
from viewsvc.cli.serve_commands import route, serve_view

__all__ = ["cli", "main"]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="log goka's INFO messages to stderr")
def cli(verbose: bool) -> None:
    """Inspect and serve goka tables."""
    setup_logging(verbose)


@cli.command()
@click.option("--brokers", required=True, help="bootstrap servers, host:port[,host:port]")
@click.option("--topic", default=DEFAULT_TOPIC, show_default=True, help="the discovery topic")
@click.option("--table", help="only members holding partitions of this table")
@click.option("--watch", is_flag=True, help="redraw every --interval seconds until Ctrl-C")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="seconds between redraws with --watch",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='print {"members": [...]} (with --watch: one document per line per redraw)',
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="seconds to wait for the discovery topic to be read to its end",
)
@config_option
def members(
    brokers: str,
    topic: str,
    table: str | None,
    watch: bool,
    interval: float,
    as_json: bool,
    timeout: float,
    config: tuple[str, ...],
) -> None:
    """Print the live members: their tables, partitions (kind, state, lag) and last heartbeat."""
    extra = extra_config(config)
    # with --watch, Ctrl-C and SIGTERM end the command normally (exit 0), also while syncing
    stopper: contextlib.AbstractContextManager[threading.Event] = (
        _stop_on_signals() if watch else contextlib.nullcontext(threading.Event())
    )
    try:
        with (
            stopper as stop,
            Membership(brokers, topic, create=False, extra_config=extra) as membership,
        ):
            if not _wait_synced(membership, timeout, stop):
                if stop.is_set():
                    return
                raise click.ClickException(
                    f"the discovery topic {topic!r} was not read to its end within {timeout}s: "
                    "check --brokers (and --config), or raise --timeout"
                )
            if not watch:
                click.echo(_render(membership.members(), table, as_json, indent=2))
                return
            clear = not as_json and sys.stdout.isatty()
            while True:
                membership.wait_synced(0)  # raises if the follower thread failed
                frame = _render(membership.members(), table, as_json, indent=None)
                if as_json:
                    click.echo(frame)
                else:
                    if clear:
                        click.clear()
                    click.echo(_watch_header(topic, interval))
                    click.echo(frame + ("" if clear else "\n"))
                if stop.wait(interval):
                    return
    except (GokaError, KafkaException) as exc:  # KafkaException: librdkafka refused --config
        raise click.ClickException(str(exc)) from exc


cli.add_command(get)
cli.add_command(scan)
cli.add_command(locate)
cli.add_command(watch)
cli.add_command(serve_view)
cli.add_command(route)


def main() -> None:
    """Entry point of the ``viewsvc`` script."""
    cli()


def _wait_synced(membership: Membership, timeout: float, stop: threading.Event) -> bool:
    """Like ``membership.wait_synced(timeout)``, but gives up as soon as ``stop`` is set."""
    deadline = time.monotonic() + timeout
    while not membership.wait_synced(min(0.1, max(0.0, deadline - time.monotonic()))):
        if stop.is_set() or time.monotonic() >= deadline:
            return False
    return True


def _render(
    members: list[MemberInfo], table: str | None, as_json: bool, *, indent: int | None
) -> str:
    if table is not None:
        members = only_table(members, table)
    if as_json:
        return json.dumps(to_json(members), indent=indent)
    return format_table(members, datetime.now(UTC))


def _watch_header(topic: str, interval: float) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return f"members on {topic}, every {interval:g}s (Ctrl-C to stop)    {now}\n"


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs; the old handlers come back."""
    stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    for signum in signals:
        signal.signal(signum, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
