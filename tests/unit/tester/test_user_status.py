"""The user-status example's logic through the tester: click counts joined at update time."""

from __future__ import annotations

import pytest

from examples.clickcount import define_clickcount
from examples.user_status import define_user_status
from goka.errors import ProcessorError
from goka.partitioner import murmur2
from goka.tester import Tester

USERS = [f"user-{i}" for i in range(16)]


@pytest.fixture
def tester() -> Tester:
    tester = Tester(partitions=8)
    tester.add_processor(define_clickcount("clicks", "clicks-counter"))
    tester.add_processor(define_user_status("user-status-updates", "user-status", "clicks-counter"))
    return tester


def test_status_keeps_the_clicks_at_the_time_of_the_update(tester: Tester) -> None:
    for i, user in enumerate(USERS):
        for _ in range(i):
            tester.consume("clicks", user, "click")
    for user in USERS:
        tester.consume("user-status-updates", user, {"status": f"hello from {user}"})
    statuses = tester.table("user-status-table")
    assert statuses.items() == sorted(
        (user, {"status": f"hello from {user}", "clicks": i}) for i, user in enumerate(USERS)
    )
    for _ in range(5):  # later clicks do not change the stored status ...
        tester.consume("clicks", "user-3", "click")
    assert statuses.get("user-3") == {"status": "hello from user-3", "clicks": 3}
    tester.consume("user-status-updates", "user-3", {"status": "busy"})  # ... a new update does
    assert statuses.get("user-3") == {"status": "busy", "clicks": 8}
    assert tester.table("clicks-counter-table").get("user-3") == 8


def test_status_and_clicks_share_each_users_partition(tester: Tester) -> None:
    view = tester.view("user-status-table", tester.table("user-status-table").codec)
    for user in USERS:
        partition, _ = tester.consume("clicks", user, "click")
        assert partition == murmur2(user.encode(), 8)
        status_partition, _ = tester.consume("user-status-updates", user, {"status": "on"})
        assert status_partition == partition == view.partition_of(user)
    assert [row["clicks"] for _, row in view.items()] == [1] * len(USERS)


def test_a_user_without_clicks_has_zero(tester: Tester) -> None:
    tester.consume("user-status-updates", "quiet", {"status": "lurking"})
    assert tester.table("user-status-table").get("quiet") == {"status": "lurking", "clicks": 0}


def test_bad_updates_stop_the_status_group(tester: Tester) -> None:
    with pytest.raises(ProcessorError, match=r'a status update is \{"status": "..."\}'):
        tester.consume("user-status-updates", "u", {"mood": "happy"})
    with pytest.raises(ProcessorError, match="with codec 'json'"):
        tester.consume("user-status-updates", "u", b"not json")
    assert tester.table("user-status-table").get("u") is None
