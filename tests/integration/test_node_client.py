"""The Node.js example client (examples/node_client) against a live viewsvc view server:
get, get-many, locate and scan, with keys as UTF-8 text, hex or base64.

``table_server`` writes ROWS into a compacted table topic on the dev broker (``goka_brokers``),
then runs ``python -m viewsvc serve-view`` on it as a child process, requiring TOKEN, and waits
until its health check says SERVING (the view has recovered the whole table). The tests compare
the client's JSON with ROWS and with the offsets the writes were delivered at.
"""

from __future__ import annotations

import base64
import json
import re
import select
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from confluent_kafka import Producer
from grpc_health.v1 import health_pb2, health_pb2_grpc

import goka
from goka.partitioner import murmur2
from tests.conftest import ProcessGroup, unique
from viewsvc.wire.channels import open_channel

pytestmark = pytest.mark.broker

CLIENT_TIMEOUT = 60.0  # bound of one client run; only reached when something is wrong
SERVER_TIMEOUT = 30.0  # bound of the view server's start; only reached when something is wrong

PARTITIONS = 4
TOKEN = "s3cret"
ROWS: dict[bytes, bytes] = {
    b"user-01": b"1",
    b"user-02": b"22",
    b"user-10": b"10",
    b"user-": b"prefix itself",
    b"user-bin": b"\xff\xfe\x00",  # not UTF-8: text is null
    b"usex": b"not under the prefix",
    "zé".encode(): "grüße".encode(),
    b"admin": b"",  # an empty value is still found
    b"\xffbin\x00key": b"binary key",  # not UTF-8: written raw, asked for in hex or base64
}
SERVING_LINE = re.compile(r"serving (\S+) on (\S+)")


@dataclass(frozen=True)
class TableServer:
    """A running view server: where it listens, what it serves and who it is."""

    target: str
    table: str
    member_id: str
    offsets: dict[int, int]  # partition -> next offset of the table topic after ROWS


def write_rows(brokers: str, table: str) -> dict[int, int]:
    """Writes ROWS into ``table``; partition -> the offset after the last row written there.
    Keys go to their murmur2 partition, as the emitter would put them."""
    producer = Producer({"bootstrap.servers": brokers})
    deliveries: list[tuple[int, int]] = []

    def delivered(err: Any, message: Any) -> None:
        assert err is None, err
        deliveries.append((message.partition(), message.offset()))

    for key, value in ROWS.items():
        partition = murmur2(key, PARTITIONS)
        producer.produce(table, value, key, partition=partition, on_delivery=delivered)
    assert producer.flush(SERVER_TIMEOUT) == 0, "the rows were not all delivered"
    offsets: dict[int, int] = {}
    for partition, offset in deliveries:
        offsets[partition] = max(offsets.get(partition, 0), offset + 1)
    return offsets


