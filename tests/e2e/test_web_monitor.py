"""The web monitor and query page of a live 3-member cluster, in headless Chromium (Debian's
``chromium``, driven by Playwright): the monitor lists every partition with its owner and
lags that change while input flows; the query page answers a key of each partition as gRPC
does; a hostile key is shown as text. Screenshots go to test-artifacts/web-monitor/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import goka
from goka import codec
from goka.partitioner import get_partitioner
from tests.conftest import ProcessGroup
from tests.support.serving import Deployment, free_port, wait_until
from tests.support.tools import require_tools
from viewsvc.client import Client

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 6
BOUND = 90.0
HOSTILE = "<script>window.hacked=1</script><img src=x onerror=window.hacked=2>"
ARTIFACTS = Path(
    os.environ.get("GOKA_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)


@pytest.fixture
def browser() -> Iterator[Any]:
    require_tools(
        "chromium", install="Debian's chromium (make test runs scripts/install_chromium.sh)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


def table_rows(page: Any, selector: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in row]
        for row in page.eval_on_selector_all(
            f"{selector} tbody tr",
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))",
        )
    ]


def answered(page: Any, key: str) -> None:
    wait_until(
        lambda: page.evaluate("document.body.dataset.answered") == key, 10, f"an answer for {key}"
    )


def test_the_monitor_and_query_pages_of_a_live_cluster(
    goka_brokers: str, tmp_path: Path, browser: Any
) -> None:
    artifacts = ARTIFACTS / "web-monitor"
    artifacts.mkdir(parents=True, exist_ok=True)
    deployment = Deployment(goka_brokers, ProcessGroup(), tmp_path, partitions=PARTITIONS)
    stop = threading.Event()
    emitting = None
    try:
        http = {}
        for i in range(3):
            http[f"processor-{i}"] = free_port()
            # small batches: the lag, taken as each batch is stored, shows a burst's backlog
            deployment.start_processors(
                1, "--http-port", str(http[f"processor-{i}"]), "--batch-size", "200"
            )
        wait_until(deployment.settled, BOUND, f"three members running: {deployment.describe()}")
        http["view"], http["router"] = free_port(), free_port()
        deployment.start_view_and_router(
            "--http-port", str(http["view"]), router_args=("--http-port", str(http["router"]))
        )
        users = [f"user-{i}" for i in range(60)]

        def emit() -> None:
            with goka.Emitter(goka_brokers, deployment.topic, codec.String()) as emitter:
                emitter.emit_sync(HOSTILE, "click")
                while not stop.is_set():
                    for i in range(60_000):  # bursts: the input lags go up and down
                        emitter.emit(users[i % len(users)], "click")
                    emitter.flush(30)
                    stop.wait(2.0)

        emitting = threading.Thread(target=emit, daemon=True)
        emitting.start()
        names = {node.endpoint: node.name for node in deployment.processors()}
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"http://127.0.0.1:{http['processor-0']}/")

        def owners_shown() -> dict[int, str]:
            return {
                int(row[1]): names.get(row[4], row[4])
                for row in table_rows(page, "#deployment")
                if row[5] == "active" and row[6] == "running"
            }

        expected = {p: names[e] for p, e in deployment.active_owners().items()}
        wait_until(
            lambda: owners_shown() == expected, 30, f"the monitor to show the owners {expected}"
        )
        assert sorted(expected) == list(range(PARTITIONS))
        lags: set[tuple[str, ...]] = set()

        def lags_vary() -> bool:
            own = table_rows(page, "#partitions")
            lags.add(tuple(row[6] for row in own))
            return len(own) == 2 and len(lags) >= 2

        wait_until(lags_vary, 60, "the input lags shown to change")
        assert page.locator("#processor-section").is_visible()
        assert '"group"' in (page.locator("#processor").text_content() or "")
        page.screenshot(path=str(artifacts / "monitor.png"), full_page=True)

        stop.set()
        emitting.join(10)
        with Client([node.endpoint for node in deployment.processors()]) as client:
            client.wait_ready(10)

            def settled_value(key: str) -> bytes:
                first = client.get(deployment.table, key, consistency="active").value
                time.sleep(0.3)
                second = client.get(deployment.table, key, consistency="active").value
                return first if first == second else b""

            partition_of = get_partitioner("murmur2")
            keys = {}
            for user in users:
                keys.setdefault(partition_of(user.encode(), PARTITIONS), user)
            assert sorted(keys) == list(range(PARTITIONS))
            page.goto(f"http://127.0.0.1:{http['processor-1']}/query")
            wait_until(
                lambda: page.evaluate("document.querySelector('#table').options.length") > 0,
                10,
                "the tables listed",
            )  # (wait_for_function evaluates strings, which the pages' CSP forbids)
            page.select_option("#table", deployment.table)
            for partition, key in sorted(keys.items()):
                wait_until(lambda key=key: settled_value(key) != b"", 30, f"{key} settled")
                value = client.get(deployment.table, key, consistency="active")
                page.fill("#key", key)
                page.click("button[type=submit]")
                answered(page, key)
                shown = {
                    name: page.locator(f"#result-{name}").text_content()
                    for name in ("key", "found", "value", "partition", "served-by")
                }
                assert shown == {
                    "key": key,
                    "found": "yes",
                    "value": value.value.decode(),
                    "partition": str(partition),
                    "served-by": shown["served-by"],
                }, shown
                assert shown["served-by"] in deployment.processor_ids().values()
            page.goto(f"http://127.0.0.1:{http['router']}/query?table={deployment.table}")
            wait_until(
                lambda: page.evaluate("document.querySelector('#table').value") == deployment.table,
                10,
                "the router's query page",
            )
            key = keys[0]
            page.fill("#key", key)
            page.click("button[type=submit]")
            answered(page, key)  # the router holds nothing: forwarded, as a gRPC read is
            assert page.locator("#result-value").text_content() == settled_value(key).decode()
            assert page.locator("#result-served-by").text_content() != (
                deployment.nodes["router"].member_id
            )
            with urllib.request.urlopen(f"http://127.0.0.1:{http['view']}/api/node") as reply:
                view = json.load(reply)
            assert view["role"] == "view" and view["processor"] is None
            assert [p["partition"] for p in view["tables"][0]["partitions"]] == list(
                range(PARTITIONS)
            )
            page.fill("#key", HOSTILE)
            page.click("button[type=submit]")
            answered(page, HOSTILE)
            assert page.locator("#result-key").text_content() == HOSTILE
            assert page.locator("#result-value").text_content() == "1"
            assert page.locator("#result script, #result img").count() == 0
            assert page.evaluate("window.hacked") is None and dialogs == []
            page.screenshot(path=str(artifacts / "query-hostile-key.png"), full_page=True)
    finally:
        stop.set()
        if emitting is not None:
            emitting.join(10)
        deployment.close()


def test_the_demo_prints_its_monitors_url_and_serves_it(goka_brokers: str, browser: Any) -> None:
    """``make demo`` (examples.clickcount demo) says where its processor's monitor is; the
    page shows the demo's table while the demo runs (screenshot: the README's)."""
    command = [sys.executable, "-m", "examples.clickcount", "demo", "--brokers", goka_brokers]
    demo = subprocess.Popen(
        [*command, "--messages", "2000", "--keys", "10"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert demo.stdout is not None
        url = None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("its web monitor and query page: "):
                url = line.split(": ", 1)[1].strip()
                break
        assert url is not None and url.startswith("http://127.0.0.1:"), lines
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        wait_until(lambda: _answers(url), 60, f"the demo's monitor at {url}")
        page.goto(url)

        def running() -> bool:
            rows = table_rows(page, "#deployment")
            return (
                len(rows) >= 2
                and all(row[6] == "running" for row in rows)
                and any(row[7] != "-1" for row in rows)
                and page.locator("#health").text_content() == "serving"
            )

        wait_until(running, 60, "the demo's partitions shown running")
        assert all(row[0] == "clicks-counter-table" for row in table_rows(page, "#deployment"))
        (ARTIFACTS / "web-monitor").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-monitor" / "demo-monitor.png"))
        rest, _ = demo.communicate(timeout=240)
        assert demo.returncode == 0, rest
        assert rest.splitlines()[-1] == "demo finished"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "api/node", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
