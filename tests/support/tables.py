"""Filling an input and waiting for a group table to hold what the test expects."""

from __future__ import annotations

import time
from typing import Any

import goka

TIMEOUT = 60.0


def wait_for_rows(
    brokers: str, table: str, value_codec: Any, expected: dict[str, Any]
) -> dict[str, Any]:
    """The rows of ``table`` once they equal ``expected``, or as they are after TIMEOUT."""
    goka.TopicManager(brokers).wait_for(table, TIMEOUT)
    with goka.View(brokers, table, value_codec) as view:
        assert view.wait_running(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while True:
            rows = dict(view.items())
            if rows == expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def emit_all(brokers: str, topic: str, value_codec: Any, rows: list[tuple[str, Any]]) -> None:
    """Emits ``rows`` (key, value) to ``topic`` and waits for their delivery."""
    with goka.Emitter(brokers, topic, value_codec) as emitter:
        for key, value in rows:
            emitter.emit(key, value)
