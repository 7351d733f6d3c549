"""Pytest fixtures for testing against real Kafka-protocol brokers.

Registered as a pytest plugin (entry point ``goka``) when goka is installed:

- ``goka_broker``: a session-scoped :class:`TestBroker` (its ``kind``, ``bootstrap`` and, for
  the local Apache Kafka, the :class:`~goka.localkafka.LocalKafka` to stop and restart).
  Every test using it runs once per broker kind, named in the test id (``test_x[kafka]``):
  ``kafka`` (a local Apache Kafka, see ``goka.localkafka``) and ``tansu`` (the dev broker).
  Choose with ``--goka-broker kafka`` (repeatable) or ``$GOKA_TEST_BROKER=kafka,tansu``;
  ``$GOKA_TEST_BROKERS=host:port`` runs them once against a Kafka of your own (``external``).
- ``goka_brokers``: the bootstrap address of ``goka_broker``.
- ``@pytest.mark.kafka_only(reason)``: a test of what only Apache Kafka does (compaction,
  restarts with data) runs on the ``kafka`` (or ``external``) broker alone.
- ``local_kafka(**options)``: starts a :class:`~goka.localkafka.LocalKafka` of a test's own
  (e.g. a 3-node cluster), skipping or failing like the ``kafka`` leg when Java or Maven is
  missing.

Where Java 17+ or Maven is missing, the ``kafka`` leg is skipped with a line saying what to
install; under ``CI=true`` that is an error, so CI can never pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from goka.devbroker import DevBroker
from goka.localkafka import LocalKafka
from goka.localkafka._java import MissingTool, java_command, kafka_classpath

__all__ = ["BROKER_KINDS", "TestBroker", "local_kafka", "require_local_kafka"]

BROKER_KINDS = ("kafka", "tansu")


@dataclass(frozen=True)
class TestBroker:
    """The broker a test runs against."""

    __test__ = False  # not a test class, whatever its name

    kind: str
    """``kafka``, ``tansu`` or ``external``."""
    bootstrap: str
    kafka: LocalKafka | None = None
    """The local Apache Kafka (kind ``kafka``): stop, kill and restart its nodes."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kafka_only(reason): runs on Apache Kafka only, not on the dev broker (Tansu)"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--goka-broker",
        action="append",
        choices=BROKER_KINDS,
        default=None,
        help="run broker tests against this broker (repeatable; default: $GOKA_TEST_BROKER "
        "or both kafka and tansu)",
    )


def _kinds(config: pytest.Config) -> list[str]:
    if os.environ.get("GOKA_TEST_BROKERS"):
        return ["external"]
    chosen: list[str] | None = config.getoption("--goka-broker")
    if chosen:
        return list(dict.fromkeys(chosen))
    configured = [k.strip() for k in os.environ.get("GOKA_TEST_BROKER", "").split(",") if k.strip()]
    unknown = sorted(set(configured) - set(BROKER_KINDS))
    if unknown:
        raise pytest.UsageError(
            f"GOKA_TEST_BROKER names unknown brokers {unknown}: use kafka, tansu or both"
        )
    return configured or list(BROKER_KINDS)


def pytest_report_header(config: pytest.Config) -> str:
    external = os.environ.get("GOKA_TEST_BROKERS")
    if external:
        return f"goka brokers: external ({external})"
    return "goka brokers: " + ", ".join(_kinds(config))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "goka_broker_kind" in metafunc.fixturenames:
        kinds = _kinds(metafunc.config)
        if metafunc.definition.get_closest_marker("kafka_only") is not None:
            kinds = [kind for kind in kinds if kind != "tansu"]
        metafunc.parametrize("goka_broker_kind", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def goka_broker_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(scope="session")
def goka_broker(goka_broker_kind: str) -> Iterator[TestBroker]:
    if goka_broker_kind == "external":
        yield TestBroker("external", os.environ["GOKA_TEST_BROKERS"])
    elif goka_broker_kind == "tansu":
        with DevBroker() as broker:
            yield TestBroker("tansu", broker.bootstrap)
    else:
        with local_kafka() as kafka:
            yield TestBroker("kafka", kafka.bootstrap, kafka)


@contextlib.contextmanager
def local_kafka(**options: Any) -> Iterator[LocalKafka]:
    """A started LocalKafka, closed on exit. Without Java 17+ or Maven: skips the test with
    the message naming what to install, or fails it under ``CI=true``."""
    with _tools_or_skip():
        kafka = LocalKafka(**options).start()
    try:
        yield kafka
    finally:
        kafka.close()


def require_local_kafka() -> None:
    """For a test that starts ``python -m goka.localkafka`` itself: Java and the jars are
    there (resolved now), or the test is skipped (failed under ``CI=true``)."""
    with _tools_or_skip():
        java_command()
        kafka_classpath()


@contextlib.contextmanager
def _tools_or_skip() -> Iterator[None]:
    try:
        yield
    except MissingTool as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the Kafka tests cannot run: {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def goka_brokers(goka_broker: TestBroker) -> str:
    return goka_broker.bootstrap
