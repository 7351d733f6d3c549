"""An offset counts as committed only once the broker confirmed it; a failed commit is sent
again, and a revocation commits synchronously what is not confirmed.

librdkafka retries a commit by itself while the coordinator is briefly away (a broker
SIGSTOPped for 18 s with a 1 s socket timeout still saw its commit through), so the failures
that reach the commit callback on a real broker come with a lost membership; their outcomes
are therefore played here as the callback reports them.
"""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, TopicPartition

from goka._commits import CommitLedger

REFUSED = KafkaError(KafkaError.REBALANCE_IN_PROGRESS)


def offsets(*entries: tuple[str, int, int]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition, offset) for topic, partition, offset in entries]


def keys(due: list[TopicPartition]) -> list[tuple[str, int, int]]:
    return [(tp.topic, tp.partition, tp.offset) for tp in due]


def test_an_offset_on_its_way_is_not_sent_again_asynchronously_but_is_at_revocation() -> None:
    ledger = CommitLedger("g")
    wanted = {("clicks", 0): 10, ("clicks", 1): 4}
    first = ledger.due(wanted, sync=False)
    assert keys(first) == [("clicks", 0, 10), ("clicks", 1, 4)]
    ledger.sent(first)
    assert ledger.due(wanted, sync=False) == []
    assert ledger.confirmed("clicks", 0) is None  # sent is not committed
    assert keys(ledger.due(wanted, sync=True)) == [("clicks", 0, 10), ("clicks", 1, 4)]


def test_a_confirmed_offset_is_not_sent_again() -> None:
    ledger = CommitLedger("g")
    ledger.sent(offsets(("clicks", 0, 10)))
    ledger.settled(None, offsets(("clicks", 0, 10)))
    assert ledger.confirmed("clicks", 0) == 10
    assert ledger.due({("clicks", 0): 10}, sync=True) == []
    assert keys(ledger.due({("clicks", 0): 12}, sync=False)) == [("clicks", 0, 12)]
    assert ledger.failed == 0


def test_a_failed_commit_is_counted_logged_and_sent_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger = CommitLedger("clicks-counter")
    ledger.sent(offsets(("clicks", 0, 10)))
    with caplog.at_level(logging.WARNING, "goka.processor"):
        ledger.settled(REFUSED, offsets(("clicks", 0, 10)))
    assert ledger.failed == 1 and ledger.confirmed("clicks", 0) is None
    assert keys(ledger.due({("clicks", 0): 10}, sync=False)) == [("clicks", 0, 10)]
    [record] = caplog.records
    assert "group clicks-counter: offset commit failed (clicks[0]@10: " in record.getMessage()
    assert "sent again" in record.getMessage()


def test_only_the_latest_offset_sent_counts() -> None:
    ledger = CommitLedger("g")
    ledger.sent(offsets(("clicks", 0, 10)))
    ledger.sent(offsets(("clicks", 0, 20)))
    ledger.settled(REFUSED, offsets(("clicks", 0, 10)))  # superseded: 20 is on its way
    assert ledger.failed == 0
    assert ledger.due({("clicks", 0): 20}, sync=False) == []
    ledger.settled(None, offsets(("clicks", 0, 20)))
    ledger.settled(REFUSED, offsets(("clicks", 0, 20)))  # a repeated report is not news
    assert ledger.confirmed("clicks", 0) == 20 and ledger.failed == 0


def test_a_released_partition_is_forgotten() -> None:
    ledger = CommitLedger("g")
    ledger.sent(offsets(("clicks", 0, 10), ("clicks", 1, 3)))
    ledger.settled(None, offsets(("clicks", 0, 10), ("clicks", 1, 3)))
    ledger.forget("clicks", 0)
    assert ledger.confirmed("clicks", 0) is None and ledger.confirmed("clicks", 1) == 3
    ledger.settled(None, offsets(("clicks", 0, 10)))  # a late report of the old owner's
    assert ledger.confirmed("clicks", 0) is None
