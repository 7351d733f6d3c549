"""``make demo``: the dev broker, then emit -> process -> view as separate OS processes."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import click

from goka.devbroker import DevBroker

_STEP_TIMEOUT = 120.0
# One instance in the group: a short session timeout lets it join in seconds, not ~25 s.
_FAST_GROUP = ["--config", "session.timeout.ms=6000", "--config", "heartbeat.interval.ms=500"]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "examples.clickcount", *args]


def run_demo(messages: int, keys: int) -> int:
    with DevBroker() as broker, tempfile.TemporaryDirectory(prefix="goka-demo-") as storage:
        brokers = broker.bootstrap
        click.echo(f"dev broker at {brokers}")
        click.echo(f"emitting {messages} clicks for {keys} users ...")
        subprocess.run(
            _command(
                "emit", "--brokers", brokers, "--messages", str(messages), "--keys", str(keys)
            ),
            check=True,
            timeout=_STEP_TIMEOUT,
        )
        click.echo("starting the click-count processor ...")
        processor = subprocess.Popen(
            _command("process", "--brokers", brokers, "--storage", storage, *_FAST_GROUP),
            stdout=subprocess.DEVNULL,
        )
        try:
            click.echo("counts from a view of the table:")
            subprocess.run(
                _command("view", "--brokers", brokers, "--until-total", str(messages)),
                check=True,
                timeout=_STEP_TIMEOUT,
            )
        finally:
            processor.terminate()
            try:
                code = processor.wait(_STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                processor.kill()
                processor.wait()
                code = -1
        if code != 0:
            click.echo(f"the processor exited with code {code}", err=True)
            return 1
    click.echo("demo finished")
    return 0
