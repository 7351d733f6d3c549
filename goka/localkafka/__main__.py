"""``python -m goka.localkafka [--brokers 1|3] [--dir DIR] [--server-jvm]``: run a local
Apache Kafka until Ctrl-C or SIGTERM; prints the bootstrap servers on stdout."""

from __future__ import annotations

import signal
import sys
import threading

import click

from goka.localkafka import KAFKA_VERSION, LocalKafka, LocalKafkaError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--brokers",
    type=click.Choice(["1", "3"]),
    default="1",
    show_default=True,
    help="1: one combined broker+controller; 3: three, replication factor 3, "
    "min.insync.replicas=2.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep each node's data and log here (kept on exit; default: a temp dir, removed).",
)
@click.option(
    "--server-jvm",
    is_flag=True,
    help="The JVM's server setup (C2 compiler, G1): a higher peak throughput than the default "
    "quick one (C1 only, serial collector), a slower start and more CPU. For benchmarks.",
)
def main(brokers: str, directory: str | None, server_jvm: bool) -> None:
    """Run Apache Kafka (KRaft) on free loopback ports, for tests and benchmarks."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    kafka = LocalKafka(brokers=int(brokers), directory=directory, server_jvm=server_jvm)
    try:
        kafka.start()
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        click.echo(kafka.bootstrap)
        click.echo(
            f"Kafka {KAFKA_VERSION} running ({brokers} node(s), data in {kafka.directory}); "
            "stop with Ctrl-C",
            err=True,
        )
        while not stopping.wait(0.5):
            dead = [n for n in kafka.node_ids if not kafka.running(n)]
            if dead:
                raise click.ClickException(
                    f"Kafka node(s) {dead} exited unexpectedly; see {kafka.log_path(dead[0])}"
                )
    finally:
        kafka.close()


if __name__ == "__main__":
    sys.exit(main())
