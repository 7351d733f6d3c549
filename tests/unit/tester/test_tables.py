"""Table handles, views and visitors of the tester."""

from __future__ import annotations

from typing import Any

import pytest

import goka
from goka import codec
from goka.errors import ConfigError, ProcessorError, TopicError
from goka.graph import visitor
from goka.partitioner import murmur2
from goka.tester import Tester

KEYS = [f"user-{i:02}" for i in range(30)]


def count(ctx: goka.Context, msg: Any) -> None:
    ctx.set_value((ctx.value() or 0) + 1)


def reset(ctx: goka.Context, meta: Any) -> None:
    if meta == "delete":
        ctx.delete()
    else:
        ctx.set_value(meta)
        ctx.emit("resets", ctx.key, f"{ctx.partition}")


def counter() -> goka.GroupGraph:
    return goka.define_group(
        "counter",
        goka.input("clicks", codec.String(), count),
        goka.output("resets", codec.String()),
        goka.persist(codec.Int64()),
        visitor("reset", reset),
    )


def test_table_handle_reads_and_writes_the_group_table() -> None:
    tester = Tester(partitions=8)
    tester.add_processor(counter())
    table = tester.table("counter-table")  # the codec of the persist edge
    for key in KEYS:
        table.set(key, 10)
    tester.consume("clicks", "user-03", "click")  # the group reads what the test set
    assert table.get("user-03") == 11
    assert table.get("nobody") is None
    table.delete("user-04")
    table.delete("nobody")  # deleting a missing key is fine
    assert table.keys() == [k for k in KEYS if k != "user-04"]
    assert table.items()[:4] == [("user-00", 10), ("user-01", 10), ("user-02", 10), ("user-03", 11)]
    view = tester.view("counter-table", codec.Int64())
    for key in KEYS[:8]:
        assert view.partition_of(key) == murmur2(key.encode(), 8)
    table.clear()
    assert table.keys() == [] and table.items() == []
    tester.consume("clicks", "user-03", "click")
    assert table.get("user-03") == 1


def test_table_codec_must_be_known_or_given() -> None:
    tester = Tester()
    with pytest.raises(ConfigError, match=r"pass one: tester.table\('other-table', codec\)"):
        tester.table("other-table")
    tester.table("other-table", codec.JSON()).set("k", {"a": 1})
    assert tester.table("other-table").get("k") == {"a": 1}  # the given codec is remembered
    with pytest.raises(ConfigError, match="use delete"):
        tester.table("other-table").set("k", None)
    with pytest.raises(ConfigError, match="keys are str"):
        tester.table("other-table").get(b"k")  # type: ignore[arg-type]


def test_view_has_the_read_api_of_a_view() -> None:
    tester = Tester(partitions=4)
    tester.add_processor(counter())
    for i, key in enumerate(KEYS):
        for _ in range(i % 3 + 1):
            tester.consume("clicks", key, "click")
    with tester.view("counter-table", codec.Int64()) as view:
        assert view.state == "running"
        assert view.wait_running() is True and view.wait_running(timeout=0.1) is True
        assert view.partitions == (0, 1, 2, 3)
        assert view.get("user-05") == 5 % 3 + 1
        assert view.get("nobody") is None
        assert [k for k, _ in view.items()] == KEYS
        assert [k for k, _ in view.items(prefix="user-1")] == [f"user-1{i}" for i in range(10)]
        assert [k for k, _ in view.items(start="user-27")] == ["user-27", "user-28", "user-29"]
        assert [k for k, _ in view.items(end="user-02")] == ["user-00", "user-01"]
        assert [k for k, _ in view.items(prefix="user-2", start="user-25", end="user-27")] == [
            "user-25",
            "user-26",
        ]
        tester.consume("clicks", "new-user", "click")  # a view follows the table
        assert view.get("new-user") == 1
    view.stop()


def test_view_of_an_unknown_table_names_the_fix() -> None:
    with pytest.raises(TopicError, match=r"tester.add_processor"):
        Tester().view("nobody-table", codec.Int64())


def test_visit_all_runs_over_every_key_in_partition_then_key_order() -> None:
    tester = Tester(partitions=4)
    processor = tester.add_processor(counter())
    for key in KEYS:
        tester.consume("clicks", key, "click")
    resets = tester.output_tracker("resets")
    assert processor.visit_all("reset", 100) == len(KEYS)
    assert tester.table("counter-table").items() == [(k, 100) for k in KEYS]
    visited = [(m.key, int(m.value)) for m in resets]
    expected = sorted((murmur2(k.encode(), 4), k) for k in KEYS)
    assert visited == [(k, p) for p, k in expected]
    assert processor.visit_all("reset", "delete") == len(KEYS)
    assert tester.table("counter-table").keys() == []
    assert processor.visit_all("reset", 1) == 0


def test_visit_all_emits_cascade_to_other_groups() -> None:
    tester = Tester(partitions=2)
    processor = tester.add_processor(counter())
    seen: list[str] = []
    tester.add_processor(
        goka.define_group(
            "audit", goka.input("resets", codec.String(), lambda c, m: seen.append(c.key))
        )
    )
    for key in KEYS[:3]:
        tester.consume("clicks", key, "click")
    processor.visit_all("reset", 0)
    assert sorted(seen) == KEYS[:3]


def test_visit_all_errors() -> None:
    tester = Tester()
    processor = tester.add_processor(counter())
    with pytest.raises(ConfigError, match=r"no visitor 'nope' \(declared: \['reset'\]\)"):
        processor.visit_all("nope")
    tester.consume("clicks", "k", "click")
    with pytest.raises(ProcessorError) as info:
        processor.visit_all("reset", "not an int")
    assert "the callback for 'a visit' raised CodecError" in str(info.value)
    assert tester.table("counter-table").get("k") == 1
    stateless = tester.add_processor(
        goka.define_group("stateless", goka.input("x", codec.String(), count), visitor("v", reset))
    )
    with pytest.raises(ConfigError, match="has no table to visit"):
        stateless.visit_all("v")


def test_processor_handle() -> None:
    tester = Tester(partitions=3)
    processor = tester.add_processor(counter())
    assert processor.group == "counter"
    assert processor.graph.group == "counter"
    assert processor.partitions == 3
    assert (processor.skipped, processor.dead_lettered) == (0, 0)
    assert repr(processor) == "TesterProcessor('counter', partitions=3)"
