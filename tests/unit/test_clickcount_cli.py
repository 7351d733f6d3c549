"""Command-line checks of ``python -m examples.clickcount process`` that need no broker."""

from __future__ import annotations

from click.testing import CliRunner

from examples.clickcount.cli import cli


def test_server_flags_without_serve_are_a_usage_error() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "process",
            "--brokers",
            "127.0.0.1:1",
            "--storage",
            "unused",
            "--token",
            "t",
            "--scan-cap",
            "10",
            "--metrics-port",
            "0",
        ],  # fmt: skip
    )
    assert result.exit_code == 2, result.output
    error = result.output.strip().splitlines()[-1]
    assert error == (
        "Error: --token, --scan-cap configure the gRPC server: add --serve HOST:PORT, or leave "
        "them out"
    )  # --metrics-port is not named: a processor exports its metrics without a server


def test_a_setting_the_processor_refuses_is_a_usage_error_naming_it() -> None:
    args = ["process", "--brokers", "127.0.0.1:1", "--storage", "unused"]
    result = CliRunner().invoke(cli, [*args, "--group-instance-id", "pod 0"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: group_instance_id 'pod 0' is not a valid Kafka group instance id: use 1-249 "
        "characters from a-z, A-Z, 0-9, '.', '_' and '-'"
    )
