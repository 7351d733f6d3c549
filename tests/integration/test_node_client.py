"""The Node.js example client (examples/node_client) against a TableService over real gRPC.

``table_server`` is the one place that starts the server: for now an in-process fake serving
ROWS of TABLE and requiring TOKEN; it is to be replaced by the real viewsvc server loaded with
the same rows and token. The tests compare the client's JSON with ROWS, so they hold for both;
only OFFSET and SERVED_BY are the fake's.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from goka.partitioner import murmur2
from tests.conftest import ROOT
from viewsvc.v1 import table_pb2, table_pb2_grpc

CLIENT_DIR = ROOT / "examples" / "node_client"
NPM_TIMEOUT = 240.0  # first install downloads; under pytest-timeout (300 s) so npm output shows
CLIENT_TIMEOUT = 60.0  # bound of one client run; only reached when something is wrong

TABLE = "clicks-table"
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
}
OFFSET = 100  # the fake's applied offset of partition p is OFFSET + p
SERVED_BY = "fake-member-1"


class FakeTableService(table_pb2_grpc.TableServiceServicer):
    """Get and Scan over in-memory tables, the rules of table.proto, a required bearer token.

    Scans stream two rows per message; a page token is the base64 of the last row's key.
    """

    def __init__(self, tables: Mapping[str, Mapping[bytes, bytes]], token: str) -> None:
        self._tables = tables
        self._token = token

    def _rows(self, table: str, context: grpc.ServicerContext) -> Mapping[bytes, bytes]:
        if ("authorization", f"Bearer {self._token}") not in context.invocation_metadata():
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if table not in self._tables:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown table {table!r}")
        return self._tables[table]

    def Get(  # noqa: N802 - the gRPC method name
        self, request: table_pb2.GetRequest, context: grpc.ServicerContext
    ) -> table_pb2.GetResponse:
        rows = self._rows(request.table, context)
        partition = murmur2(request.key, PARTITIONS)
        return table_pb2.GetResponse(
            found=request.key in rows,
            value=rows.get(request.key, b""),
            partition=partition,
            offset=OFFSET + partition,
            served_by=SERVED_BY,
            key=request.key,
        )

    def Scan(  # noqa: N802 - the gRPC method name
        self, request: table_pb2.ScanRequest, context: grpc.ServicerContext
    ) -> Iterator[table_pb2.ScanResponse]:
        rows = self._rows(request.table, context)
        after = base64.b64decode(request.page_token) if request.page_token else None
        keys = [
            key
            for key in sorted(rows)
            if key.startswith(request.prefix)
            and key >= request.start
            and (not request.end or key < request.end)
            and (after is None or key > after)
        ]
        page = keys[: request.limit] if request.limit else keys
        token = base64.b64encode(page[-1]).decode() if len(page) < len(keys) else ""
        batches = [page[i : i + 2] for i in range(0, len(page), 2)] or [[]]
        for i, batch in enumerate(batches):
            yield table_pb2.ScanResponse(
                entries=[
                    table_pb2.Entry(key=k, value=rows[k], partition=murmur2(k, PARTITIONS))
                    for k in batch
                ],
                next_page_token=token if i == len(batches) - 1 else "",
            )


@pytest.fixture(scope="module")
def table_server() -> Iterator[str]:
    """host:port of a TableService serving ROWS as TABLE, requiring TOKEN."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    servicer = FakeTableService({TABLE: ROWS}, TOKEN)
    table_pb2_grpc.add_TableServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None).wait()


