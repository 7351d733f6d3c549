"""The one failover rule (viewsvc.wire.failover): best first within one deadline, retryable
codes pass the read on, any other status is the answer, grouped calls regroup by the next
candidate."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from viewsvc.wire.failover import Exhausted, first_answer, grouped, retryable


class Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details or code.name.lower()

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


UNAVAILABLE, CANCELLED = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED


def later(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


def test_retryable_codes_are_unavailable_and_cancelled_only() -> None:
    assert [c for c in grpc.StatusCode if retryable(c)] == [CANCELLED, UNAVAILABLE]
    assert not retryable(None)


def test_first_answer_tries_in_order_until_one_answers() -> None:
    calls: list[tuple[str, float]] = []

    def call(endpoint: str, timeout: float) -> str:
        calls.append((endpoint, timeout))
        if endpoint in ("a", "b"):
            raise Failed(UNAVAILABLE if endpoint == "a" else CANCELLED)
        return f"answer of {endpoint}"

    assert first_answer(["a", "b", "c", "d"], call, later()) == "answer of c"
    assert [e for e, _ in calls] == ["a", "b", "c"]
    assert all(0 < timeout <= 10.0 for _, timeout in calls)


def test_first_answer_raises_any_other_status_as_it_came() -> None:
    refused = Failed(grpc.StatusCode.NOT_FOUND, "no such table")
    tried: list[str] = []

    def call(endpoint: str, timeout: float) -> str:
        tried.append(endpoint)
        raise refused if endpoint == "b" else Failed(UNAVAILABLE)

    with pytest.raises(Failed) as info:
        first_answer(["a", "b", "c"], call, later())
    assert info.value is refused
    assert tried == ["a", "b"]


def test_first_answer_exhausted_names_every_failure() -> None:
    def call(endpoint: str, timeout: float) -> str:
        raise Failed(UNAVAILABLE, f"{endpoint} is down")

    with pytest.raises(Exhausted) as info:
        first_answer(["a", "b"], call, later())
    exhausted = info.value
    assert exhausted.candidates == ["a", "b"]
    assert [(e, f.details()) for e, f in exhausted.failures] == [
        ("a", "a is down"),
        ("b", "b is down"),
    ]
    assert not exhausted.deadline_passed
    assert exhausted.last is exhausted.failures[-1][1]
    assert str(exhausted) == "a: a is down; b: b is down"


def test_first_answer_stops_at_the_deadline() -> None:
    with pytest.raises(Exhausted) as info:
        first_answer(["a"], lambda e, t: "never", time.monotonic() - 1)
    assert info.value.deadline_passed
    assert info.value.failures == []


Start = Callable[[str, list[int], float], Callable[[], object]]


def start_from(
    answers: dict[str, Callable[[list[int]], object]], log: list[tuple[str, list[int]]]
) -> Start:
    def start(endpoint: str, items: list[int], timeout: float) -> Callable[[], object]:
        log.append((endpoint, sorted(items)))
        return lambda: answers[endpoint](items)

    return start


def down(items: list[int]) -> object:
    raise Failed(UNAVAILABLE)


def test_grouped_sends_one_call_per_endpoint_and_regroups_failed_items() -> None:
    log: list[tuple[str, list[int]]] = []
    answers = {"a": down, "b": lambda items: sorted(items), "c": lambda items: sorted(items)}
    routes = {0: ["a", "b"], 1: ["a", "c"], 2: ["b"], 3: ["c", "a"]}
    sent = grouped(routes, start_from(answers, log), later())
    assert sorted(log[:3]) == [("a", [0, 1]), ("b", [2]), ("c", [3])]
    assert sorted(log[3:]) == [("b", [0]), ("c", [1])]
    got = {(s.endpoint, tuple(s.items)): s.answer for s in sent}
    assert got == {("b", (2,)): [2], ("c", (3,)): [3], ("b", (0,)): [0], ("c", (1,)): [1]}


def test_grouped_exhausted_names_the_item_and_discards_what_was_received() -> None:
    discarded: list[object] = []
    answers = {"a": down, "b": lambda items: ("stream", tuple(items))}
    routes = {0: ["a"], 1: ["b"]}
    with pytest.raises(Exhausted) as info:
        grouped(routes, start_from(answers, []), later(), discard=discarded.append)
    assert info.value.item == 0
    assert info.value.candidates == ["a"]
    assert discarded == [("stream", (1,))]


def test_grouped_raises_a_refusal_after_the_round_and_discards() -> None:
    refused = Failed(grpc.StatusCode.PERMISSION_DENIED)

    def refuse(items: list[int]) -> object:
        raise refused

    discarded: list[object] = []
    answers = {"a": refuse, "b": lambda items: "open"}
    with pytest.raises(Failed) as info:
        grouped(
            {0: ["a", "b"], 1: ["b"]}, start_from(answers, []), later(), discard=discarded.append
        )
    assert info.value is refused
    assert discarded == ["open"]
