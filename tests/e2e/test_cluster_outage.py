"""The whole cluster down for 30 s (issue 12 item 7), with the deployment as OS processes:
3 click-count processors serving, a view pod and a router, each with
``--unreachable-bound 5``. Every node's health turns NOT_SERVING once its brokers have been
unreachable for longer than the bound and SERVING again once they are back; no node exits or
stops answering reads from what it holds; clicks emitted during the outage are delivered
once the brokers are back and counted, none lost (at-least-once: at least once)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

import goka
from goka import codec
from goka._delivery import DeliveryFuture
from goka.localkafka import LocalKafka
from goka.pytest_plugin import local_kafka
from tests.conftest import ProcessGroup
from tests.support.serving import SERVING, Deployment, health, wait_until
from viewsvc.client import Client, ReadError

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 4
KEYS = [f"user-{i}" for i in range(100)]
BOUND = "5"
"""--unreachable-bound of every node, seconds."""
DOWN = 30.0
WAIT = 120.0
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    with local_kafka() as cluster:
        yield cluster


def counts(client: Client, table: str) -> dict[str, int] | None:
    """Every key's count as its owner answers (ACTIVE), None while a read fails."""
    try:
        results = client.get_many(table, KEYS, consistency="active")
    except ReadError:
        return None
    return {r.key.decode(): int(r.value) for r in results if r.found}


def last_health(log: Path) -> str:
    """The last line a node logged about its health (with the reason for NOT_SERVING)."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if " health: " in line]
    return lines[-1] if lines else "no health logged"


def counted_twice(client: Client, table: str) -> bool:
    """Every key counted at least twice (at-least-once: a batch may be processed again)."""
    found = counts(client, table)
    return found is not None and set(found) == set(KEYS) and min(found.values()) >= 2


def test_a_whole_cluster_outage_turns_health_and_loses_nothing(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    deployment = Deployment(kafka.bootstrap, ProcessGroup(), tmp_path, partitions=PARTITIONS)
    bound = ("--unreachable-bound", BOUND)
    try:
        deployment.start_processors(3, *bound)
        with goka.Emitter(kafka.bootstrap, deployment.topic, codec.String()) as emitter:
            for key in KEYS:
                emitter.emit_sync(key, "click")
            deployment.start_view_and_router(*bound, router_args=bound)
            deployment.wait_settled(WAIT)
            endpoints = {name: node.endpoint for name, node in deployment.nodes.items()}
            client = Client(list(endpoints.values()), timeout=2.0)
            assert client.wait_ready(WAIT)
            wait_until(lambda: counts(client, deployment.table) == dict.fromkeys(KEYS, 1), WAIT,
                       "every click counted")  # fmt: skip

            kafka.stop_all()
            down = time.monotonic()
            during: list[DeliveryFuture] = [emitter.emit(key, "click") for key in KEYS]
            took = wait_until(
                lambda: all(health(e) == NOT_SERVING for e in endpoints.values()),
                WAIT,
                "every node NOT_SERVING without brokers",
            )
            assert took >= float(BOUND) - 1.0, f"NOT_SERVING after {took:.1f}s, before the bound"
            answer = client.get(deployment.table, KEYS[0], consistency="any")
            assert (answer.found, int(answer.value)) == (True, 1), "reads go on from local copies"
            time.sleep(max(0.0, down + DOWN - time.monotonic()))  # the outage itself
            dead = [name for name, node in deployment.nodes.items() if not node.alive]
            assert dead == [], f"exited during the outage: {dead}"

            kafka.start_all()

            def not_serving() -> dict[str, object]:
                return {n: status for n, e in endpoints.items() if (status := health(e)) != SERVING}

            try:
                wait_until(lambda: not not_serving(), WAIT, "every node SERVING again")
            except AssertionError as exc:
                why = {name: last_health(deployment.log(name)) for name in not_serving()}
                raise AssertionError(f"{exc}; not serving: {why}") from None
            emitter.flush(WAIT)
            assert [f.exception() for f in during] == [None] * len(KEYS)
            wait_until(lambda: counted_twice(client, deployment.table), WAIT,
                       "the clicks of the outage counted")  # fmt: skip
            client.close()
        assert [name for name, node in deployment.nodes.items() if not node.alive] == []
    finally:
        deployment.close()