@pytest.fixture(scope="session")
def node_client() -> Path:
    """The client's directory, with its npm dependencies installed (``npm ci``) if needed."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"node is not installed: {' and '.join(missing)} not found on PATH")
    installed = CLIENT_DIR / "node_modules" / ".package-lock.json"  # written by npm ci
    lockfile = CLIENT_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime:
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=CLIENT_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {CLIENT_DIR}:\n{result.stdout}\n{result.stderr}")
    return CLIENT_DIR


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


@pytest.mark.parametrize("key", sorted(ROWS), ids=repr)
def test_get_prints_the_value(node_client: Path, table_server: str, key: bytes) -> None:
    result = run_client(node_client, table_server, "get", TABLE, key.decode())

    partition = murmur2(key, PARTITIONS)
    assert output_lines(result) == [
        {
            "found": True,
            "value": b64(ROWS[key]),
            "text": text(ROWS[key]),
            "partition": partition,
            "offset": str(OFFSET + partition),
            "served_by": SERVED_BY,
        }
    ]


def test_get_of_a_missing_key_is_not_found_but_no_error(
    node_client: Path, table_server: str
) -> None:
    result = run_client(node_client, table_server, "get", TABLE, "nobody")

    [line] = output_lines(result)
    assert line["found"] is False
    assert (line["value"], line["text"]) == ("", "")
    assert line["partition"] == murmur2(b"nobody", PARTITIONS)


def test_scan_prints_rows_in_key_order_then_the_page_token(
    node_client: Path, table_server: str
) -> None:
    result = run_client(node_client, table_server, "scan", TABLE, "--prefix", "user-")

    expected = [expected_entry(key) for key in sorted(ROWS) if key.startswith(b"user-")]
    assert output_lines(result) == [*expected, {"next_page_token": ""}]


def test_scan_of_the_whole_table(node_client: Path, table_server: str) -> None:
    result = run_client(node_client, table_server, "scan", TABLE)

    expected = [expected_entry(key) for key in sorted(ROWS)]
    assert output_lines(result) == [*expected, {"next_page_token": ""}]


def test_scan_pages_with_limit_and_page_token(node_client: Path, table_server: str) -> None:
    keys = [key for key in sorted(ROWS) if key.startswith(b"user-")]

    first = output_lines(
        run_client(node_client, table_server, "scan", TABLE, "--prefix", "user-", "--limit", "3")
    )
    token = first[-1]["next_page_token"]
    rest = output_lines(
        run_client(
            node_client, table_server, "scan", TABLE, "--prefix", "user-", "--page-token", token
        )
    )

    assert first[:-1] == [expected_entry(key) for key in keys[:3]]
    assert token
    assert rest == [*(expected_entry(key) for key in keys[3:]), {"next_page_token": ""}]


@pytest.mark.parametrize("command", [["get", "no-such-table", "k"], ["scan", "no-such-table"]])
def test_unknown_table_exits_non_zero_with_not_found(
    node_client: Path, table_server: str, command: list[str]
) -> None:
    result = run_client(node_client, table_server, *command)

    assert result.returncode == 1
    assert result.stderr.startswith("NOT_FOUND: "), result.stderr
    assert "no-such-table" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("token", [None, "wrong"])
def test_the_token_is_sent_as_bearer_metadata(
    node_client: Path, table_server: str, token: str | None
) -> None:
    result = run_client(node_client, table_server, "get", TABLE, "admin", token=token)

    assert result.returncode == 1
    assert result.stderr.startswith("UNAUTHENTICATED: "), result.stderr


def test_unreachable_server_fails_within_the_deadline(node_client: Path) -> None:
    # nothing listens on port 1; the client gives up at its deadline or on connection refused
    result = run_client(node_client, "127.0.0.1:1", "--deadline-ms", "2000", "get", TABLE, "k")

    assert result.returncode == 1
    assert result.stderr.startswith(("UNAVAILABLE: ", "DEADLINE_EXCEEDED: ")), result.stderr


@pytest.mark.parametrize(
    "args",
    [["get", TABLE], ["scan", TABLE, "--limit", "-1"], ["put", TABLE, "k"], ["--bogus"]],
)
def test_usage_errors_exit_with_2(node_client: Path, table_server: str, args: list[str]) -> None:
    result = run_client(node_client, table_server, *args)

    assert result.returncode == 2
    assert "usage:" in result.stderr
