"""The web monitor's HTTP API over a fake node (no Kafka): what it answers, the token, and
that it is read-only and tells clients nothing internal."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from goka.errors import ReadError
from tests.unit.viewsvc.table_servers import META, PARTITIONS, TABLE, FakeTable, held
from viewsvc.v1 import table_pb2 as pb
from viewsvc.web.monitor import Monitor, NodeSource

TOKEN = "monitor-token"


def get(table: str, key: bytes) -> pb.GetResponse:
    if table != TABLE:
        raise ReadError(grpc.StatusCode.NOT_FOUND, f"table {table!r} is not served")
    if key == b"boom":
        raise RuntimeError("secret internals")
    return pb.GetResponse(found=True, value=b"42", partition=1, offset=7, served_by="a", key=key)


def start(token: str | None = None) -> Monitor:
    table = FakeTable([held(p) for p in range(PARTITIONS)])
    source = NodeSource(
        "a", "processor", lambda: [table], lambda: [], lambda: True, get,
        lambda: {"group": "clicks", "partitions": {}}, token,
    )  # fmt: skip
    return Monitor(source, 0, "127.0.0.1").start()


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    node = start()
    yield node
    node.stop()


def fetch(monitor: Monitor, path: str, **headers: str) -> tuple[int, Any, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{monitor.port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            status, message = response.status, response.headers
    except urllib.error.HTTPError as error:
        with error:
            body, status, message = error.read(), error.code, error.headers
    is_json = message.get("Content-Type") == "application/json"
    return status, json.loads(body) if is_json else body.decode(), message


def test_the_node_api_lists_its_partitions_and_stats(monitor: Monitor) -> None:
    status, node, _ = fetch(monitor, "/api/node")
    assert status == 200
    assert (node["member_id"], node["role"], node["serving"]) == ("a", "processor", True)
    (table,) = node["tables"]
    assert table["name"] == TABLE and table["value_codec"] == META.value_codec
    assert [p["partition"] for p in table["partitions"]] == [0, 1, 2, 3]
    assert node["processor"] == {"group": "clicks", "partitions": {}}


def test_a_query_answers_as_get_decoded_with_the_tables_codec(monitor: Monitor) -> None:
    status, answer, _ = fetch(monitor, f"/api/get?table={TABLE}&key=%3Cscript%3E")
    assert status == 200
    assert answer == {
        "table": TABLE, "key": "<script>", "found": True, "value": 42, "value_base64": "NDI=",
        "value_codec": "int64", "partition": 1, "offset": 7, "served_by": "a",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/get?table=nope&key=k", 404, "NOT_FOUND"),
        ("/api/get?table=" + TABLE, 400, "pass ?table="),
        (f"/api/get?table={TABLE}&key=boom", 500, "internal error (in the node's log)"),
        ("/api/nothing", 404, "no API /api/nothing"),
        ("/nothing", 404, "try / or /query"),
    ],
)
def test_errors_name_the_problem_and_nothing_internal(
    monitor: Monitor, path: str, status: int, says: str
) -> None:
    got, body, _ = fetch(monitor, path)
    assert got == status
    assert says in body["error"] and "secret" not in body["error"]


def test_pages_are_static_and_locked_down(monitor: Monitor) -> None:
    for path, marker in (
        ("/", "goka monitor"),
        ("/query", "goka query"),
        ("/monitor.js", "refresh"),
    ):
        status, body, headers = fetch(monitor, path)
        assert status == 200 and marker in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
    for page in ("monitor.js", "query.js", "common.js"):
        _, script, _ = fetch(monitor, f"/{page}")
        assert "innerHTML" not in script  # values are set as text, never parsed as markup
    request = urllib.request.Request(f"http://127.0.0.1:{monitor.port}/api/node", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    with refused.value:
        assert refused.value.code == 405


def test_with_a_token_the_api_needs_it_and_the_pages_stay_open() -> None:
    node = start(TOKEN)
    try:
        assert fetch(node, "/api/node")[0] == 401
        assert fetch(node, "/api/node", Authorization="Bearer wrong")[0] == 401
        assert fetch(node, "/api/node", Authorization=f"Bearer {TOKEN}")[0] == 200
        assert fetch(node, "/")[0] == 200
    finally:
        node.stop()
