"""A client that has forgotten every broker is given its bootstrap servers again.

librdkafka (2.13 to 2.16.1 at least: confluentinc/librdkafka#5301, the fix #5303 not merged)
takes a Metadata response that lists topics but no broker as the cluster's new broker list:
it decommissions every broker it knew, the bootstrap servers included, and stops the
re-bootstrap timer that would bring them back. A Kafka broker in controlled shutdown answers
so (it no longer counts itself live), so when a whole cluster stops cleanly, a client that
asked for metadata at that moment is left with no broker to ask and never asks again: it
stays cut off after the cluster is back, until the process restarts
(tests/integration/test_rebootstrap.py shows it on real Kafka; a processor's input consumer
stayed cut off in tests/e2e/test_cluster_outage.py).

The client's statistics show the state: no broker of source ``configured`` (a bootstrap
server) or ``learned`` (from metadata) is left. librdkafka's ``rd_kafka_brokers_add()`` gives
the client its bootstrap servers again, from which it learns the cluster anew, but
confluent-kafka does not expose it; it is called through ctypes, on the ``rd_kafka_t`` that
confluent-kafka keeps right after the object header of every client (``Handle`` in its
``confluent_kafka.h``). The handle found there is checked first: its ``rd_kafka_name()`` must
be the name in the client's statistics.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import cimpl

__all__ = ["Rebootstrap"]

_logger = logging.getLogger("goka.kafka")

_EVERY_S = 5.0
"""Seconds between two re-additions while the client still knows no broker."""
_KNOWN = frozenset({"configured", "learned"})
"""Sources of brokers a client can connect to (the others: ``logical``, ``internal``)."""


@functools.cache
def _librdkafka() -> ctypes.CDLL:
    """librdkafka's functions, through confluent-kafka's extension (which links it)."""
    library = ctypes.CDLL(cimpl.__file__)
    library.rd_kafka_name.argtypes = [ctypes.c_void_p]
    library.rd_kafka_name.restype = ctypes.c_char_p
    library.rd_kafka_brokers_add.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    library.rd_kafka_brokers_add.restype = ctypes.c_int
    return library


def _librdkafka_handle(client: object, name: str) -> tuple[ctypes.CDLL, int] | str:
    """librdkafka and the client's ``rd_kafka_t``, or why they cannot be had (raised in a
    statistics callback, an exception would fail the client's poll)."""
    try:
        library = _librdkafka()
    except (OSError, AttributeError) as exc:
        return f"librdkafka's functions cannot be loaded: {exc}"
    handle = ctypes.c_void_p.from_address(id(client) + object.__basicsize__).value
    if handle is None or library.rd_kafka_name(handle) != name.encode():
        return "the confluent-kafka client layout is not the one expected"
    return library, handle


class Rebootstrap:
    """Watches one client's statistics (``check``) and gives it its bootstrap servers again
    when it knows no broker; ``added`` counts the times it did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: object | None = None
        self._servers = b""
        self._last = -_EVERY_S
        self.added = 0

    def client_config(self) -> dict[str, Any]:
        """The settings of a client watched by this alone (consumers watched for their
        reachability are checked by ``goka._reachability``). Its statistics are served by
        its polls, so it must be polled regularly."""
        return {
            "statistics.interval.ms": int(_EVERY_S * 1000),
            "stats_cb": lambda document: self.check(json.loads(document)),
        }

    def attach(self, client: object, bootstrap_servers: str) -> None:
        """The client to watch, once it exists (its statistics callback is set before)."""
        with self._lock:
            self._client, self._servers = client, bootstrap_servers.encode()

    def check(self, statistics: Mapping[str, Any]) -> None:
        """Called with each statistics report of the client, on its polling thread."""
        if any(b.get("source") in _KNOWN for b in statistics.get("brokers", {}).values()):
            return
        now = time.monotonic()
        with self._lock:
            client = self._client
            if client is None or not self._servers or now - self._last < _EVERY_S:
                return
            self._last = now
        name = str(statistics.get("name", ""))
        found = _librdkafka_handle(client, name)
        if isinstance(found, str):
            _logger.error(
                "kafka client %s knows no broker and cannot be given its bootstrap servers "
                "again (%s): it stays cut off from the cluster; restart the process",
                name,
                found,
            )
            return
        library, handle = found
        library.rd_kafka_brokers_add(handle, self._servers)
        self.added += 1
        _logger.warning(
            "kafka client %s knew no broker any more (librdkafka#5301: a metadata answer "
            "without brokers, from a broker shutting down): its bootstrap servers %s are "
            "added again",
            name,
            self._servers.decode(),
        )