def serving_line(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """(member id, address) from the ``serving <member id> on <host:port>`` line."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    match = SERVING_LINE.fullmatch(line.strip())
    if match is None:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate(timeout=SERVER_TIMEOUT)
        pytest.fail(f"the view server did not print its serving line: {line!r}\n{stderr}")
    return match[1], match[2]


def wait_serving(target: str, timeout: float) -> None:
    """Polls grpc.health.v1 (which needs no token) until it reports SERVING."""
    deadline = time.monotonic() + timeout
    with open_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass  # not listening yet
            assert time.monotonic() < deadline, f"{target} not SERVING within {timeout}s"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def table_server(goka_brokers: str) -> Iterator[TableServer]:
    """A view server serving a table holding ROWS, requiring TOKEN."""
    manager = goka.TopicManager(goka_brokers)
    table, discovery_topic = unique("clicks-table"), unique("discovery")
    manager.ensure_table(table, PARTITIONS)
    processes = ProcessGroup()
    try:
        offsets = write_rows(goka_brokers, table)
        proc = processes.start(
            "-m", "viewsvc", "serve-view", "--brokers", goka_brokers, "--table", table,
            "--listen", "127.0.0.1:0", "--heartbeat", "0.5", "--partitioner", "murmur2",
            "--value-codec", "bytes", "--token", TOKEN, "--discovery-topic", discovery_topic,
        )  # fmt: skip
        member_id, target = serving_line(proc, SERVER_TIMEOUT)
        wait_serving(target, SERVER_TIMEOUT)
        yield TableServer(target, table, member_id, offsets)
    finally:
        processes.cleanup()
        manager.delete([table, discovery_topic])


def run_client(
    client_dir: Path, target: str, *args: str, token: str | None = TOKEN
) -> subprocess.CompletedProcess[str]:
    options = ["--target", target, *(["--token", token] if token is not None else [])]
    return subprocess.run(
        ["node", "client.js", *options, *args],
        cwd=client_dir,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )


def output_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, f"client failed:\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines()]


def scan(client_dir: Path, server: TableServer, *options: str) -> list[dict[str, Any]]:
    """The output lines of ``scan`` of the server's table with ``options``."""
    return output_lines(run_client(client_dir, server.target, "scan", server.table, *options))


def text(value: bytes) -> str | None:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def expected_entry(key: bytes) -> dict[str, Any]:
    value = ROWS[key]
    return {
        "key": b64(key),
        "key_text": text(key),
        "value": b64(value),
        "text": text(value),
        "partition": murmur2(key, PARTITIONS),
    }


def expected_result(server: TableServer, key: bytes) -> dict[str, Any]:
    partition = murmur2(key, PARTITIONS)
    return {
        "found": True,
        "value": b64(ROWS[key]),
        "text": text(ROWS[key]),
        "partition": partition,
        "offset": str(server.offsets[partition]),
        "served_by": server.member_id,
        "sent_to": server.target,
    }


@pytest.mark.parametrize("key", sorted(ROWS), ids=repr)
def test_get_prints_the_value(node_client: Path, table_server: TableServer, key: bytes) -> None:
    encoding = ["--key-encoding", "hex"] if text(key) is None else []  # UTF-8 keys as text
    written = key.hex() if encoding else key.decode()
    result = run_client(
        node_client, table_server.target, *encoding, "get", table_server.table, written
    )

    assert output_lines(result) == [expected_result(table_server, key)]


def test_keys_can_be_given_in_base64(node_client: Path, table_server: TableServer) -> None:
    key = b"\xffbin\x00key"
    result = run_client(
        node_client, table_server.target, "--key-encoding", "base64", "get", table_server.table,
        b64(key),
    )  # fmt: skip

    assert output_lines(result) == [expected_result(table_server, key)]


def test_get_many_prints_one_result_per_key_in_order(
    node_client: Path, table_server: TableServer
) -> None:
    keys = ["zé".encode(), b"nobody", b"user-01", b"\xffbin\x00key", b"admin"]
    result = run_client(
        node_client, table_server.target, "--key-encoding", "hex", "get-many",
        table_server.table, *(key.hex() for key in keys),
    )  # fmt: skip

    lines = output_lines(result)
    assert [(line["key"], line["key_text"]) for line in lines] == [(b64(k), text(k)) for k in keys]
    for key, line in zip(keys, lines, strict=True):
        answer = {k: v for k, v in line.items() if k not in ("key", "key_text")}
        if key in ROWS:
            assert answer == expected_result(table_server, key)
        else:
            assert (answer["found"], answer["partition"]) == (False, murmur2(key, PARTITIONS))


def test_locate_prints_the_table_the_partition_and_its_holders(
    node_client: Path, table_server: TableServer
) -> None:
    result = run_client(node_client, table_server.target, "locate", table_server.table, "user-01")

    [line] = output_lines(result)
    assert line["table"] == {
        "name": table_server.table,
        "key_codec": "string",
        "value_codec": "bytes",
        "partitioner": "murmur2",
        "partition_count": PARTITIONS,
        "running_partitions": PARTITIONS,
    }
    assert line["partition"] == murmur2(b"user-01", PARTITIONS)
    [replica] = line["replicas"]
    assert (replica["member_id"], replica["role"], replica["state"]) == (
        table_server.member_id,
        "view",
        "running",
    )
    assert replica["endpoint"] and replica["applied_offset"] == str(
        table_server.offsets[line["partition"]]
    )


def test_get_of_a_missing_key_is_not_found_but_no_error(
    node_client: Path, table_server: TableServer
) -> None:
    result = run_client(node_client, table_server.target, "get", table_server.table, "nobody")

    [line] = output_lines(result)
    assert line["found"] is False
    assert (line["value"], line["text"]) == ("", "")
    assert line["partition"] == murmur2(b"nobody", PARTITIONS)


def test_scan_prints_rows_in_key_order_then_the_page_token(
    node_client: Path, table_server: TableServer
) -> None:
    lines = scan(node_client, table_server, "--prefix", "user-")

    expected = [expected_entry(key) for key in sorted(ROWS) if key.startswith(b"user-")]
    assert lines == [*expected, {"next_page_token": ""}]


def test_scan_of_the_whole_table(node_client: Path, table_server: TableServer) -> None:
    lines = scan(node_client, table_server)

    expected = [expected_entry(key) for key in sorted(ROWS)]
    assert lines == [*expected, {"next_page_token": ""}]


def test_scan_pages_with_limit_and_page_token(node_client: Path, table_server: TableServer) -> None:
    keys = [key for key in sorted(ROWS) if key.startswith(b"user-")]

    first = scan(node_client, table_server, "--prefix", "user-", "--limit", "3")
    token = first[-1]["next_page_token"]
    rest = scan(node_client, table_server, "--prefix", "user-", "--page-token", token)

    assert first[:-1] == [expected_entry(key) for key in keys[:3]]
    assert token
    assert rest == [*(expected_entry(key) for key in keys[3:]), {"next_page_token": ""}]


@pytest.mark.parametrize("command", [["get", "no-such-table", "k"], ["scan", "no-such-table"]])
def test_unknown_table_exits_non_zero_with_not_found(
    node_client: Path, table_server: TableServer, command: list[str]
) -> None:
    result = run_client(node_client, table_server.target, *command)

    assert result.returncode == 1
    assert result.stderr.startswith("NOT_FOUND: "), result.stderr
    assert "no-such-table" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("token", [None, "wrong"])
def test_the_token_is_sent_as_bearer_metadata(
    node_client: Path, table_server: TableServer, token: str | None
) -> None:
    result = run_client(
        node_client, table_server.target, "get", table_server.table, "admin", token=token
    )

    assert result.returncode == 1
    assert result.stderr.startswith("UNAUTHENTICATED: "), result.stderr


def test_unreachable_server_fails_within_the_deadline(node_client: Path) -> None:
    # nothing listens on port 1; the client gives up at its deadline or on connection refused
    result = run_client(
        node_client, "127.0.0.1:1", "--deadline-ms", "2000", "get", "some-table", "k"
    )

    assert result.returncode == 1
    assert result.stderr.startswith(("UNAVAILABLE: ", "DEADLINE_EXCEEDED: ")), result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["get", "t"],
        ["get-many", "t"],
        ["locate", "t", "k", "k2"],
        ["scan", "t", "--limit", "-1"],
        ["put", "t", "k"],
        ["--bogus"],
        ["--key-encoding", "rot13", "get", "t", "k"],
        ["--key-encoding", "hex", "get", "t", "zz"],
        ["--key-encoding", "base64", "get", "t", "a"],
    ],
)
def test_usage_errors_exit_with_2(
    node_client: Path, table_server: TableServer, args: list[str]
) -> None:
    result = run_client(node_client, table_server.target, *args)

    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_watch_from_offsets_prints_every_change_once_then_the_positions(
    node_client: Path, table_server: TableServer
) -> None:
    froms = [arg for p in range(PARTITIONS) for arg in ("--from", f"{p}=0")]
    result = run_client(
        node_client, table_server.target, "watch", table_server.table, *froms,
        "--max-changes", str(len(ROWS)), "--deadline-ms", "20000",
    )  # fmt: skip
    *changes, last = output_lines(result)
    assert sorted((c["key"], c["value"], c["partition"]) for c in changes) == sorted(
        (b64(k), b64(v), murmur2(k, PARTITIONS)) for k, v in ROWS.items()
    )
    assert all(not c["deleted"] and not c["snapshot"] for c in changes)
    for partition in range(PARTITIONS):
        offsets = [int(c["offset"]) for c in changes if c["partition"] == partition]
        assert offsets == list(range(table_server.offsets.get(partition, 0))), partition
    assert last == {"positions": {str(p): o for p, o in table_server.offsets.items()}}


def test_watch_options_belong_to_watch(node_client: Path, table_server: TableServer) -> None:
    result = run_client(node_client, table_server.target, "get", table_server.table, "k",
                        "--from", "0=1")  # fmt: skip
    assert result.returncode == 2
    assert "--from, --snapshot and --max-changes are options of watch" in result.stderr
