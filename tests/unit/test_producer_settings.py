"""The processor's producer never keeps a message longer than the processor waits for it."""

from __future__ import annotations

from goka.processor import _message_timeout_ms


def test_message_timeout_is_the_delivery_timeout_unless_set_lower() -> None:
    assert _message_timeout_ms({}, 60.0) == 60_000  # not librdkafka's 300 s
    assert _message_timeout_ms({}, 2.5) == 2_500
    assert _message_timeout_ms({"message.timeout.ms": 10_000}, 60.0) == 10_000
    assert _message_timeout_ms({"message.timeout.ms": "900000"}, 60.0) == 60_000
    assert _message_timeout_ms({"delivery.timeout.ms": 5_000}, 60.0) == 5_000
