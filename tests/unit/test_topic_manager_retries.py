"""The topic manager sends a request again when librdkafka destroyed the broker handle it was
on (librdkafka replaces the bootstrap servers' handles once it learned the cluster's; a
cluster just started made ``create_topics`` fail so), and only then."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

import goka
from goka.errors import BrokerError


@dataclass
class Topic:
    partitions: dict[int, object]
    error: KafkaError | None = None


@dataclass
class Metadata:
    topics: dict[str, Topic] = field(default_factory=dict)


class FlakyAdmin:
    """``list_topics`` fails with ``failures`` (in turn), then answers."""

    def __init__(self, *failures: int) -> None:
        self.failures, self.calls = list(failures), 0

    def list_topics(self, **_: Any) -> Metadata:
        self.calls += 1
        if self.failures:
            raise KafkaException(KafkaError(self.failures.pop(0)))
        return Metadata({"clicks": Topic(dict.fromkeys(range(3)))})

    def poll(self, timeout: float) -> int:
        return 0


def manager(admin: FlakyAdmin) -> goka.TopicManager:
    topics = goka.TopicManager("127.0.0.1:1", timeout=5)
    topics._admin = admin  # type: ignore[assignment]  # the request policy, without a broker
    return topics


def test_a_destroyed_broker_handle_is_asked_again() -> None:
    admin = FlakyAdmin(KafkaError._DESTROY_BROKER, KafkaError._DESTROY_BROKER)
    assert manager(admin).partitions("clicks") == 3
    assert admin.calls == 3


@pytest.mark.parametrize("code", [KafkaError._TRANSPORT, KafkaError.TOPIC_AUTHORIZATION_FAILED])
def test_other_failures_are_the_answer(code: int) -> None:
    admin = FlakyAdmin(code)
    with pytest.raises(BrokerError, match="cannot read metadata of topic 'clicks'"):
        manager(admin).partitions("clicks")
    assert admin.calls == 1
