"""The user-status demo: the dev broker, then both services and the emitters as separate OS
processes, in an order that makes the joined click counts exact."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import click

from examples._running import demo_brokers

_STEP_TIMEOUT = 120.0
_STATUSES = ["online", "away", "busy", "offline"]
# One instance per group: a short session timeout lets it join its group in seconds, not ~25 s.
_FAST_GROUP = ["--config", "session.timeout.ms=6000", "--config", "heartbeat.interval.ms=500"]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "examples.user_status", *args]


def _stop(name: str, proc: subprocess.Popen[bytes]) -> bool:
    proc.terminate()
    try:
        code = proc.wait(_STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = -1
    if code != 0:
        click.echo(f"the {name} service exited with code {code}", err=True)
    return code == 0


def run_demo(messages: int, keys: int, brokers: str | None = None) -> int:
    services: dict[str, subprocess.Popen[bytes]] = {}
    with (
        demo_brokers(brokers) as brokers,
        tempfile.TemporaryDirectory(prefix="goka-demo-") as storage,
    ):
        try:
            click.echo(f"emitting {messages} clicks for {keys} users ...")
            subprocess.run(
                _command("emit-clicks", "--brokers", brokers, "--messages", str(messages))
                + ["--keys", str(keys)],
                check=True,
                timeout=_STEP_TIMEOUT,
                stdout=subprocess.DEVNULL,
            )
            click.echo("starting the click-count service; click counts:")
            services["clicks"] = subprocess.Popen(
                _command("process", "--brokers", brokers, "--service", "clicks")
                + ["--storage", str(Path(storage) / "clicks"), *_FAST_GROUP],
                stdout=subprocess.DEVNULL,
            )
            subprocess.run(
                [sys.executable, "-m", "examples.clickcount", "view", "--brokers", brokers]
                + ["--until-total", str(messages)],
                check=True,
                timeout=_STEP_TIMEOUT,
            )
            click.echo("starting the user-status service and emitting status updates ...")
            services["status"] = subprocess.Popen(
                _command("process", "--brokers", brokers, "--service", "status")
                + ["--storage", str(Path(storage) / "status"), *_FAST_GROUP],
                stdout=subprocess.DEVNULL,
            )
            updates = [f"user-{i}={_STATUSES[i % len(_STATUSES)]}" for i in range(keys)]
            subprocess.run(
                _command("emit-status", "--brokers", brokers, *updates),
                check=True,
                timeout=_STEP_TIMEOUT,
                stdout=subprocess.DEVNULL,
            )
            click.echo("statuses with the clicks at the time of the update:")
            subprocess.run(
                _command("view", "--brokers", brokers, "--until-users", str(keys)),
                check=True,
                timeout=_STEP_TIMEOUT,
            )
        finally:
            stopped = [_stop(name, proc) for name, proc in services.items()]
        if not all(stopped):
            return 1
    click.echo("demo finished")
    return 0
