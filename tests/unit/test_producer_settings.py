"""The processor's producer never keeps a message longer than the processor waits for it,
nor longer than a stall that may cost the membership (see goka._stall)."""

from __future__ import annotations

from goka._stall import message_timeout_ms, session_bounds

FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def test_message_timeout_is_the_delivery_timeout_unless_set_lower() -> None:
    long_session = {"session.timeout.ms": 120_000, "heartbeat.interval.ms": 3000}
    assert message_timeout_ms(long_session, 60.0) == 60_000  # not librdkafka's 300 s
    assert message_timeout_ms(long_session, 2.5) == 2_500
    assert message_timeout_ms({**long_session, "message.timeout.ms": 10_000}, 60.0) == 10_000
    assert message_timeout_ms({**long_session, "message.timeout.ms": "900000"}, 60.0) == 60_000
    assert message_timeout_ms({**long_session, "delivery.timeout.ms": 5_000}, 60.0) == 5_000


def test_message_timeout_is_at_most_the_session_less_a_heartbeat() -> None:
    assert message_timeout_ms({}, 60.0) == 42_000  # librdkafka's 45 s session, 3 s heartbeat
    assert message_timeout_ms(FAST, 60.0) == 5_500
    assert message_timeout_ms({"session.timeout.ms": "10000"}, 60.0) == 7_000


def test_the_stall_guard_asks_after_half_the_session_tolerance() -> None:
    assert session_bounds({}) == (42.0, 21.0)
    assert session_bounds(FAST) == (5.5, 2.75)
