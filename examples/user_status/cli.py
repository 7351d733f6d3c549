"""Command line of the user-status example: emit clicks and statuses, process, view, demo.

python -m examples.user_status emit-clicks --brokers B --messages 1000 --keys 10
python -m examples.user_status emit-status --brokers B user-0=online user-1=away
python -m examples.user_status process --brokers B --storage DIR [--service clicks|status]
python -m examples.user_status view --brokers B
python -m examples.user_status demo     # all of the above on the embedded dev broker
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

import goka
from examples._running import demo_brokers_option
from examples.clickcount.app import define_clickcount
from examples.clickcount.cli import emit as emit_clicks
from examples.user_status.app import (
    CLICKS_GROUP,
    CLICKS_TOPIC,
    STATUS_GROUP,
    STATUS_TOPIC,
    define_user_status,
)
from goka import codec
from viewsvc.cli.common_options import (
    config_option,
    extra_config,
    guarantee_option,
    setup_logging,
    topic_options,
)

_PARTITIONERS = click.Choice(["murmur2", "fnv1a"])


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="log goka's INFO messages to stderr")
def cli(verbose: bool) -> None:
    """Goka's user-status example: statuses joined with click counts."""
    setup_logging(verbose)


cli.add_command(emit_clicks, name="emit-clicks")


def _status_update(text: str) -> tuple[str, str]:
    user, sep, status = text.partition("=")
    if not sep or not user:
        raise click.BadParameter(f"{text!r} is not USER=STATUS", param_hint="UPDATES")
    return user, status


@cli.command("emit-status")
@click.argument("updates", nargs=-1, required=True)
@click.option("--brokers", required=True, help="bootstrap servers, host:port[,host:port]")
@click.option("--topic", default=STATUS_TOPIC, show_default=True)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="partitions of the topic if it must be created (that of the clicks topic)",
)
@click.option("--partitioner", type=_PARTITIONERS, default="murmur2", show_default=True)
@config_option
def emit_status(
    updates: tuple[str, ...],
    brokers: str,
    topic: str,
    partitions: int,
    partitioner: str,
    config: tuple[str, ...],
) -> None:
    """Emit status UPDATES, each USER=STATUS, as {"status": STATUS} keyed by USER."""
    pairs = [_status_update(text) for text in updates]
    extra = extra_config(config)
    goka.TopicManager(brokers, extra_config=extra).ensure_stream(topic, partitions)
    with goka.Emitter(
        brokers, topic, codec.JSON(), partitioner=partitioner, extra_config=extra
    ) as emitter:
        for user, status in pairs:
            emitter.emit_sync(user, {"status": status})
    click.echo(json.dumps({"emitted": len(pairs), "topic": topic}))


class _Running:
    """A processor running in a thread."""

    def __init__(self, processor: goka.Processor) -> None:
        self.processor = processor
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=processor.graph.group)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.processor.run()
        except BaseException as exc:  # reported by the process command
            self.error = exc


def _wait_for_table(manager: goka.TopicManager, table: str, timeout: float, stop: Any) -> bool:
    deadline = time.monotonic() + timeout
    while manager.partitions(table) is None:
        if stop.is_set():
            return False
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"the clicks table {table!r} did not appear within {timeout}s: start the "
                "clicks service first"
            )
        time.sleep(0.2)
    return True


