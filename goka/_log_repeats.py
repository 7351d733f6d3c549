"""A Kafka client's repeated log lines folded into one per window.

While every broker is down, librdkafka tries the bootstrap address again every 50 ms or so
(confluent-kafka-python#1328 reports the same), and each try logs a FAIL line and reports an
error to ``error_cb``: a 30 s outage wrote about 1,000 lines per client, which buried every
other line of the node's log. Per client, the first line of a kind is logged at once; more of
that kind within the window are counted instead, and the next one logged after the window
says how many were left out. A kind is a level and a line with its durations ("after 2700ms")
left out, so the same failure at another moment is the same kind.
"""

from __future__ import annotations

import logging
import re
import threading
import time

__all__ = ["ClientLog", "Repeats"]

_DURATION = re.compile(r"\d+ms\b")


class Repeats:
    """The lines of one client let through: the first of each kind per ``window`` seconds,
    of at most ``kinds`` kinds remembered (the one seen longest ago forgotten first)."""

    def __init__(self, window: float = 10.0, kinds: int = 256) -> None:
        self._window = window
        self._kinds = kinds
        self._lock = threading.Lock()  # error_cb and logger may be called from two threads
        self._seen: dict[tuple[int, str], tuple[float, int]] = {}
        """Per kind: when its last line was let through, and how many were left out since."""

    def admit(self, level: int, message: str) -> str | None:
        """``message`` to log now (saying how many of its kind were left out), or None."""
        kind = (level, _DURATION.sub("ms", message))
        now = time.monotonic()
        with self._lock:
            seen = self._seen.pop(kind, None)
            if seen is not None and now - seen[0] < self._window:
                self._seen[kind] = (seen[0], seen[1] + 1)
                return None
            self._seen[kind] = (now, 0)
            if len(self._seen) > self._kinds:
                del self._seen[next(iter(self._seen))]
        if seen is None or seen[1] == 0:
            return message
        return f"{message} ({seen[1]} more like it in the {self._window:g} s before)"


class ClientLog:
    """A client's ``logger`` setting: librdkafka's log lines to ``logger``, repeats folded."""

    def __init__(self, logger: logging.Logger, repeats: Repeats | None = None) -> None:
        self._logger = logger
        self._repeats = repeats or Repeats()

    def log(self, level: int, msg: str, *args: object) -> None:
        """What confluent-kafka calls: ``log(level, "%s [%s] %s", facility, client, line)``."""
        if self._logger.isEnabledFor(level):
            message = self._repeats.admit(level, msg % args if args else msg)
            if message is not None:
                self._logger.log(level, "%s", message)
