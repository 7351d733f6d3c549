"""Unit tests for goka.graph: define_group validation, edges, group tables."""

from __future__ import annotations

from typing import Any

import pytest

import goka
from goka import codec
from goka.errors import ConfigError, GokaError
from goka.graph import InputEdge, OutputEdge, PersistEdge


def callback(ctx: Any, msg: Any) -> None:
    pass


def other_callback(ctx: Any, msg: Any) -> None:
    pass


def test_a_full_graph_keeps_its_edges_in_order() -> None:
    graph = goka.define_group(
        "counter",
        goka.input("clicks", codec.String(), callback),
        goka.output("alerts", codec.JSON()),
        goka.input("views", codec.Bytes(), other_callback),
        goka.persist(codec.Int64()),
        goka.output("audit", codec.String()),
    )
    assert isinstance(graph, goka.GroupGraph)
    assert graph.group == "counter"
    assert [e.topic for e in graph.inputs] == ["clicks", "views"]
    assert [e.topic for e in graph.outputs] == ["alerts", "audit"]
    assert graph.inputs[0] == InputEdge(goka.Stream("clicks"), codec.String(), callback)
    assert graph.inputs[1].callback is other_callback
    assert graph.outputs[0] == OutputEdge(goka.Stream("alerts"), codec.JSON())
    assert graph.persist == PersistEdge(codec.Int64())
    assert graph.table == "counter-table"
    assert graph.loop is None and graph.loop_topic is None
    assert graph.copartitioned == ["clicks", "views"]


def test_group_table_is_group_dash_table() -> None:
    assert goka.group_table("clicks-counter") == "clicks-counter-table"
    assert goka.group_table("g") == goka.Table("g-table")


def test_table_is_none_without_persist() -> None:
    graph = goka.define_group("stateless", goka.input("clicks", codec.String(), callback))
    assert graph.persist is None
    assert graph.table is None
    assert graph.outputs == ()


def test_group_graph_is_immutable() -> None:
    graph = goka.define_group("g", goka.input("clicks", codec.String(), callback))
    with pytest.raises(AttributeError):
        graph.group = goka.Group("other")  # type: ignore[misc]


def test_no_input() -> None:
    with pytest.raises(ConfigError, match=r"'g' has no input.*goka\.input\("):
        goka.define_group("g", goka.output("alerts", codec.JSON()), goka.persist(codec.Int64()))
    with pytest.raises(ConfigError, match="no input"):
        goka.define_group("g")


def test_two_persists() -> None:
    with pytest.raises(ConfigError, match="2 persist edges; at most one"):
        goka.define_group(
            "g",
            goka.input("clicks", codec.String(), callback),
            goka.persist(codec.Int64()),
            goka.persist(codec.String()),
        )


@pytest.mark.parametrize(
    "edges",
    [
        [goka.input("t", codec.String(), callback), goka.input("t", codec.Bytes(), callback)],
        [goka.input("t", codec.String(), callback), goka.output("t", codec.String())],
        [
            goka.input("a", codec.String(), callback),
            goka.output("t", codec.String()),
            goka.output("t", codec.JSON()),
        ],
    ],
    ids=["input-twice", "input-and-output", "output-twice"],
)
def test_duplicate_topic(edges: list[Any]) -> None:
    with pytest.raises(ConfigError, match="topic 't' is declared twice"):
        goka.define_group("g", *edges)


def test_own_table_as_input() -> None:
    with pytest.raises(ConfigError, match=r"'g-table' is the group's own table.*ctx\.set_value"):
        goka.define_group("g", goka.input("g-table", codec.Int64(), callback))


def test_own_table_as_output() -> None:
    with pytest.raises(ConfigError, match=r"own table; use ctx\.set_value, not an output edge"):
        goka.define_group(
            "g",
            goka.input("clicks", codec.String(), callback),
            goka.output("g-table", codec.Int64()),
            goka.persist(codec.Int64()),
        )


def test_another_groups_table_is_a_normal_topic() -> None:
    graph = goka.define_group("g", goka.input("other-table", codec.Int64(), callback))
    assert graph.inputs[0].topic == "other-table"


@pytest.mark.parametrize(
    "name", ["", ".", "..", "has space", "slash/name", "ümlaut", "x" * 250, None, 7, b"bytes"]
)
def test_invalid_group_name(name: Any) -> None:
    with pytest.raises(ConfigError, match=r"group name .* not a valid Kafka topic name.*a-z"):
        goka.define_group(name, goka.input("clicks", codec.String(), callback))


@pytest.mark.parametrize("name", ["", "..", "a:b", "x" * 250, None])
def test_invalid_topic_names(name: Any) -> None:
    with pytest.raises(ConfigError, match="input topic name .* 1-249 characters"):
        goka.input(name, codec.String(), callback)
    with pytest.raises(ConfigError, match="output topic name .* 1-249 characters"):
        goka.output(name, codec.String())


@pytest.mark.parametrize("name", ["a", "A.b_c-9", "x" * 249, "..."])
def test_valid_names(name: str) -> None:
    graph = goka.define_group(name, goka.input(name, codec.String(), callback))
    assert graph.group == name
    assert graph.inputs[0].topic == name


@pytest.mark.parametrize("not_callable", [None, "callback", 42])
def test_non_callable_callback(not_callable: Any) -> None:
    with pytest.raises(ConfigError, match=r"input\('clicks'\): callback .* is not callable"):
        goka.input("clicks", codec.String(), not_callable)


@pytest.mark.parametrize("not_a_codec", [None, "string", codec.String, object()])
def test_non_codec(not_a_codec: Any) -> None:
    fix = r"not a codec; pass an instance such as goka\.codec\.String\(\)"
    with pytest.raises(ConfigError, match=rf"input\('clicks'\): .*{fix}"):
        goka.input("clicks", not_a_codec, callback)
    with pytest.raises(ConfigError, match=rf"output\('alerts'\): .*{fix}"):
        goka.output("alerts", not_a_codec)
    with pytest.raises(ConfigError, match=rf"persist\(\): .*{fix}"):
        goka.persist(not_a_codec)


def test_non_edge() -> None:
    with pytest.raises(ConfigError, match=r"is not an edge; use goka\.input, output, persist"):
        goka.define_group("g", goka.input("clicks", codec.String(), callback), "alerts")  # type: ignore[arg-type]


def test_config_error_is_a_goka_error_and_a_value_error() -> None:
    with pytest.raises(GokaError):
        goka.define_group("g")
    with pytest.raises(ValueError):
        goka.define_group("g")
