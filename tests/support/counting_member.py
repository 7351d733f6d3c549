"""A counting processor over any inputs, as an OS process, for the multi-process tests whose
members must differ in their inputs (a rolling deploy that adds one):

    python -m tests.support.counting_member --brokers B --group G --input T [--input T2]
        --storage DIR --stats-file F [--keep count|last] [--guarantee exactly_once]
        [--output T]

Every message of every input adds 1 to its key's count in the group table, or with
``--keep last`` sets its key's value to the message (a number): replaying a message then
changes nothing, so the final table is exact under at-least-once. Stats are written to F
every 0.2 s; SIGTERM stops it (see ``examples._running``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

import click

import goka
from examples._running import run_processor
from goka import codec
from goka.processor import Guarantee
from tests.conftest import FAST_GROUP_CONFIG, ProcessGroup
from viewsvc.cli.common_options import guarantee_option


def count(ctx: goka.Context, msg: str) -> None:
    ctx.set_value((ctx.value() or 0) + 1)


def keep_last(ctx: goka.Context, msg: str) -> None:
    ctx.set_value(int(msg))


KEEP = {"count": count, "last": keep_last}


def start_member(
    processes: ProcessGroup,
    brokers: str,
    group: str,
    inputs: Iterable[str],
    storage: Path,
    stats_file: Path,
    *,
    keep: str = "count",
    guarantee: str = "at_least_once",
    output: str | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen[str]:
    """This module as a process of the test's ``processes``; its stderr to ``log`` if given."""
    return processes.start(
        "-m", "tests.support.counting_member", "--brokers", brokers, "--group", group,
        *(arg for topic in inputs for arg in ("--input", topic)), "--keep", keep,
        "--storage", str(storage), "--stats-file", str(stats_file), "--guarantee", guarantee,
        *(("--output", output) if output is not None else ()),
        env=env, log=log,
    )  # fmt: skip


@click.command()
@click.option("--brokers", required=True)
@click.option("--group", required=True)
@click.option("--input", "inputs", multiple=True, required=True)
@click.option("--storage", required=True)
@click.option("--stats-file", required=True)
@click.option("--keep", type=click.Choice(sorted(KEEP)), default="count")
@click.option("--output", default=None, help="also emit every message (key, value) to this topic")
@guarantee_option
def main(
    brokers: str,
    group: str,
    inputs: tuple[str, ...],
    storage: str,
    stats_file: str,
    keep: str,
    output: str | None,
    guarantee: Guarantee,
) -> None:
    callback = KEEP[keep]
    if output is not None:
        kept, target = callback, output

        def callback(ctx: goka.Context, msg: str) -> None:
            kept(ctx, msg)
            ctx.emit(target, ctx.key, msg)

    graph = goka.define_group(
        group,
        *(goka.input(topic, codec.String(), callback) for topic in inputs),
        *([goka.output(output, codec.String())] if output is not None else []),
        goka.persist(codec.Int64()),
    )
    processor = goka.Processor(
        brokers,
        graph,
        storage=goka.LMDBStorage(storage),
        batch_size=100,
        guarantee=guarantee,
        extra_config=FAST_GROUP_CONFIG,
    )
    run_processor(processor, stats_file=stats_file, stats_interval=0.2)


if __name__ == "__main__":
    main()
