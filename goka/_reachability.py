"""Whether a client has a broker connection up, from librdkafka's statistics.

librdkafka reports every connection's state in its statistics (``statistics.interval.ms``);
a client none of whose cluster brokers (bootstrap addresses aside) is ``UP`` cannot be told
how far behind its copies are, so their lag is unknown until one is up again. The statistics
are served by the client's polls, so the client must be polled (it is: every loop turn).
"""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["Reachability"]

STATISTICS_INTERVAL_MS = 1000


class Reachability:
    def __init__(self) -> None:
        self._unreachable_since: float | None = None

    def client_config(self) -> dict[str, Any]:
        """The settings that have a client report its connections here."""
        return {"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": self._on_statistics}

    def unreachable_for(self) -> float:
        """Seconds since the client last had a broker connection up (0.0: it has one)."""
        since = self._unreachable_since
        return 0.0 if since is None else time.monotonic() - since

    def _on_statistics(self, document: str) -> None:
        brokers = json.loads(document).get("brokers", {}).values()
        up = any(b.get("nodeid", -1) >= 0 and b.get("state") == "UP" for b in brokers)
        if up:
            self._unreachable_since = None
        elif self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
