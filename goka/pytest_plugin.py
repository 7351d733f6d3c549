"""Pytest fixtures for testing against a real Kafka-protocol broker.

Registered as a pytest plugin (entry point ``goka``) when goka is installed:

- ``goka_brokers``: a session-scoped bootstrap address. It is ``$GOKA_TEST_BROKERS`` when set
  (an external Kafka), otherwise a dev broker started for the session and stopped after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from goka.devbroker import DevBroker


@pytest.fixture(scope="session")
def goka_brokers() -> Iterator[str]:
    external = os.environ.get("GOKA_TEST_BROKERS")
    if external:
        yield external
        return
    with DevBroker() as broker:
        yield broker.bootstrap
