"""No zombie writes: a processor that may have lost its group membership writes nothing
until the broker confirms it has not.

A process that stops running for a while (SIGSTOP, a paused VM, a long GC, a host under
swap) stops heartbeating too; past ``session.timeout.ms`` the group gives its partitions to
another member, which starts recovering their table partitions. When the process runs again,
librdkafka learns of the loss only at its next heartbeat, and the processing thread would go
on processing what it had fetched and writing the changelog of partitions that are no longer
its own. Two rules close that gap:

- **A stall is noticed before the next write.** The processing thread ticks the guard at the
  start of each loop turn, at each run of a batch's messages, before each emitted message and
  before each changelog. No code runs during a stall, so a stall shows as a gap between two
  ticks; a gap longer than ``bound`` (half of what the session tolerates) asks the broker: a
  synchronous offset commit of what is stored, which the group coordinator accepts only from a
  current member of the current generation. If it is refused, or cannot be sent, the batches
  not yet stored are dropped (``BatchRunner.drop``), their partitions rewound and paused, and
  the processor writes nothing until a commit goes through or a new assignment arrives.
- **What was queued before the stall is not sent after it.** ``message.timeout.ms`` is at
  most the session timeout less one heartbeat interval, so a stall long enough to lose the
  membership also expires every message librdkafka still held (its broker thread scans for
  timeouts before it sends, on the first iteration after a stall). A batch whose messages
  expired is dropped and processed again the same way, so a broker outage longer than that
  delays processing instead of stopping it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "MembershipInDoubt",
    "StallGuard",
    "message_timeout_ms",
    "session_bounds",
    "session_timeout_ms",
]

_SESSION_TIMEOUT_MS = 45_000
_HEARTBEAT_INTERVAL_MS = 3_000
"""librdkafka's defaults of session.timeout.ms and heartbeat.interval.ms."""


class MembershipInDoubt(Exception):  # noqa: N818 - a condition, handled by the processor
    """The group may have given this member's partitions away: nothing unstored is written.

    Not a GokaError: the processor handles it (drops, rewinds, waits), a user never sees it.
    """


def session_timeout_ms(config: Mapping[str, Any]) -> int:
    """``session.timeout.ms`` of ``config``, or librdkafka's default."""
    return int(config.get("session.timeout.ms", _SESSION_TIMEOUT_MS))


def session_bounds(config: Mapping[str, Any]) -> tuple[float, float]:
    """Seconds a member may go without heartbeating before the group may drop it, given
    ``session.timeout.ms`` and ``heartbeat.interval.ms``: (the whole session tolerance, the
    gap the stall guard asks the broker about)."""
    session = session_timeout_ms(config)
    heartbeat = int(config.get("heartbeat.interval.ms", _HEARTBEAT_INTERVAL_MS))
    tolerance = max(session - heartbeat, 1) / 1000
    return tolerance, tolerance / 2


def message_timeout_ms(config: Mapping[str, Any], delivery_timeout: float) -> int:
    """librdkafka's ``message.timeout.ms`` (default 300 s) for the processor's producer:
    at most the delivery timeout, and at most the session tolerance (see the module)."""
    tolerance, _ = session_bounds(config)
    bound = round(min(delivery_timeout, tolerance) * 1000)
    given = config.get("message.timeout.ms", config.get("delivery.timeout.ms"))
    return bound if given is None else min(bound, int(given))


class StallGuard:
    """Ticked by the processing thread; raises MembershipInDoubt after a gap longer than
    ``bound`` seconds that ``prove()`` (a synchronous commit) cannot vouch for."""

    def __init__(self, bound: float, prove: Callable[[], bool]) -> None:
        self.bound = bound
        self._prove = prove
        self._last = time.monotonic()
        self.stalls = 0
        """Gaps longer than the bound that the broker was asked about."""

    def tick(self) -> None:
        now = time.monotonic()
        gap, self._last = now - self._last, now
        if gap <= self.bound:
            return
        self.stalls += 1
        if not self._prove():
            raise MembershipInDoubt(
                f"the processor did not run for {gap:.1f}s (more than {self.bound:.1f}s) and "
                "the group coordinator did not accept a commit since"
            )
        self._last = time.monotonic()
