"""Command line of the click-count example: emit, process, view, and the whole demo.

python -m examples.clickcount emit --brokers B --topic clicks --messages 1000 --keys 10
python -m examples.clickcount process --brokers B --topic clicks --group G --storage DIR
python -m examples.clickcount view --brokers B --group G
python -m examples.clickcount demo      # all of the above on the embedded dev broker
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

import goka
from discovery import DiscoveryConfig
from examples._running import demo_brokers_option, run_processor
from examples.clickcount.app import define_clickcount
from goka import codec
from goka.processor import GroupProtocol, Guarantee
from viewsvc import ServeConfig
from viewsvc.cli.common_options import (
    config_option,
    extra_config,
    group_protocol_option,
    guarantee_option,
    setup_logging,
    topic_options,
)
from viewsvc.cli.server_options import given_server_flags, server_options, server_settings
from viewsvc.server.metrics import Metrics

_PARTITIONERS = click.Choice(["murmur2", "fnv1a"])


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="log goka's INFO messages to stderr")
def cli(verbose: bool) -> None:
    """Goka's click-count example."""
    setup_logging(verbose)


@cli.command()
@click.option("--brokers", required=True, help="bootstrap servers, host:port[,host:port]")
@click.option("--topic", default="clicks", show_default=True)
@click.option("--messages", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--keys", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="partitions of the topic if it must be created",
)
@click.option("--partitioner", type=_PARTITIONERS, default="murmur2", show_default=True)
@config_option
def emit(
    brokers: str,
    topic: str,
    messages: int,
    keys: int,
    partitions: int,
    partitioner: str,
    config: tuple[str, ...],
) -> None:
    """Emit MESSAGES clicks, round robin over the users user-0 .. user-(KEYS-1)."""
    extra = extra_config(config)
    goka.TopicManager(brokers, extra_config=extra).ensure_stream(topic, partitions)
    with goka.Emitter(
        brokers, topic, codec.String(), partitioner=partitioner, extra_config=extra
    ) as emitter:
        for i in range(messages):
            emitter.emit(f"user-{i % keys}", "click")
        # leaving the block flushes, and raises if any message was not delivered
    click.echo(json.dumps({"emitted": messages, "topic": topic, "keys": keys}))


