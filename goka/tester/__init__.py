"""Goka's tester: unit-test processor groups without Kafka.

    tester = Tester(partitions=4)
    tester.add_processor(define_clickcount("clicks", "counter"))
    tester.consume("clicks", "user-1", "click")      # runs every affected group to completion
    assert tester.table("counter-table").get("user-1") == 1

Topics and tables live in memory; callbacks get a real :class:`goka.Context` (state,
emit, loopback, join, lookup, defer_commit, fail) and run synchronously, so a test needs no
waiting. See :class:`Tester`.
"""

from goka.tester._tables import TableHandle, TesterView
from goka.tester._tester import Tester, TesterProcessor
from goka.tester._tracker import OutputTracker, TrackedMessage

__all__ = [
    "OutputTracker",
    "TableHandle",
    "Tester",
    "TesterProcessor",
    "TesterView",
    "TrackedMessage",
]
