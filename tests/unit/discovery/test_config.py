"""DiscoveryConfig and standby_replicas refuse bad settings with errors that name the fix."""

from __future__ import annotations

import pytest

import goka
from discovery import DiscoveryConfig
from discovery.config import check_address, check_port
from goka import codec
from goka.errors import ConfigError


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"advertise": "no-port"}, "is not host:port"),
        ({"advertise": "host:port"}, "is not host:port"),
        ({"heartbeat": 0}, "heartbeat must be positive"),
        ({"topic": ""}, "topic name is empty"),
        ({"replication_factor": -2}, "replication_factor must be -1"),
        ({"replication_factor": 1, "min_insync_replicas": 2}, "exceeds replication_factor=1"),
    ],
)
def test_bad_discovery_config(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DiscoveryConfig(**kwargs)  # type: ignore[arg-type]


def test_good_discovery_config() -> None:
    config = DiscoveryConfig(advertise="pod-0.svc.cluster.local:50051", heartbeat=0.5)
    assert config.topic == "goka-discovery"
    assert DiscoveryConfig(advertise="[::1]:50051").advertise == "[::1]:50051"


def test_standby_replicas_need_discovery() -> None:
    graph = goka.define_group(
        "g", goka.input("t", codec.String(), lambda ctx, msg: None), goka.persist(codec.Int64())
    )
    with pytest.raises(ConfigError, match="standby_replicas needs discovery"):
        goka.Processor("localhost:9092", graph, standby_replicas=1)
    with pytest.raises(ConfigError, match="standby_replicas must be >= 1"):
        goka.Processor("localhost:9092", graph, standby_replicas=0, discovery=DiscoveryConfig())


@pytest.mark.parametrize(
    "address", ["pod-0.svc:50051", "0.0.0.0:0", "127.0.0.1:65535", "[::1]:50051", "[::]:9"]
)
def test_one_address_rule_accepts_hosts_ipv4_and_bracketed_ipv6(address: str) -> None:
    check_address("listen", address)


@pytest.mark.parametrize(
    "address",
    ["host:65536", "host:99999", "host:", ":50051", "::1:50051", "a b:1", "http://x:1", "h:p"],
)
def test_one_address_rule_refuses_what_cannot_be_dialed(address: str) -> None:
    with pytest.raises(ConfigError, match=r"listen=.* is not host:port, e.g. '0.0.0.0:1'"):
        check_address("listen", address, "0.0.0.0:1")


def test_one_port_rule() -> None:
    for port in (None, 0, 9090, 65535):
        check_port("metrics_port", port)
    for port in (-1, 65536):
        with pytest.raises(
            ConfigError, match=rf"^metrics_port={port} is not a TCP port \(0..65535\)$"
        ):
            check_port("metrics_port", port)
