"""goka.changes: a partition's change feed, its history and its listeners."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from goka.changes import Change, ChangeFeed, TableChanges, consecutive_changes
from goka.errors import ConfigError, HistoryUnavailable
from goka.storage import Storage
from goka.storage.memory import MemoryStorage


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Change] = []
        self.positions: list[int] = []
        self.reasons: list[str] = []

    def changes(self, changes: Sequence[Change], position: int) -> None:
        self.seen.extend(changes)
        self.positions.append(position)

    def ended(self, reason: str) -> None:
        self.reasons.append(reason)


def store() -> Storage:
    return MemoryStorage().open("table", 0)


def apply(feed: ChangeFeed, target: Storage, *changes: Change) -> None:
    feed.apply(target, {k: v for k, v, _ in changes}, changes[-1][2] + 1, list(changes))


def test_listeners_get_the_applied_changes_and_the_store_has_them() -> None:
    feed, target, recorder = ChangeFeed(0, 0, 100), store(), Recorder()
    assert feed.subscribe(recorder, None) == 0
    apply(feed, target, (b"a", b"1", 0), (b"b", None, 1), (b"a", b"2", 2))
    assert recorder.seen == [(b"a", b"1", 0), (b"b", None, 1), (b"a", b"2", 2)]
    assert recorder.positions == [3]
    assert (target.get(b"a"), target.offset(), feed.position) == (b"2", 3, 3)


def test_a_subscription_from_an_offset_gets_the_history_since_first() -> None:
    feed, target = ChangeFeed(0, 5, 100), store()
    apply(feed, target, (b"a", b"1", 5), (b"a", b"2", 6), (b"a", b"3", 7))
    recorder = Recorder()
    assert feed.subscribe(recorder, 6) == 8
    assert recorder.seen == [(b"a", b"2", 6), (b"a", b"3", 7)]
    apply(feed, target, (b"a", b"4", 8))
    assert recorder.seen[-1] == (b"a", b"4", 8)


def test_history_is_bounded_and_older_offsets_are_unavailable() -> None:
    feed, target = ChangeFeed(3, 0, 2), store()
    apply(feed, target, (b"a", b"1", 0), (b"a", b"2", 1), (b"a", b"3", 2))
    assert feed.first == 1
    with pytest.raises(HistoryUnavailable, match="has changes from offset 1 here, not from 0"):
        feed.subscribe(Recorder(), 0)
    recorder = Recorder()
    feed.subscribe(recorder, 1)
    assert [c[2] for c in recorder.seen] == [1, 2]


def test_changes_before_the_position_are_not_published_again() -> None:
    feed, target, recorder = ChangeFeed(0, 0, 100), store(), Recorder()
    feed.subscribe(recorder, None)
    apply(feed, target, (b"a", b"1", 0), (b"b", b"1", 1))
    apply(feed, target, (b"b", b"1", 1), (b"c", b"1", 2))  # a re-read overlaps
    assert [c[2] for c in recorder.seen] == [0, 1, 2]


def test_unknown_changes_a_reset_store_and_close_end_the_listeners() -> None:
    feed, target = ChangeFeed(0, 0, 100), store()
    first, second, third = Recorder(), Recorder(), Recorder()
    feed.subscribe(first, None)
    feed.apply(target, {b"a": b"1"}, 4, None)
    assert first.reasons and "before offset 4 are not known" in first.reasons[0]
    assert (feed.position, feed.first) == (4, 4)
    feed.subscribe(second, None)
    feed.resync(0)
    assert second.reasons and "reset to offset 0" in second.reasons[0]
    feed.subscribe(third, None)
    feed.close("partition 0 is no longer held here")
    assert third.reasons == ["partition 0 is no longer held here"]
    with pytest.raises(HistoryUnavailable, match="no longer held"):
        feed.subscribe(Recorder(), None)


def test_table_changes_keep_feeds_only_once_enabled() -> None:
    changes, target = TableChanges(history=10), store()
    assert changes.open(0, target) is None
    changes.enable()
    feed = changes.open(0, target)
    assert feed is not None and changes.open(0, target) is feed and changes.get(0) is feed
    changes.close(0, "released")
    assert changes.get(0) is None
    with pytest.raises(ConfigError, match="at least 1"):
        TableChanges(history=0)


def test_a_batchs_offsets_are_consecutive_or_not_known() -> None:
    writes = {b"a": b"1", b"b": None}
    assert consecutive_changes(0, writes, 7, 8) == [(b"a", b"1", 7), (b"b", None, 8)]
    assert consecutive_changes(0, writes, 7, 9) is None
    assert consecutive_changes(0, writes, None, 8) is None
