"""The Go and Java clients (clients/go, clients/java) against a live deployment, every node
an OS process: three click-count processors serving, a view pod and a router.

- ``go test -run TestLive`` reads the whole table through Get (ACTIVE and ANY), GetMany, Scan
  (whole, and in pages of 7) and Locate, compares every answer with the table, and checks
  that each read was served by the node it was sent to (no forwarding hop: no holder's
  ``viewsvc_forwarded_requests_total`` moves);
- ``mvn test -Dtest=LiveTableClientTest`` reads it through the router with Get, GetMany and
  Scan and compares every answer with the table;
- the Node.js client (examples/node_client), given the router, reads every key with
  ``get-many`` and ``get``, each straight from a holder (``sent_to`` is the member that
  ``served_by`` names, never the router, and no holder forwards one).

Their unit tests (against testdata/vectors.json) run in tests/unit/test_go_code.py,
tests/unit/test_java_code.py and tests/unit/test_node_code.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import goka
from goka import codec
from tests.conftest import ROOT, ProcessGroup
from tests.support.serving import Deployment, wait_until
from tests.support.tools import require_tools
from viewsvc.client import Client, ReadError

pytestmark = [pytest.mark.broker, pytest.mark.slow]

GO_CLIENT = ROOT / "clients" / "go"
JAVA_CLIENT = ROOT / "clients" / "java"
PARTITIONS = 6
CLICKS = {f"user-{i:02d}": i % 4 + 1 for i in range(60)}
TIMEOUT = 120.0
BUILD_TIMEOUT = 600.0
"""The first run downloads and builds gRPC and protobuf."""


@pytest.fixture(scope="module")
def deployment(goka_brokers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("go-client")
    deployment = Deployment(goka_brokers, ProcessGroup(), root, partitions=PARTITIONS)
    try:
        deployment.start_processors(3, metrics=True)
        with goka.Emitter(goka_brokers, deployment.topic, codec.String()) as emitter:
            for key, clicks in CLICKS.items():
                for _ in range(clicks):
                    emitter.emit(key, "click")
        wait_until(lambda: len(deployment.active_owners()) == PARTITIONS, TIMEOUT,
                   "the processors to run every partition")  # fmt: skip
        deployment.start_view_and_router(metrics=True)
        deployment.wait_settled(TIMEOUT)
        with Client([n.endpoint for n in deployment.nodes.values()], timeout=5.0) as client:
            assert client.wait_ready(TIMEOUT)
            wait_until(lambda: counted(client, deployment.table), TIMEOUT, "every click counted")
        yield deployment
    finally:
        deployment.close()
        shutil.rmtree(root, ignore_errors=True)


def forwarded(deployment: Deployment) -> dict[str, float]:
    """Per holder (processors and the view pod), the calls it forwarded to another member."""
    return {
        name: sum(
            value
            for (sample, _), value in deployment.metrics_of(name).items()
            if sample == "viewsvc_forwarded_requests_total"
        )
        for name in deployment.metrics_ports
    }


@pytest.fixture
def no_hop(deployment: Deployment) -> Iterator[None]:
    """The test's reads all went straight to a holder: no holder forwarded one."""
    before = forwarded(deployment)
    assert set(before) == {"processor-0", "processor-1", "processor-2", "view"}
    yield
    assert forwarded(deployment) == before


def counted(client: Client, table: str) -> bool:
    try:
        for consistency in ("active", "any"):
            results = client.get_many(table, list(CLICKS), consistency=consistency)
            if {r.key.decode(): int(r.value) for r in results if r.found} != CLICKS:
                return False
    except ReadError:
        return False
    return True


@pytest.fixture
def live_env(deployment: Deployment, tmp_path: Path) -> dict[str, str]:
    """The GOKA_LIVE_* variables the clients' live tests read: the router and the view pod
    to start from, the table, and a JSON file of the whole table."""
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({key: str(count) for key, count in CLICKS.items()}))
    targets = [deployment.nodes["router"].endpoint, deployment.nodes["view"].endpoint]
    return {
        **os.environ,
        "GOKA_LIVE_TARGETS": ",".join(targets),
        "GOKA_LIVE_TABLE": deployment.table,
        "GOKA_LIVE_EXPECTED": str(expected),
    }


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    return done.stdout


def test_the_go_client_reads_the_whole_table_without_a_hop(
    live_env: dict[str, str], no_hop: None
) -> None:
    require_tools("go", install="Go 1.26+ (https://go.dev/dl/) to build clients/go")
    out = run(["go", "test", "-count=1", "-run", "^TestLive$", "-v", "./viewsvc"], GO_CLIENT,
              live_env)  # fmt: skip
    assert "--- PASS: TestLive" in out and "SKIP" not in out, out


def test_the_java_client_reads_the_whole_table(live_env: dict[str, str]) -> None:
    require_tools("java", "mvn", install="Java 17+ and Maven to build clients/java")
    run(["mvn", "-q", "-B", "test", "-Dtest=LiveTableClientTest"], JAVA_CLIENT, live_env)
    reports = JAVA_CLIENT / "target" / "surefire-reports"
    summary = (reports / "io.goka.client.LiveTableClientTest.txt").read_text()
    assert "Tests run: 1, Failures: 0, Errors: 0, Skipped: 0" in summary, summary


def test_the_node_client_reads_straight_from_holders(
    deployment: Deployment, node_client: Path, no_hop: None
) -> None:
    router = deployment.nodes["router"].endpoint
    member_at = {m.endpoint: m.member_id for m in deployment.membership.members()}
    keys = sorted(CLICKS)
    many = run(["node", "client.js", "--target", router, "get-many", deployment.table, *keys],
               node_client, dict(os.environ))  # fmt: skip
    one = run(["node", "client.js", "--target", router, "--consistency", "active", "get",
               deployment.table, keys[0]], node_client, dict(os.environ))  # fmt: skip
    answers = [json.loads(line) for line in (many + one).splitlines()]
    assert [a.get("key_text", keys[0]) for a in answers] == [*keys, keys[0]]
    for answer in answers:
        key = answer.get("key_text", keys[0])
        assert (answer["found"], answer["text"]) == (True, str(CLICKS[key])), answer
        assert answer["sent_to"] != router and answer["served_by"] == member_at[answer["sent_to"]]
