"""Tables shared with real Goka (lovoo/goka v1.1.16, Go; interop/goka) both ways, on real
Kafka, every program an OS process:

- a Goka emitter and a Goka processor count clicks into a Goka group table (codec.Int64,
  Goka's default FNV-1a partitioning); a Python ``goka.View``, a Python processor that joins
  the table, one that looks keys up in it, and ``viewsvc serve-view`` over gRPC (Get, Scan)
  all see exactly the counts Goka's own view sees;
- a Python processor (``partitioner="fnv1a"``, ``codec.Int64()``) writes a table and emits to
  a stream; Goka's view reads exactly its values, every key found in the partition Goka's
  hasher picks, and a Goka processor consuming the stream stores exactly the values;
- a Goka processor joins the Python processor's table (co-partitioned), as the Python
  processor above joins Goka's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import goka
from goka import codec
from tests.conftest import ProcessGroup, RunningProcessor, unique
from tests.support.goka_go import GokaGo, build
from tests.support.serving import serving_line, wait_until
from viewsvc.client import Client, ReadError

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.kafka_only("Goka's Sarama client is tested against Apache Kafka"),
]

PARTITIONS = 4
TIMEOUT = 120.0
CLICKS = {f"user-{i}": i % 5 + 1 for i in range(40)}
"""Clicks per key: the counts Goka's processor must end with."""
VALUES = {f"item-{i}": i * 7 - 50 for i in range(40)}
"""What the Python processor writes (negative values too)."""


@pytest.fixture(scope="module")
def goka_go(goka_brokers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GokaGo]:
    root = tmp_path_factory.mktemp("goka-go")
    processes = ProcessGroup()
    try:
        yield GokaGo(build(root), goka_brokers, processes, root)
    finally:
        processes.cleanup()


class Views:
    """Python Views with Goka's partitioner, stopped at the end of the module."""

    def __init__(self, brokers: str) -> None:
        self.brokers = brokers
        self.started: list[goka.View[Any]] = []

    def reader(self, table: str, keys: list[str]) -> Callable[[], dict[str, Any]]:
        """Reads ``keys`` of ``table`` through a started View."""
        view = goka.View(self.brokers, table, codec.Int64(), partitioner="fnv1a").start()
        self.started.append(view)
        return lambda: {key: view.get(key) for key in keys}

    def stop(self) -> None:
        for view in self.started:
            view.stop()


@pytest.fixture(scope="module")
def views(goka_brokers: str) -> Iterator[Views]:
    started = Views(goka_brokers)
    yield started
    started.stop()


def processor(brokers: str, graph: goka.GroupGraph) -> RunningProcessor:
    return RunningProcessor(goka.Processor(brokers, graph, partitioner="fnv1a"))


@dataclass(frozen=True)
class GokaTable:
    table: str
    """The table Goka's count processor wrote, CLICKS counted."""


@pytest.fixture(scope="module")
def goka_table(goka_go: GokaGo, goka_brokers: str, views: Views) -> GokaTable:
    clicks, group = unique("clicks"), unique("goka-counter")
    goka.TopicManager(goka_brokers).ensure_stream(clicks, PARTITIONS)
    goka_go.processor("count", group, "-input", clicks, timeout=TIMEOUT)
    goka_go.emit(clicks, [(k, "click") for k, n in CLICKS.items() for _ in range(n)], TIMEOUT)
    table = goka.group_table(group)
    read = views.reader(table, list(CLICKS))
    wait_until(lambda: read() == CLICKS, TIMEOUT, "the Python view to see Goka's counts")
    return GokaTable(table)


def test_goka_s_view_sees_the_counts_the_python_view_saw(
    goka_go: GokaGo, goka_brokers: str, goka_table: GokaTable
) -> None:
    """The ``goka_table`` fixture waited for a Python View to read exactly CLICKS."""
    assert goka_go.view(goka_table.table, None, TIMEOUT) == CLICKS  # every entry
    assert goka_go.view(goka_table.table, list(CLICKS), TIMEOUT) == CLICKS  # View.Get
    manager = goka.TopicManager(goka_brokers)
    assert manager.config(goka_table.table)["cleanup.policy"] == "compact"  # as goka-py's
    assert manager.partitions(goka_table.table) == PARTITIONS  # as its input's


