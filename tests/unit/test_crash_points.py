"""GOKA_CRASH_AT is checked when the processor is made: a point it does not know is an error
naming the points; without it nothing is armed."""

from __future__ import annotations

import pytest

from goka._crash_points import ENV, CrashPoints
from goka.errors import ConfigError


def test_nothing_is_armed_without_the_variable() -> None:
    points = CrashPoints({})
    for point in ("after_callbacks", "after_store"):
        points.reached(point)  # returns: the test process goes on


def test_a_point_armed_for_a_later_time_lets_the_earlier_ones_pass() -> None:
    points = CrashPoints({ENV: "after_store:3"})
    points.reached("after_store")
    points.reached("after_store")
    points.reached("after_delivery")  # another point: not counted


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("after_lunch", "the point must be one of after_callbacks, after_changelog_produced"),
        ("after_store:0", "the count after ':' must be an integer >= 1"),
        ("after_store:x", "the count after ':' must be an integer >= 1"),
    ],
)
def test_a_setting_it_does_not_know_is_an_error(setting: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"{ENV}={setting!r}: {message}"):
        CrashPoints({ENV: setting})