@cli.command()
@click.option("--brokers", required=True)
@click.option(
    "--service",
    type=click.Choice(["all", "clicks", "status"]),
    default="all",
    show_default=True,
    help="which group(s) to run in this process",
)
@click.option("--clicks-topic", default=CLICKS_TOPIC, show_default=True)
@click.option("--status-topic", default=STATUS_TOPIC, show_default=True)
@click.option("--clicks-group", default=CLICKS_GROUP, show_default=True)
@click.option("--status-group", default=STATUS_GROUP, show_default=True)
@click.option(
    "--storage",
    "storage_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="directory of the LMDB table partitions (one subdirectory per service)",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="partitions of the input topics if they must be created",
)
@click.option("--partitioner", type=_PARTITIONERS, default="murmur2", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option(
    "--table-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="seconds the status service waits for the clicks table to exist",
)
@guarantee_option
@topic_options
@config_option
def process(
    brokers: str,
    service: str,
    clicks_topic: str,
    status_topic: str,
    clicks_group: str,
    status_group: str,
    storage_dir: str,
    partitions: int,
    partitioner: str,
    batch_size: int,
    table_timeout: float,
    guarantee: str,
    replication_factor: int,
    min_insync_replicas: int | None,
    config: tuple[str, ...],
) -> None:
    """Run the click-count and/or user-status groups until SIGTERM or Ctrl-C; then print
    their final stats as JSON."""
    extra = extra_config(config)
    topics: dict[str, Any] = {
        "replication_factor": replication_factor,
        "min_insync_replicas": min_insync_replicas,
    }
    manager = goka.TopicManager(brokers, extra_config=extra, **topics)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    options: dict[str, Any] = {
        "partitioner": partitioner,
        "batch_size": batch_size,
        "guarantee": guarantee,
        "extra_config": extra,
        **topics,
    }
    running: list[_Running] = []
    if service in ("all", "clicks"):
        manager.ensure_stream(clicks_topic, partitions)
        graph = define_clickcount(clicks_topic, clicks_group)
        storage = goka.LMDBStorage(Path(storage_dir) / "clicks")
        running.append(_Running(goka.Processor(brokers, graph, storage=storage, **options)))
    if service in ("all", "status") and (
        _wait_for_table(manager, goka.group_table(clicks_group), table_timeout, stop)
    ):
        manager.ensure_stream(status_topic, partitions)
        graph = define_user_status(status_topic, status_group, clicks_group)
        storage = goka.LMDBStorage(Path(storage_dir) / "status")
        running.append(_Running(goka.Processor(brokers, graph, storage=storage, **options)))
    while not stop.is_set() and all(r.thread.is_alive() for r in running):
        stop.wait(0.2)
    for runner in running:
        runner.processor.stop()
        runner.thread.join()
    stats = {r.processor.graph.group: r.processor.stats() for r in running}
    click.echo(json.dumps({"event": "stopped", "groups": stats}, default=str))
    errors = [r.error for r in running if r.error is not None]
    for error in errors:
        click.echo(f"error: {error}", err=True)
    if errors:
        sys.exit(1)


@cli.command()
@click.option("--brokers", required=True)
@click.option("--group", default=STATUS_GROUP, show_default=True)
@click.option("--partitioner", type=_PARTITIONERS, default="murmur2", show_default=True)
@click.option(
    "--until-users",
    type=click.IntRange(min=0),
    default=None,
    help="wait until the table holds at least this many users",
)
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help='print {user: {"status", "clicks"}}')
@config_option
def view(
    brokers: str,
    group: str,
    partitioner: str,
    until_users: int | None,
    timeout: float,
    as_json: bool,
    config: tuple[str, ...],
) -> None:
    """Print every user's latest status and clicks at that time, from a view of the table."""
    extra = extra_config(config)
    deadline = time.monotonic() + timeout
    table = goka.group_table(group)
    goka.TopicManager(brokers, extra_config=extra).wait_for(table, timeout)
    with goka.View(
        brokers, table, codec.JSON(), partitioner=partitioner, extra_config=extra
    ) as table_view:
        if not table_view.wait_running(timeout):
            raise click.ClickException(f"the view of {table} did not recover within {timeout}s")
        rows = dict(table_view.items())
        while until_users is not None and len(rows) < until_users:
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"the table holds {len(rows)} users, not {until_users}, after {timeout}s"
                )
            time.sleep(0.1)
            rows = dict(table_view.items())
    if as_json:
        click.echo(json.dumps(rows, sort_keys=True))
        return
    click.echo(f"{'user':>12} {'status':<12} {'clicks':>8}")
    for user, row in rows.items():
        click.echo(f"{user:>12} {row['status']:<12} {row['clicks']:>8}")


@cli.command()
@click.option("--messages", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--keys", type=click.IntRange(min=1), default=8, show_default=True)
@demo_brokers_option
def demo(messages: int, keys: int, brokers: str | None) -> None:
    """Start the dev broker (or use --brokers); run both services and the emitters."""
    from examples.user_status.demo import run_demo

    sys.exit(run_demo(messages, keys, brokers))
