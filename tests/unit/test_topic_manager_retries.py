"""The topic manager sends a request again when librdkafka destroyed the broker handle it was
on (librdkafka replaces the bootstrap servers' handles once it learned the cluster's; a
cluster just started made ``create_topics`` fail so), and only then; it asks for metadata a
second at a time, and ends at once when the client reports a refused login in between."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

import goka
from goka._config import ClientErrors
from goka.errors import BrokerError


@dataclass
class Topic:
    partitions: dict[int, object]
    error: KafkaError | None = None


@dataclass
class Metadata:
    topics: dict[str, Topic] = field(default_factory=dict)


class FlakyAdmin:
    """``list_topics`` fails with ``failures`` (in turn), then answers; ``poll`` reports
    each of ``reported`` to ``error_cb``, as librdkafka's error callback does."""

    def __init__(self, *failures: int, reported: tuple[KafkaError, ...] = ()) -> None:
        self.failures, self.calls = list(failures), 0
        self.reported = reported
        self.error_cb: Any = None

    def list_topics(self, **_: Any) -> Metadata:
        self.calls += 1
        if self.failures:
            raise KafkaException(KafkaError(self.failures.pop(0)))
        return Metadata({"clicks": Topic(dict.fromkeys(range(3)))})

    def poll(self, timeout: float) -> int:
        for error in self.reported:
            self.error_cb(error)
        return 0


REFUSED = KafkaError(
    KafkaError._AUTHENTICATION,
    "SASL authentication error: Authentication failed: Invalid username or password",
)


def manager(admin: FlakyAdmin) -> goka.TopicManager:
    topics = goka.TopicManager("127.0.0.1:1", timeout=5)
    topics._admin = admin  # type: ignore[assignment]  # the request policy, without a broker
    admin.error_cb = topics._client_errors
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


def test_metadata_is_asked_again_after_a_slice_timed_out() -> None:
    admin = FlakyAdmin(KafkaError._TIMED_OUT, KafkaError._TIMED_OUT)
    assert manager(admin).partitions("clicks") == 3
    assert admin.calls == 3


ALL_DOWN = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")


@pytest.mark.parametrize(
    "reported", [(REFUSED,), (REFUSED, ALL_DOWN)], ids=["refused", "then-all-brokers-down"]
)
def test_a_refused_login_ends_the_request_at_once(reported: tuple[KafkaError, ...]) -> None:
    """librdkafka may report ALL_BROKERS_DOWN right after the refusal, from the same poll
    (seen in CI): the refusal still ends the request and is what the error names."""
    admin = FlakyAdmin(*[KafkaError._TIMED_OUT] * 10, reported=reported)
    with pytest.raises(
        BrokerError,
        match=r"cannot read metadata of topic 'clicks': the brokers of 127\.0\.0\.1:1 "
        r"\(bootstrap\.servers\) refused the login \(SASL authentication error: .*Invalid "
        r"username or password\); check the credentials",
    ):
        manager(admin).partitions("clicks")
    assert admin.calls == 1


def test_a_refusal_reported_before_the_request_does_not_end_it() -> None:
    admin = FlakyAdmin(KafkaError._TIMED_OUT)
    topics = manager(admin)
    topics._client_errors(REFUSED)  # an earlier request's
    assert topics.partitions("clicks") == 3
    assert admin.calls == 2


def test_another_error_after_a_refusal_is_no_refusal_any_more() -> None:
    errors = ClientErrors()
    errors(REFUSED)
    errors(ALL_DOWN)
    assert errors.refusal is REFUSED
    transport = KafkaError(KafkaError._TRANSPORT, "Connection refused")
    errors(transport)
    assert errors.refusal is None and errors.last is transport