def test_python_processors_join_and_look_up_a_goka_table(
    goka_brokers: str, goka_table: GokaTable, views: Views
) -> None:
    table, manager = goka_table.table, goka.TopicManager(goka_brokers)
    by_key, queries = unique("by-key"), unique("queries")
    manager.ensure_stream(by_key, PARTITIONS)
    manager.ensure_stream(queries, PARTITIONS)
    joiner, looker = unique("py-joiner"), unique("py-lookup")
    runners = [
        processor(goka_brokers, goka.define_group(
            joiner,
            goka.input(by_key, codec.String(), lambda ctx, _: ctx.set_value(ctx.join(table))),
            goka.join(table, codec.Int64()),
            goka.persist(codec.Int64()),
        )),
        processor(goka_brokers, goka.define_group(
            looker,
            goka.input(queries, codec.String(),
                       lambda ctx, key: ctx.set_value(ctx.lookup(table, key))),
            goka.lookup(table, codec.Int64()),
            goka.persist(codec.Int64()),
        )),
    ]  # fmt: skip
    try:
        with goka.Emitter(goka_brokers, by_key, codec.String(), partitioner="fnv1a") as emitter:
            for key in CLICKS:
                emitter.emit_sync(key, "join")
        # the processor's table is partitioned as its input: FNV-1a, as its readers expect
        with goka.Emitter(goka_brokers, queries, codec.String(), partitioner="fnv1a") as emitter:
            for key in CLICKS:
                emitter.emit_sync(f"q-{key}", key)
        joined = views.reader(goka.group_table(joiner), list(CLICKS))
        wait_until(lambda: joined() == CLICKS, TIMEOUT, "the join to copy Goka's counts")
        looked_up = views.reader(goka.group_table(looker), [f"q-{k}" for k in CLICKS])
        expected = {f"q-{key}": count for key, count in CLICKS.items()}
        wait_until(lambda: looked_up() == expected, TIMEOUT, "the lookups to find Goka's counts")
    finally:
        for runner in runners:
            runner.stop()


def test_serve_view_answers_get_and_scan_over_a_goka_table(
    goka_brokers: str, goka_table: GokaTable, processes: ProcessGroup
) -> None:
    proc = processes.start(
        "-m", "viewsvc", "serve-view", "--brokers", goka_brokers, "--table", goka_table.table,
        "--partitioner", "fnv1a", "--value-codec", "int64", "--listen", "127.0.0.1:0",
        "--discovery-topic", unique("discovery"), "--heartbeat", "0.5",
    )  # fmt: skip
    _, endpoint = serving_line(proc, TIMEOUT)
    expected = {key.encode(): str(count).encode() for key, count in CLICKS.items()}
    with Client(endpoint, timeout=5.0) as client:
        assert client.wait_ready(TIMEOUT)

        def answered() -> dict[bytes, bytes] | None:
            try:
                return {r.key: r.value for r in client.get_many(goka_table.table, list(CLICKS))}
            except ReadError:  # still recovering, or its announcement not read yet
                return None

        wait_until(lambda: answered() == expected, TIMEOUT, "serve-view to answer Goka's counts")
        assert {e.key: e.value for e in client.scan(goka_table.table)} == expected


@dataclass(frozen=True)
class PythonTable:
    table: str
    """The table the Python processor wrote, VALUES."""
    stream: str
    """Where it emitted every value too (codec.Int64)."""


@pytest.fixture(scope="module")
def python_table(goka_brokers: str, views: Views) -> Iterator[PythonTable]:
    values_in, values_out, group = unique("values-in"), unique("values-out"), unique("py-writer")
    manager = goka.TopicManager(goka_brokers)
    manager.ensure_stream(values_in, PARTITIONS)
    manager.ensure_stream(values_out, PARTITIONS)

    def store_and_emit(ctx: goka.Context, value: int) -> None:
        ctx.set_value(value)
        ctx.emit(values_out, ctx.key, value)

    runner = processor(goka_brokers, goka.define_group(
        group,
        goka.input(values_in, codec.Int64(), store_and_emit),
        goka.output(values_out, codec.Int64()),
        goka.persist(codec.Int64()),
    ))  # fmt: skip
    try:
        with goka.Emitter(goka_brokers, values_in, codec.Int64(), partitioner="fnv1a") as emitter:
            for key, value in VALUES.items():
                emitter.emit_sync(key, value)
        table = goka.group_table(group)
        read = views.reader(table, list(VALUES))
        wait_until(lambda: read() == VALUES, TIMEOUT, "the Python processor to store every value")
        yield PythonTable(table, values_out)
    finally:
        runner.stop()


def test_goka_reads_a_python_table_and_stream(goka_go: GokaGo, python_table: PythonTable) -> None:
    assert goka_go.view(python_table.table, list(VALUES), TIMEOUT) == VALUES  # View.Get
    assert goka_go.view(python_table.table, None, TIMEOUT) == VALUES  # every entry
    copier = unique("goka-copy")
    goka_go.processor("copy", copier, "-input", python_table.stream, timeout=TIMEOUT)
    wait_until(
        lambda: goka_go.view(goka.group_table(copier), list(VALUES), TIMEOUT) == VALUES,
        TIMEOUT,
        "Goka's processor to store the values the Python processor emitted",
    )


def test_goka_joins_a_python_table(
    goka_go: GokaGo, goka_brokers: str, python_table: PythonTable
) -> None:
    by_key, joiner = unique("goka-by-key"), unique("goka-joiner")
    goka.TopicManager(goka_brokers).ensure_stream(by_key, PARTITIONS)
    goka_go.processor("joiner", joiner, "-input", by_key, "-join", python_table.table,
                      timeout=TIMEOUT)  # fmt: skip
    goka_go.emit(by_key, [(key, "join") for key in VALUES], TIMEOUT)
    wait_until(
        lambda: goka_go.view(goka.group_table(joiner), list(VALUES), TIMEOUT) == VALUES,
        TIMEOUT,
        "Goka's processor to join the Python table",
    )
