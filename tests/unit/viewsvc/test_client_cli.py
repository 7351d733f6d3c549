"""``viewsvc get``, ``scan`` and ``locate`` against fake nodes on 127.0.0.1 (no Kafka)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.unit.viewsvc.fake_nodes import PARTITIONS, TABLE, Cluster, FakeNode, Held, key_in
from viewsvc.cli.main import cli


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as c:
        yield c


@pytest.fixture
def node(cluster: Cluster) -> FakeNode:
    cluster.data.update({b"user-1": b"42", b"user-2": b"-7", b"user-3": b"1", b"zed": b"x"})
    return cluster.add("node-a", [Held(p) for p in range(PARTITIONS)])


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def test_get_prints_decoded_values_and_not_found(node: FakeNode) -> None:
    result = run("get", "--target", node.endpoint, "--table", TABLE, "user-1", "nobody", "user-2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["user-1\t42", "nobody\t<not found>", "user-2\t-7"]
    assert node.calls["GetMany"] == 1


def test_get_raw_prints_bytes_literals(node: FakeNode) -> None:
    result = run("get", "--target", node.endpoint, "--table", TABLE, "--raw", "user-1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "b'user-1'\tb'42'\n"


def test_get_shows_undecodable_values_as_bytes_literals(node: FakeNode) -> None:
    result = run("get", "--target", node.endpoint, "--table", TABLE, "zed")
    assert result.exit_code == 0, result.output
    assert result.stdout == "zed\tb'x'\n"  # "x" is no int64


def test_get_passes_read_options(node: FakeNode) -> None:
    result = run(
        "get", "--target", node.endpoint, "--table", TABLE,
        "--consistency", "active", "--max-lag", "5", "--timeout", "3", "user-1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    options = node.requests[-1].options
    assert (options.consistency, options.max_lag) == (2, 5)


def test_scan_prints_rows_and_the_next_page_token(node: FakeNode) -> None:
    args = ["scan", "--target", node.endpoint, "--table", TABLE, "--prefix", "user-"]
    first = run(*args, "--limit", "2")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == ["user-1\t42", "user-2\t-7"]
    token = first.stderr.removeprefix("next page token: ").strip()
    assert token and first.stderr.startswith("next page token: ")

    rest = run(*args, "--page-token", token)
    assert rest.exit_code == 0, rest.output
    assert rest.stdout.splitlines() == ["user-3\t1"]
    assert rest.stderr == ""


def test_scan_range(node: FakeNode) -> None:
    result = run(
        "scan", "--target", node.endpoint, "--table", TABLE, "--start", "user-2", "--end", "z"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["user-2\t-7", "user-3\t1"]


def test_locate_prints_the_partition_and_replicas(cluster: Cluster, node: FakeNode) -> None:
    standby = cluster.add("node-b", [Held(1, kind="standby", lag=-1)])
    result = run("locate", "--target", node.endpoint, "--table", TABLE, key_in(1).decode())
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"table {TABLE}, partition 1"
    assert lines[1].split() == ["MEMBER", "ENDPOINT", "KIND", "STATE", "LAG", "OFFSET"]
    assert lines[2].split() == ["node-a", node.endpoint, "active", "running", "0", "10"]
    assert lines[3].split() == ["node-b", standby.endpoint, "standby", "running", "?", "10"]


def test_server_errors_become_messages(node: FakeNode) -> None:
    result = run("get", "--target", node.endpoint, "--table", "nope", "k")
    assert result.exit_code == 1
    assert "Error: NOT_FOUND: unknown table 'nope'" in result.output


def test_token_comes_from_the_environment(cluster: Cluster) -> None:
    guarded = cluster.add("guarded", [Held(p) for p in range(PARTITIONS)], token="s3cret")
    args = ["get", "--target", guarded.endpoint, "--table", TABLE, "k"]
    assert run(*args, env={"VIEWSVC_TOKEN": "s3cret"}).stdout == "k\t<not found>\n"
    refused = run(*args, "--timeout", "2", env={"VIEWSVC_TOKEN": ""})
    assert refused.exit_code == 1
    assert "UNAUTHENTICATED" in refused.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "--table", TABLE, "k"], "pass --target HOST:PORT"),
        (["get", "--target", "127.0.0.1:1", "k"], "Missing option '--table'"),
        (["get", "--target", "127.0.0.1:1", "--table", TABLE], "Missing argument 'KEYS...'"),
        (["get", "--target", "h:1", "--table", TABLE, "--consistency", "x", "k"], "'x' is not"),
        (["get", "--target", "h:1", "--table", TABLE, "--max-lag", "-1", "k"], "--max-lag"),
        (["scan", "--target", "h:1", "--table", TABLE, "--limit", "-1"], "--limit"),
        (["locate", "--target", "h:1", "--table", TABLE, "--timeout", "0", "k"], "--timeout"),
        (["scan", "--target", "h:1", "--table", TABLE, "--config", "x"], "is not KEY=VALUE"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_tls_files_without_tls_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    result = run("get", "--target", "h:1", "--table", TABLE, "--ca-file", str(ca), "k")
    assert result.exit_code == 1
    assert "pass tls=True (--tls)" in result.output


def test_help_lists_the_read_commands() -> None:
    result = run("--help")
    for command in ("get", "scan", "locate", "members"):
        assert command in result.output
