"""The settings of the exactly-once producer (see goka._transactions)."""

from __future__ import annotations

from goka._transactions import transaction_config, transactional_id


def test_a_transactional_producer_keeps_its_messages_within_the_transaction_timeout() -> None:
    assert transactional_id("g", "pod-0", "g@host:1:abc") == "g-pod-0"
    assert transactional_id("g", None, "g@host:1:abc") == "g-g@host:1:abc"
    config = transaction_config({"bootstrap.servers": "b"}, "g-pod-0", 42_000)
    assert config == {
        "bootstrap.servers": "b",
        "transactional.id": "g-pod-0",
        "transaction.timeout.ms": 10_000,
        "message.timeout.ms": 10_000,
    }
    given = transaction_config({"transaction.timeout.ms": "60000"}, "t", 42_000)
    assert (given["transaction.timeout.ms"], given["message.timeout.ms"]) == (60_000, 42_000)