@cli.command()
@click.option("--brokers", required=True, envvar="GOKA_BROKERS")
@click.option("--topic", default="clicks", show_default=True, envvar="CLICKCOUNT_TOPIC")
@click.option("--group", default="clicks-counter", show_default=True, envvar="CLICKCOUNT_GROUP")
@click.option(
    "--storage",
    "storage_dir",
    required=True,
    envvar="GOKA_STORAGE",
    type=click.Path(file_okay=False),
    help="directory of the LMDB table partitions",
)
@click.option("--partitioner", type=_PARTITIONERS, default="murmur2", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--hot-standby", is_flag=True, help="keep the partitions of others caught up")
@click.option("--recover-ahead", is_flag=True, help="replay the table before joining the group")
@click.option(
    "--advertise",
    default=None,
    envvar="GOKA_ADVERTISE",
    metavar="HOST:PORT",
    help="announce this member on the discovery topic, with this gRPC address",
)
@click.option(
    "--serve",
    default=None,
    envvar="GOKA_SERVE",
    metavar="HOST:PORT",
    help="serve the table over gRPC on this address (announce it with --advertise)",
)
@server_options
@click.option(
    "--discovery-topic", default="goka-discovery", show_default=True, envvar="GOKA_DISCOVERY_TOPIC"
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="seconds between announcements",
)
@click.option(
    "--standby-replicas",
    type=click.IntRange(min=1),
    default=None,
    help="hot standbys per partition, placed over the announced group members",
)
@click.option(
    "--group-instance-id",
    default=None,
    envvar="GOKA_GROUP_INSTANCE_ID",
    help="static group membership: an id kept across restarts (e.g. the pod name), so a "
    "member back within the session timeout keeps its partitions without a rebalance",
)
@click.option("--stats-file", type=click.Path(dir_okay=False), help="write stats JSON here")
@click.option("--stats-interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True)
@guarantee_option
@group_protocol_option
@topic_options
@config_option
def process(
    brokers: str,
    topic: str,
    group: str,
    storage_dir: str,
    partitioner: str,
    batch_size: int,
    hot_standby: bool,
    recover_ahead: bool,
    advertise: str | None,
    serve: str | None,
    discovery_topic: str,
    heartbeat: float,
    standby_replicas: int | None,
    group_instance_id: str | None,
    stats_file: str | None,
    stats_interval: float,
    guarantee: Guarantee,
    group_protocol: GroupProtocol,
    replication_factor: int,
    min_insync_replicas: int | None,
    config: tuple[str, ...],
    **server: Any,
) -> None:
    """Count clicks until SIGTERM or Ctrl-C; then print the final stats as JSON."""
    serving = None
    if serve is None:
        server_only = [
            f for f in given_server_flags(click.get_current_context()) if f != "--metrics-port"
        ]
        if server_only:
            raise click.UsageError(
                f"{', '.join(server_only)} configure the gRPC server: add --serve HOST:PORT, "
                "or leave them out"
            )
    metrics_port = server.get("metrics_port")
    if serve is not None:
        settings = server_settings(server)
        try:
            serving = ServeConfig(
                serve,
                settings.security,
                settings.limits,
                settings.peer_ca_file,
                settings.grace,
                settings.metrics_port,
                settings.unreachable_bound,
                settings.http_port,
            )
        except goka.GokaError as exc:
            raise click.BadParameter(str(exc), param_hint="--serve") from exc
    announce = None
    if advertise is not None or standby_replicas is not None:
        try:
            announce = DiscoveryConfig(
                topic=discovery_topic,
                advertise=advertise or "",
                heartbeat=heartbeat,
                replication_factor=replication_factor,
                min_insync_replicas=min_insync_replicas,
            )
        except goka.GokaError as exc:
            raise click.BadParameter(str(exc), param_hint="--advertise") from exc
    try:
        processor = goka.Processor(
            brokers,
            define_clickcount(topic, group),
            storage=goka.LMDBStorage(storage_dir),
            partitioner=partitioner,
            batch_size=batch_size,
            guarantee=guarantee,
            group_protocol=group_protocol,
            hot_standby=hot_standby,
            standby_replicas=standby_replicas,
            recover_ahead=recover_ahead,
            discovery=announce,
            serve=serving,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
            extra_config=extra_config(config),
            group_instance_id=group_instance_id,
        )
    except goka.GokaError as exc:  # a setting the processor refuses: say which, no traceback
        raise click.UsageError(str(exc)) from exc
    metrics = None
    if serving is None and metrics_port is not None:  # with --serve, the server has them
        metrics = Metrics()
        metrics.watch_processor(processor)
        table = processor.local_table()
        metrics.watch_tables(lambda: [table])
        try:
            metrics.serve(metrics_port)
        except goka.GokaError as exc:
            raise click.BadParameter(str(exc), param_hint="--metrics-port") from exc
    try:
        run_processor(processor, stats_file=stats_file, stats_interval=stats_interval)
    finally:
        if metrics is not None:
            metrics.close()


@cli.command()
@click.option("--brokers", required=True)
@click.option("--group", default="clicks-counter", show_default=True)
@click.option("--partitioner", type=_PARTITIONERS, default="murmur2", show_default=True)
@click.option(
    "--until-total",
    type=click.IntRange(min=0),
    default=None,
    help="wait until the counts add up to at least this many clicks",
)
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object {user: count}")
@config_option
def view(
    brokers: str,
    group: str,
    partitioner: str,
    until_total: int | None,
    timeout: float,
    as_json: bool,
    config: tuple[str, ...],
) -> None:
    """Print the click counts once the table's view is running."""
    deadline = time.monotonic() + timeout
    table = goka.group_table(group)
    goka.TopicManager(brokers, extra_config=extra_config(config)).wait_for(table, timeout)
    with goka.View(
        brokers, table, codec.Int64(), partitioner=partitioner, extra_config=extra_config(config)
    ) as table_view:
        if not table_view.wait_running(timeout):
            raise click.ClickException(f"the view of {table} did not recover within {timeout}s")
        counts = dict(table_view.items())
        while until_total is not None and sum(counts.values()) < until_total:
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"the counts add up to {sum(counts.values())}, not {until_total}, "
                    f"after {timeout}s"
                )
            time.sleep(0.1)
            counts = dict(table_view.items())
    if as_json:
        click.echo(json.dumps(counts, sort_keys=True))
    else:
        for user, count in counts.items():
            click.echo(f"{user:>12} {count:>8}")
        click.echo(f"{'total':>12} {sum(counts.values()):>8}")


@cli.command()
@click.option("--messages", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--keys", type=click.IntRange(min=1), default=10, show_default=True)
@demo_brokers_option
def demo(messages: int, keys: int, brokers: str | None) -> None:
    """Start the dev broker (or use --brokers); run emit -> process -> view as processes."""
    from examples.clickcount.demo import run_demo

    sys.exit(run_demo(messages, keys, brokers))
