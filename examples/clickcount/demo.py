"""``make demo``: the dev broker, then emit -> process -> view as separate OS processes, then
reads over gRPC: the processor serves its table, a router forwards, ``viewsvc`` queries."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import click

from examples._running import demo_brokers

_STEP_TIMEOUT = 120.0
# One instance in the group: a short session timeout lets it join in seconds, not ~25 s.
_FAST_GROUP = ["--config", "session.timeout.ms=6000", "--config", "heartbeat.interval.ms=500"]
_TABLE = "clicks-counter-table"


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "examples.clickcount", *args]


def _viewsvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "viewsvc", *args]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _running(command: list[str], **options: object) -> Iterator[subprocess.Popen[str]]:
    """A child process, stopped with SIGTERM (then SIGKILL) when the block ends."""
    child = subprocess.Popen(command, text=True, **options)  # type: ignore[call-overload]
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(_STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_demo(messages: int, keys: int, brokers: str | None = None) -> int:
    with (
        demo_brokers(brokers) as brokers,
        tempfile.TemporaryDirectory(prefix="goka-demo-") as storage,
    ):
        click.echo(f"emitting {messages} clicks for {keys} users ...")
        subprocess.run(
            _command(
                "emit", "--brokers", brokers, "--messages", str(messages), "--keys", str(keys)
            ),
            check=True,
            timeout=_STEP_TIMEOUT,
        )
        endpoint, monitor = f"127.0.0.1:{_free_port()}", _free_port()
        click.echo(f"starting the click-count processor, serving its table on {endpoint} ...")
        click.echo(f"its web monitor and query page: http://127.0.0.1:{monitor}/")
        serve = ["--serve", endpoint, "--advertise", endpoint, "--heartbeat", "0.5"]
        serve += ["--http-port", str(monitor)]
        process = _command("process", "--brokers", brokers, "--storage", storage)
        with _running([*process, *serve, *_FAST_GROUP], stdout=subprocess.DEVNULL) as processor:
            click.echo("counts from a view of the table:")
            subprocess.run(
                _command("view", "--brokers", brokers, "--until-total", str(messages)),
                check=True,
                timeout=_STEP_TIMEOUT,
            )
            _query_over_grpc(brokers)
            if sys.stdin.isatty():
                click.prompt(
                    f"\nthe monitor stays at http://127.0.0.1:{monitor}/ until you press Enter",
                    default="", show_default=False, prompt_suffix="",
                )  # fmt: skip
        if processor.returncode != 0:
            click.echo(f"the processor exited with code {processor.returncode}", err=True)
            return 1
    click.echo("demo finished")
    return 0


def _query_over_grpc(brokers: str) -> None:
    """A router that holds nothing forwards each read to the processor owning the key."""
    route = _viewsvc("route", "--brokers", brokers, "--listen", "127.0.0.1:0", "--heartbeat", "0.5")
    with _running(route, stdout=subprocess.PIPE) as router:
        assert router.stdout is not None
        line = router.stdout.readline().strip()  # "serving <member id> on <host:port>"
        if not line.startswith("serving "):
            raise click.ClickException(f"the router did not start (exit {router.poll()})")
        target = line.rsplit(" ", 1)[1]
        click.echo(f"\nreads over gRPC through the router at {target}:")
        for args in (
            ("get", "--table", _TABLE, "user-0", "user-1", "nobody"),
            ("scan", "--table", _TABLE, "--prefix", "user-", "--limit", "5"),
            ("locate", "--table", _TABLE, "user-0"),
        ):
            click.echo(f"$ viewsvc {' '.join(args)} --target {target}")
            subprocess.run(_viewsvc(*args, "--target", target), check=True, timeout=_STEP_TIMEOUT)
