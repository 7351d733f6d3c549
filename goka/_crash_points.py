"""Deterministic crash points of the commit protocol, for tests of what a restart recovers.

With ``GOKA_CRASH_AT=<point>[:<n>]`` in its environment, a processor ends its process with
``os._exit(CRASH_EXIT_CODE)`` (no cleanup, no flush: as a SIGKILL would) the n-th time
(default: the first) it reaches ``point``, one of:

- ``after_callbacks``: a batch's callbacks ran; nothing of it was sent;
- ``after_changelog_produced``: its changelog was handed to the producer, not yet sent;
- ``after_commit`` (exactly-once only): its transaction (changelog, emits, input offsets)
  was committed; LMDB was not written;
- ``after_delivery``: its changelog and emits were acknowledged; LMDB was not written;
- ``after_store``: LMDB holds its writes and changelog offset; its input offsets were not
  committed.

Without the variable nothing is armed and each point costs one comparison per batch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from goka.errors import ConfigError

__all__ = ["CRASH_EXIT_CODE", "ENV", "POINTS", "CrashPoints"]

ENV = "GOKA_CRASH_AT"
POINTS = (
    "after_callbacks",
    "after_changelog_produced",
    "after_commit",
    "after_delivery",
    "after_store",
)
CRASH_EXIT_CODE = 86


class CrashPoints:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self._point: str | None = None
        self._left = 0
        setting = environ.get(ENV, "")
        if not setting:
            return
        point, _, count = setting.partition(":")
        if point not in POINTS:
            raise ConfigError(f"{ENV}={setting!r}: the point must be one of {', '.join(POINTS)}")
        try:
            self._left = int(count) if count else 1
        except ValueError:
            self._left = 0
        if self._left < 1:
            raise ConfigError(f"{ENV}={setting!r}: the count after ':' must be an integer >= 1")
        self._point = point

    def reached(self, point: str) -> None:
        if point != self._point:
            return
        self._left -= 1
        if self._left == 0:
            sys.stderr.write(f"goka: crashing at {point} ({ENV})\n")
            sys.stderr.flush()
            os._exit(CRASH_EXIT_CODE)
