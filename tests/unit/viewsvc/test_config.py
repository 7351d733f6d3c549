"""Server settings refuse bad values with errors that name the setting."""

from __future__ import annotations

import socket

import click
import pytest
from click.testing import CliRunner

from goka.errors import ConfigError
from viewsvc.cli.server_options import given_server_flags, server_options
from viewsvc.nodes.processor_plugin import ServeConfig
from viewsvc.nodes.standalone import NodeConfig, ViewServer, _advertised
from viewsvc.server.limits import Limits
from viewsvc.server.metrics import Metrics


@pytest.mark.parametrize("field", ["scan_cap", "max_key_bytes", "workers", "default_deadline"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ConfigError, match=f"Limits.{field} must be positive"):
        Limits(**{field: 0})  # type: ignore[arg-type]


def test_watchers_must_leave_threads_for_reads() -> None:
    with pytest.raises(ConfigError, match="max_watchers"):
        Limits(max_concurrent_rpcs=4, max_watchers=4)


@pytest.mark.parametrize("listen", ["", "50051", "host:", ":50051", "host:port", "host:70000"])
def test_serve_config_wants_host_and_port(listen: str) -> None:
    with pytest.raises(ConfigError, match="is not host:port"):
        ServeConfig(listen)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"listen": "nowhere"}, "listen='nowhere' is not host:port"),
        ({"listen": "127.0.0.1:0", "advertise": "pod-0"}, "advertise='pod-0' is not host:port"),
        ({"listen": "127.0.0.1:0", "grace": -1}, "grace"),
    ],
)
def test_node_config_checks_addresses(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NodeConfig(**kwargs)  # type: ignore[arg-type]


def test_serve_config_grace_not_negative() -> None:
    with pytest.raises(ConfigError, match="grace"):
        ServeConfig("0.0.0.0:50051", grace=-1)


def test_view_server_needs_a_table() -> None:
    with pytest.raises(ConfigError, match="at least one table"):
        ViewServer("localhost:9092", [], NodeConfig(listen="127.0.0.1:0"))


@pytest.mark.parametrize(
    ("listen", "advertise", "expected"),
    [
        ("127.0.0.1:0", "", "127.0.0.1:4711"),
        ("0.0.0.0:0", "", f"{socket.gethostname()}:4711"),
        ("127.0.0.1:0", "pod-0.views:0", "pod-0.views:4711"),
        ("0.0.0.0:50051", "pod-0.views:50051", "pod-0.views:50051"),
    ],
)
def test_advertised_address_takes_the_bound_port(
    listen: str, advertise: str, expected: str
) -> None:
    assert _advertised(NodeConfig(listen=listen, advertise=advertise), 4711) == expected


def test_metrics_on_a_taken_port_names_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"127.0.0.1:{port}.*--metrics-port"):
            Metrics().serve(port, "127.0.0.1")


def test_given_server_flags_are_those_on_the_command_line() -> None:
    seen: list[list[str]] = []

    @click.command()
    @server_options
    def command(**_: object) -> None:
        seen.append(given_server_flags(click.get_current_context()))

    result = CliRunner().invoke(
        command, ["--grace", "1", "--tls-cert", "c.pem"], env={"VIEWSVC_TOKEN": "t"}
    )
    assert result.exit_code == 0, result.output
    assert seen == [["--tls-cert", "--grace"]]  # in declaration order; not the environment's
