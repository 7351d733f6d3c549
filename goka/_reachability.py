"""Whether a client has a broker connection up, from librdkafka's statistics.

librdkafka reports every connection's state in its statistics (``statistics.interval.ms``);
a client none of whose cluster brokers (bootstrap addresses aside) is ``UP`` cannot be told
how far behind its copies are, so their lag is unknown until one is up again. The statistics
are served by the client's polls, so the client must be polled (it is: every loop turn).

A client that is not polled hears nothing, its broker connections' loss included: a
processor blocked in a synchronous offset commit during an outage waits up to the request
timeout (60 s). Statistics older than :data:`STALE_AFTER_S` vouch for nothing, so from then
on the client counts as unreachable since the report that did not come.

The same reports show a client that has forgotten every broker (librdkafka#5301), which is
then given its bootstrap servers again (``goka._rebootstrap``): call ``attach`` once the
client exists.
"""

from __future__ import annotations

import json
import time
from typing import Any

from goka._rebootstrap import Rebootstrap

__all__ = ["STALE_AFTER_S", "STATISTICS_INTERVAL_MS", "Reachability"]

STATISTICS_INTERVAL_MS = 1000

STALE_AFTER_S = 5 * STATISTICS_INTERVAL_MS / 1000
"""Five reports missed: longer than any poll of a healthy client's loop takes."""


class Reachability:
    def __init__(self) -> None:
        self._unreachable_since: float | None = None
        self._heard_at: float | None = None
        self.rebootstrap = Rebootstrap()

    def attach(self, client: object, config: dict[str, Any]) -> None:
        """The client created with ``config`` (which holds ``client_config()``)."""
        self.rebootstrap.attach(client, str(config.get("bootstrap.servers", "")))

    def client_config(self) -> dict[str, Any]:
        """The settings that have a client report its connections here."""
        return {"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": self._on_statistics}

    def unreachable_for(self) -> float:
        """Seconds since the client last had a broker connection up (0.0: it has one), or
        since the report that did not come, once its statistics are stale."""
        now = time.monotonic()
        since, heard = self._unreachable_since, self._heard_at
        if heard is not None and now - heard > STALE_AFTER_S:
            due = heard + STATISTICS_INTERVAL_MS / 1000
            since = due if since is None else min(since, due)
        return 0.0 if since is None else now - since

    def _on_statistics(self, document: str) -> None:
        statistics = json.loads(document)
        self.rebootstrap.check(statistics)
        brokers = statistics.get("brokers", {}).values()
        up = any(b.get("nodeid", -1) >= 0 and b.get("state") == "UP" for b in brokers)
        self._heard_at = time.monotonic()
        if up:
            self._unreachable_since = None
        elif self._unreachable_since is None:
            self._unreachable_since = self._heard_at
