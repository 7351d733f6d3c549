"""Which consumer errors stop a reader: an unknown topic or partition only when the cluster's
metadata agrees (a broker that has not learned of a new topic yet says it is unknown)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError, KafkaException

from goka._kafka_errors import raise_if_permanent
from goka.errors import BrokerError


@dataclass
class ErrorMessage:
    """A consumer's error message: its topic and partition (what raise_if_permanent reads)."""

    partition_id: int = 2

    def topic(self) -> str:
        return "clicks"

    def partition(self) -> int:
        return self.partition_id


@dataclass
class TopicMetadata:
    partitions: dict[int, object]
    error: KafkaError | None = None


@dataclass
class ClusterMetadata:
    topics: dict[str, TopicMetadata] = field(default_factory=dict)


class Metadata:
    """What ``list_topics`` answers: the topic with ``partitions``, or none, or a failure."""

    def __init__(self, partitions: int | None, fails: bool = False) -> None:
        self.partitions, self.fails = partitions, fails
        self.asked: list[str] = []

    def list_topics(self, topic: str, timeout: float) -> ClusterMetadata:
        self.asked.append(topic)
        if self.fails:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        if self.partitions is None:
            unknown = TopicMetadata({}, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
            return ClusterMetadata({topic: unknown})
        return ClusterMetadata({topic: TopicMetadata(dict.fromkeys(range(self.partitions)))})


UNKNOWN = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "Failed to query logical offset")


def test_an_unknown_topic_the_metadata_has_is_transient() -> None:
    client = Metadata(partitions=3)
    raise_if_permanent(UNKNOWN, "reading", ErrorMessage(), client)
    assert client.asked == ["clicks"]


@pytest.mark.parametrize(
    ("client", "msg"),
    [(Metadata(partitions=None), ErrorMessage()), (Metadata(partitions=2), ErrorMessage(2))],
    ids=["topic gone", "partition gone"],
)
def test_an_unknown_topic_or_partition_the_metadata_lacks_stops(
    client: Metadata, msg: ErrorMessage
) -> None:
    with pytest.raises(BrokerError, match="reading failed: .*Failed to query logical offset"):
        raise_if_permanent(UNKNOWN, "reading", msg, client)


def test_unknown_while_the_metadata_cannot_be_asked_is_transient() -> None:
    raise_if_permanent(UNKNOWN, "reading", ErrorMessage(), Metadata(3, fails=True))


@pytest.mark.parametrize(
    "code", [KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError._AUTO_OFFSET_RESET]
)
def test_other_permanent_errors_stop_without_asking(code: int) -> None:
    client = Metadata(partitions=3)
    with pytest.raises(BrokerError):
        raise_if_permanent(KafkaError(code), "reading", ErrorMessage(), client)
    assert client.asked == []


def test_transport_errors_are_transient() -> None:
    client = Metadata(partitions=None)
    raise_if_permanent(KafkaError(KafkaError._TRANSPORT), "reading", ErrorMessage(), client)
    assert client.asked == []
