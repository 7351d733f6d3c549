"""Running an example from its command line: a processor (signals, stats file, exit code),
and the broker of a demo."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator

import click

import goka
from goka.devbroker import DevBroker

__all__ = ["demo_brokers", "demo_brokers_option", "run_processor"]

demo_brokers_option = click.option(
    "--brokers",
    default=None,
    help="run the demo on this Kafka, host:port[,host:port] (default: start the dev broker)",
)


@contextlib.contextmanager
def demo_brokers(brokers: str | None) -> Iterator[str]:
    """The demo's bootstrap servers: ``brokers`` if given, else a dev broker started for it."""
    if brokers:
        click.echo(f"broker at {brokers}")
        yield brokers
        return
    with DevBroker() as broker:
        click.echo(f"dev broker at {broker.bootstrap}")
        yield broker.bootstrap


def _write_stats(processor: goka.Processor, path: str) -> None:
    """Replace ``path`` atomically, so readers never see half a document."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(processor.stats(), f)
    os.replace(tmp, path)


def run_processor(
    processor: goka.Processor, *, stats_file: str | None = None, stats_interval: float = 1.0
) -> None:
    """Run until SIGTERM or Ctrl-C, then print the final stats as one JSON line.

    With ``stats_file``, the stats are also written there every ``stats_interval`` seconds
    and once more at the end. Exits with status 1 and the error on stderr if the processor
    fails.
    """

    def on_signal(signum: int, frame: object) -> None:
        processor.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done = threading.Event()

    def write_periodically() -> None:
        while stats_file is not None and not done.wait(stats_interval):
            _write_stats(processor, stats_file)

    writer = threading.Thread(target=write_periodically, daemon=True)
    writer.start()
    try:
        processor.run()
    except goka.GokaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        done.set()
        writer.join()
        if stats_file is not None:
            _write_stats(processor, stats_file)
    click.echo(json.dumps({"event": "stopped", **processor.stats()}))
