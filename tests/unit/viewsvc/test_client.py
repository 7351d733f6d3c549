"""The smart client against real gRPC servers on 127.0.0.1 (fake nodes, no Kafka): routing
straight to holders, failover, GetMany grouping, scans, locate, errors and arguments."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from discovery import MemberInfo
from discovery.model import from_announcement
from goka.errors import ConfigError
from tests.unit.viewsvc.fake_nodes import (
    PARTITIONS,
    TABLE,
    Cluster,
    FakeNode,
    Held,
    announcement,
    key_in,
)
from viewsvc import Client
from viewsvc.client import ReadError
from viewsvc.client.routing import holders
from viewsvc.wire.read_options import ReadOptions

ALL = range(PARTITIONS)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as c:
        yield c


@pytest.fixture
def client_factory() -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def create(*targets: FakeNode, ready: bool = True, **kw: Any) -> Client:
        client = Client([t.endpoint for t in targets], timeout=5, **kw)
        clients.append(client)
        if ready:
            assert client.wait_ready(30)  # generous: the machine may be busy
        return client

    yield create
    for client in clients:
        client.close()


def table_calls(*nodes: FakeNode) -> list[int]:
    return [
        sum(v for k, v in n.calls.items() if k not in ("WatchMembers", "Members")) for n in nodes
    ]


def test_get_goes_straight_to_the_holder(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(0), Held(1)])
    b = cluster.add("b", [Held(2), Held(3)])
    cluster.data[key_in(2)] = b"7"
    client = client_factory(a)

    result = client.get(TABLE, key_in(2).decode())

    assert result.found and result.value == b"7" and result.partition == 2
    assert result.served_by == "b" and result.key == key_in(2) and result.offset == 10
    assert (a.calls["Get"], b.calls["Get"]) == (0, 1)
    assert client.get(TABLE, key_in(0)).served_by == "a"
    assert (a.calls["Get"], b.calls["Get"]) == (1, 1)


def test_missing_key_is_not_found_without_error(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    result = client_factory(a).get(TABLE, b"nobody")
    assert not result.found and result.value == b""


def test_get_many_sends_one_request_per_holder_in_request_order(
    cluster: Cluster, client_factory: Any
) -> None:
    a = cluster.add("a", [Held(0), Held(1)])
    b = cluster.add("b", [Held(2), Held(3)])
    keys = [key_in(3), key_in(0), key_in(2, "x"), key_in(1), b"missing"]
    for i, key in enumerate(keys[:4]):
        cluster.data[key] = str(i).encode()

    results = client_factory(a).get_many(TABLE, keys)

    assert [r.key for r in results] == keys
    assert [r.value for r in results] == [b"0", b"1", b"2", b"3", b""]
    assert [r.served_by for r in results[:4]] == ["b", "a", "b", "a"]
    assert (a.calls["GetMany"], b.calls["GetMany"]) == (1, 1)
    assert sorted(a.requests[0].keys) == sorted([keys[1], keys[3], *(
        [keys[4]] if results[4].served_by == "a" else []
    )])  # fmt: skip
    assert client_factory(a).get_many(TABLE, []) == []


def test_unreachable_holder_falls_back_to_the_standby(
    cluster: Cluster, client_factory: Any
) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    b = cluster.add("b", [Held(p, kind="standby") for p in ALL])
    cluster.data[b"k"] = b"1"
    client = client_factory(b)
    assert client.get(TABLE, b"k").served_by == "a"  # the active owner first (same lag)

    a.stop()

    assert client.get(TABLE, b"k").served_by == "b"
    assert [r.served_by for r in client.get_many(TABLE, [b"k", key_in(1)])] == ["b", "b"]


def test_unavailable_answer_tries_the_next_holder(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    b = cluster.add("b", [Held(p, kind="standby") for p in ALL])
    client = client_factory(b)
    a.unavailable = True

    assert client.get(TABLE, b"k").served_by == "b"
    assert [r.served_by for r in client.get_many(TABLE, [b"k", b"j"])] == ["b", "b"]
    assert (a.calls["Get"], a.calls["GetMany"], b.calls["GetMany"]) == (1, 1, 1)


def test_consistency_active_reads_only_the_active_owner(
    cluster: Cluster, client_factory: Any
) -> None:
    cluster.add("a", [Held(p, lag=3) for p in ALL])
    b = cluster.add("b", [Held(p, kind="replica", lag=1) for p in ALL], role="view")
    client = client_factory(b)

    assert client.get(TABLE, b"k").served_by == "b"  # any: the least lag first
    assert client.get(TABLE, b"k", consistency="active").served_by == "a"
    assert client.get(TABLE, b"k", max_lag=2).served_by == "b"
    assert client.get(TABLE, b"k", min_offsets={0: 1}, min_offsets_topic="clicks").served_by == "a"


def test_a_partition_nobody_holds_goes_to_a_target_which_forwards(
    cluster: Cluster, client_factory: Any
) -> None:
    a = cluster.add("a", [Held(0)])
    b = cluster.add("b", [Held(1, state="recovering")])
    client = client_factory(b)

    client.get(TABLE, key_in(3))
    client.get(TABLE, key_in(1))  # held, but recovering

    assert table_calls(a, b) == [0, 2]


def test_unknown_table_is_the_servers_not_found(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    with pytest.raises(ReadError) as caught:
        client_factory(a).get("nope", b"k")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert "unknown table 'nope'" in str(caught.value)
    assert caught.value.details == "unknown table 'nope'"


def test_deadline_bounds_the_read(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    a.delay = 1.0
    with pytest.raises(ReadError) as caught:
        client_factory(a).get(TABLE, b"k", timeout=0.2)
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_scan_streams_rows_and_pages(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    cluster.data.update({b"u-3": b"3", b"u-1": b"1", b"u-2": b"2", b"v-1": b"9", b"u-4": b"4"})
    client = client_factory(a)

    first = client.scan(TABLE, prefix="u-", limit=3)
    assert [(e.key, e.value) for e in first] == [(b"u-1", b"1"), (b"u-2", b"2"), (b"u-3", b"3")]
    assert first.next_page_token
    assert [s.partition for s in first.sources] == list(ALL)
    assert first.sources[0].served_by == "a"

    rest = client.scan(TABLE, prefix="u-", limit=3, page_token=first.next_page_token)
    assert [e.key for e in rest] == [b"u-4"]
    assert rest.next_page_token == ""

    ranged = client.scan(TABLE, start=b"u-2", end="v", partitions=[1, 0])
    assert [e.key for e in ranged] == [b"u-2", b"u-3", b"u-4"]
    assert list(a.requests[-1].partitions) == [0, 1]


def test_scan_is_sent_when_iterated_and_can_be_closed(
    cluster: Cluster, client_factory: Any
) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    cluster.data.update({b"a": b"1", b"b": b"2", b"c": b"3"})
    rows = client_factory(a).scan(TABLE)
    assert a.calls["Scan"] == 0
    with rows:
        assert next(rows).key == b"a"
    assert a.calls["Scan"] == 1
    with pytest.raises(StopIteration):
        next(rows)


def test_a_broken_scan_resumes_on_another_node(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    b = cluster.add("b", [Held(p, kind="standby") for p in ALL])
    cluster.data.update({f"k-{i:02d}".encode(): str(i).encode() for i in range(9)})
    a.break_scans_after = b.break_scans_after = 2  # each stream dies after 2 batches of 2
    client = client_factory(a)

    rows = client.scan(TABLE)
    assert [e.key for e in rows] == [f"k-{i:02d}".encode() for i in range(9)]
    assert rows.resumed == 2  # rows 0-3 from one node, 4-7 from the other, 8 from the first
    assert rows.next_page_token == ""
    assert a.calls["Scan"] + b.calls["Scan"] == 3

    page = client.scan(TABLE, limit=6)  # a page resumes with the rows it still lacks
    assert [e.key for e in page] == [f"k-{i:02d}".encode() for i in range(6)]
    assert page.resumed == 1
    assert [e.key for e in client.scan(TABLE, page_token=page.next_page_token)] == [
        f"k-{i:02d}".encode() for i in range(6, 9)
    ]


def test_a_scan_no_node_can_start_fails_unavailable(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    cluster.data.update({b"a": b"1", b"b": b"2"})
    a.break_scans_after = 0
    with pytest.raises(ReadError) as caught:
        list(client_factory(a).scan(TABLE))
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert a.calls["Scan"] == 1


def test_a_closed_scan_is_not_resumed(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    cluster.data.update({f"k-{i}".encode(): b"v" for i in range(6)})
    rows = client_factory(a).scan(TABLE)
    assert next(rows).key == b"k-0"
    rows.close()
    with pytest.raises(StopIteration):
        next(rows)
    assert (a.calls["Scan"], rows.resumed) == (1, 0)


def test_scan_of_an_unknown_table_raises_on_iteration(
    cluster: Cluster, client_factory: Any
) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    with pytest.raises(ReadError) as caught:
        list(client_factory(a).scan("nope"))
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


def test_locate_is_computed_from_the_membership(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    b = cluster.add("b", [Held(2, kind="standby", lag=4)])
    location = client_factory(a).locate(TABLE, key_in(2))
    assert (location.table, location.partition) == (TABLE, 2)
    assert [(o.member_id, o.endpoint, o.kind) for o in location.owners] == [
        ("a", a.endpoint, "active"),
        ("b", b.endpoint, "standby"),
    ]
    assert table_calls(a, b) == [0, 0]


def test_locate_asks_a_node_when_the_membership_lacks_the_table(
    cluster: Cluster, client_factory: Any
) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    cluster.hide_members = True
    client = client_factory(a)
    location = client.locate(TABLE, key_in(1))
    assert location.partition == 1
    assert [(o.member_id, o.generation) for o in location.owners] == [("a", -1)]
    assert a.calls["Locate"] == 1
    with pytest.raises(ReadError) as caught:
        client.locate("nope", b"k")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


def test_list_tables_and_members(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    client = client_factory(a)
    [table] = client.list_tables()
    assert (table.name, table.value_codec, table.partition_count) == (TABLE, "int64", PARTITIONS)
    assert [m.member_id for m in client.members()] == ["a"]


def test_token_is_sent_as_bearer_metadata(cluster: Cluster, client_factory: Any) -> None:
    a = cluster.add("a", [Held(p) for p in ALL], token="s3cret")
    client = client_factory(a, token="s3cret")
    client.get(TABLE, b"k")
    client.get_many(TABLE, [b"k"])
    list(client.scan(TABLE))
    for metadata in a.metadata:
        assert metadata["authorization"] == "Bearer s3cret"
        assert "x-goka-forwarded-by" not in metadata

    anonymous = client_factory(a, ready=False)
    with pytest.raises(ReadError) as caught:
        anonymous.get(TABLE, b"k")
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "--token" in str(caught.value)


def test_watch_moves_to_the_next_target_when_its_stream_breaks(
    cluster: Cluster, client_factory: Any
) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    b = cluster.add("b", [Held(p, kind="standby") for p in ALL])
    client = client_factory(a, b)
    a.stop()
    cluster.add("c", [])
    deadline = time.monotonic() + 10
    while [m.member_id for m in client.members()] != ["a", "b", "c"]:
        assert time.monotonic() < deadline, client.members()
        time.sleep(0.05)
    assert b.calls["WatchMembers"] >= 1


def test_reads_before_the_membership_go_to_a_target(cluster: Cluster) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    with Client(a.endpoint, timeout=5) as client:
        assert client.get(TABLE, b"k").served_by == "a"


def test_no_node_at_all_is_unavailable_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match="targets"):
        Client()
    with Client("127.0.0.1:1", timeout=2) as client:
        with pytest.raises(ReadError) as caught:
            client.get(TABLE, b"k")
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        assert "127.0.0.1:1" in str(caught.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.get("", b"k"), "table must be a non-empty"),
        (lambda c: c.get(TABLE, b"k", consistency="latest"), "consistency must be"),
        (lambda c: c.get(TABLE, b"k", max_lag=-1), "max_lag must be an int >= 0"),
        (lambda c: c.get(TABLE, b"k", max_lag=True), "max_lag must be an int >= 0"),
        (lambda c: c.get(TABLE, 42), "keys must be bytes or str"),
        (lambda c: c.get(TABLE, b"k", timeout=0), "timeout must be"),
        (lambda c: c.get(TABLE, b"k", min_offsets={0: -1}), "min_offsets maps partitions"),
        (lambda c: c.get_many(TABLE, [b"k", None]), "keys must be bytes or str"),
        (lambda c: c.get_many(TABLE, [b"k"], consistency="x"), "consistency must be"),
        (lambda c: c.scan(TABLE, limit=-1), "limit must be"),
        (lambda c: c.scan(TABLE, partitions=[-1]), "partitions must be"),
        (lambda c: c.scan(TABLE, max_lag=-3), "max_lag must be"),
        (lambda c: c.locate("", b"k"), "table must be"),
    ],
)
def test_bad_arguments_are_refused_before_any_call(
    cluster: Cluster, client_factory: Any, call: Callable[[Client], object], message: str
) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    client = client_factory(a)
    with pytest.raises(ConfigError, match=message):
        call(client)
    assert table_calls(a) == [0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ca_file": "ca.pem"}, "pass tls=True"),
        ({"tls": True, "cert_file": "c.pem"}, "both cert_file and key_file"),
        ({"tls": True, "ca_file": "/nonexistent/ca.pem"}, "cannot read ca_file"),
        ({"token": ""}, "token must be non-empty"),
        ({"timeout": -1}, "timeout must be"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Client("127.0.0.1:1", **kwargs)


def test_a_closed_client_says_so(cluster: Cluster) -> None:
    a = cluster.add("a", [Held(p) for p in ALL])
    client = Client(a.endpoint, timeout=5)
    client.close()
    with pytest.raises(ConfigError, match="closed"):
        client.get(TABLE, b"k")


def member(member_id: str, endpoint: str, *held: Held) -> MemberInfo:
    return from_announcement(announcement(member_id, endpoint, list(held)), None, datetime.now(UTC))


def test_holders_order_and_filters() -> None:
    members = [
        member("active", "h-a:1", Held(0, lag=5)),
        member("fresh", "h-f:1", Held(0, kind="replica", lag=1)),
        member("unknown", "h-u:1", Held(0, kind="replica", lag=-1)),
        member("recovering", "h-r:1", Held(0, kind="replica", state="recovering")),
        member("no-endpoint", "", Held(0, kind="replica", lag=0)),
        member("tie", "h-t:1", Held(0, kind="standby", lag=5)),
    ]

    def route(consistency: str = "any", max_lag: int = 0) -> list[str]:
        return holders(
            members, TABLE, 0, ReadOptions.from_arguments(consistency, max_lag, None, "")
        )

    assert route() == ["h-f:1", "h-a:1", "h-t:1", "h-u:1"]
    assert route(max_lag=5) == ["h-f:1", "h-a:1", "h-t:1"]
    assert route(max_lag=2) == ["h-f:1"]
    assert route("active") == ["h-a:1"]
    assert route("active", max_lag=2) == []
    assert holders(members, TABLE, 1, ReadOptions()) == []


def _openssl(command: str, cwd: Path) -> None:
    subprocess.run(["openssl", *command.split()], cwd=cwd, check=True, capture_output=True,
                   timeout=60)  # fmt: skip


def test_mutual_tls_with_token(cluster: Cluster, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the TLS test needs the `openssl` command to make certificates")
    _openssl("req -x509 -newkey rsa:2048 -nodes -subj /CN=test-ca -days 2 -keyout ca.key "
             "-out ca.crt", tmp_path)  # fmt: skip
    for name, ext in [("server", "subjectAltName=DNS:localhost"), ("client", "")]:
        (tmp_path / f"{name}.ext").write_text(f"{ext or 'extendedKeyUsage=clientAuth'}\n")
        _openssl(f"req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {name}.key "
                 f"-out {name}.csr", tmp_path)  # fmt: skip
        _openssl(f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
                 f"-extfile {name}.ext -out {name}.crt", tmp_path)  # fmt: skip
    server_credentials = grpc.ssl_server_credentials(
        [((tmp_path / "server.key").read_bytes(), (tmp_path / "server.crt").read_bytes())],
        root_certificates=(tmp_path / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    a = cluster.add("a", [Held(p) for p in ALL], token="s3cret", credentials=server_credentials)
    files = {name: str(tmp_path / name) for name in ("ca.crt", "client.crt", "client.key")}
    with Client(
        a.endpoint,
        tls=True,
        ca_file=files["ca.crt"],
        cert_file=files["client.crt"],
        key_file=files["client.key"],
        token="s3cret",
        timeout=5,
    ) as client:
        assert client.wait_ready(30)
        assert client.get(TABLE, b"k").served_by == "a"
    assert a.metadata[-1]["authorization"] == "Bearer s3cret"
    with Client(a.endpoint, tls=True, ca_file=files["ca.crt"], timeout=2) as anonymous:
        with pytest.raises(ReadError) as caught:
            anonymous.get(TABLE, b"k")
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE  # no client certificate
