"""The input consumer's settings for each consumer group protocol (see goka._group_protocol)."""

from __future__ import annotations

import pytest

import goka
from goka import codec
from goka._group_protocol import (
    GroupSettings,
    check_group_protocol,
    group_config,
    resolve_group_protocol,
)
from goka.errors import ConfigError
from goka.processor import GroupProtocol

CLIENT = {
    "bootstrap.servers": "127.0.0.1:1",
    "group.id": "g",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
}


def test_classic_keeps_the_client_session_and_assigns_with_eager_range() -> None:
    assert group_config("classic", CLIENT) == {
        **CLIENT,
        "partition.assignment.strategy": "range",
    }


def test_consumer_leaves_the_session_to_the_broker_and_asks_for_its_range_assignor() -> None:
    assert group_config("consumer", CLIENT) == {
        "bootstrap.servers": "127.0.0.1:1",
        "group.id": "g",
        "group.protocol": "consumer",
        "group.remote.assignor": "range",
    }
    with pytest.raises(ConfigError, match="partition.assignment.strategy is a classic"):
        group_config("consumer", {**CLIENT, "partition.assignment.strategy": "roundrobin"})


def test_only_known_protocols_are_taken_and_classic_needs_no_broker() -> None:
    with pytest.raises(ConfigError, match="group_protocol must be one of 'classic'"):
        check_group_protocol("eager")
    assert resolve_group_protocol("classic", "g", CLIENT) == GroupSettings(
        "classic", {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    )


@pytest.mark.parametrize("protocol", ["consumer", "auto"])
def test_the_processor_refuses_a_classic_assignor_unless_classic(protocol: GroupProtocol) -> None:
    graph = goka.define_group("g", goka.input("t", codec.String(), lambda ctx, msg: None))
    with pytest.raises(ConfigError, match="set group_protocol='classic' to assign in the client"):
        goka.Processor(
            "127.0.0.1:1",
            graph,
            group_protocol=protocol,
            extra_config={"partition.assignment.strategy": "range"},
        )
    goka.Processor(
        "127.0.0.1:1",
        graph,
        group_protocol="classic",
        extra_config={"partition.assignment.strategy": "range"},
    )
