"""The stall guard asks the broker only after a gap longer than its bound, and raises when
the broker does not vouch for the membership."""

from __future__ import annotations

import time

import pytest

from goka._stall import MembershipInDoubt, StallGuard


def test_ticks_closer_than_the_bound_ask_nothing() -> None:
    asked: list[bool] = []
    guard = StallGuard(60.0, lambda: asked.append(True) or True)
    for _ in range(100):
        guard.tick()
    assert asked == [] and guard.stalls == 0


def test_a_gap_longer_than_the_bound_is_proved_or_raises() -> None:
    answers = [True, False]
    guard = StallGuard(0.02, lambda: answers.pop(0))
    time.sleep(0.05)  # the stall itself, not a wait for a condition
    guard.tick()  # the broker accepted the commit: go on
    assert guard.stalls == 1
    guard.tick()  # right after the proof: no gap
    time.sleep(0.05)
    with pytest.raises(MembershipInDoubt, match=r"did not run for 0\.\ds \(more than 0\.0s\)"):
        guard.tick()
    assert guard.stalls == 2 and answers == []
