"""Unit tests for the emitter's delivery futures (goka._delivery), without a broker.

The delivery report arrives on the emitter's poll thread while other threads wait for the
result or add callbacks. The two race tests below force the interleaving that used to lose
a wake-up (``result()`` hanging) or a callback: the poll thread decided that nobody waited
just before another thread started waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from goka._delivery import Delivery, DeliveryFuture, DeliveryWaiters
from goka.errors import DeliveryError

BOUND = 10.0  # seconds; only reached when a wake-up or callback is lost


class FakeMessage:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeError:
    def str(self) -> str:
        return "Broker: Message timed out"


def run_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_result_done_and_callbacks() -> None:
    future = DeliveryFuture(DeliveryWaiters(keep_failures=True), "message k")
    calls: list[DeliveryFuture] = []
    future.add_done_callback(calls.append)
    assert not future.done()
    with pytest.raises(TimeoutError, match="no acknowledgement for message k within 0.01s"):
        future.result(timeout=0.01)
    future._on_delivery(None, FakeMessage(2, 41))
    assert future.done()
    assert future.result() == Delivery(2, 41)
    assert future.exception() is None
    assert calls == [future]
    future.add_done_callback(calls.append)
    assert calls == [future, future]


def test_failed_delivery() -> None:
    future = DeliveryFuture(DeliveryWaiters(keep_failures=True), "the message with key 'k'")
    future._on_delivery(FakeError(), FakeMessage(0, -1001))
    assert future.done()
    error = future.exception()
    assert isinstance(error, DeliveryError)
    assert str(error) == "the message with key 'k' was not delivered: Broker: Message timed out"
    with pytest.raises(DeliveryError, match="not delivered"):
        future.result()


def ask_result(future: DeliveryFuture) -> None:
    with pytest.raises(DeliveryError):
        future.result(0)


@pytest.mark.parametrize(
    ("ask", "before_report"),
    [
        (lambda f: f.exception(0), False),
        (ask_result, False),
        (lambda f: f.add_done_callback(lambda _: None), False),
        (lambda f: f.add_done_callback(lambda _: None), True),
    ],
    ids=["exception", "result", "done_callback_after", "done_callback_before"],
)
def test_only_failures_nobody_asked_are_taken_and_each_once(
    ask: Callable[[DeliveryFuture], Any], before_report: bool
) -> None:
    waiters = DeliveryWaiters(keep_failures=True)
    asked, unasked, delivered = (DeliveryFuture(waiters, name) for name in "aud")
    if before_report:
        ask(asked)
    for future in (asked, unasked):
        future._on_delivery(FakeError(), FakeMessage(0, -1001))
    if not before_report:
        ask(asked)  # asked once failed, before the flush: the asker's to handle
    delivered._on_delivery(None, FakeMessage(0, 7))
    assert waiters.take_unobserved_failures() == [unasked]
    assert waiters.take_unobserved_failures() == []


def test_failures_are_not_kept_without_keep_failures() -> None:
    waiters = DeliveryWaiters(keep_failures=False)  # a transactional emitter's
    DeliveryFuture(waiters, "m")._on_delivery(FakeError(), FakeMessage(0, -1001))
    assert waiters.failed == []
    assert waiters.take_unobserved_failures() == []


def test_waiter_in_another_thread_is_woken() -> None:
    future = DeliveryFuture(DeliveryWaiters(keep_failures=True), "m")
    thread, outcome = run_in_thread(lambda: future.result(timeout=BOUND))
    future._on_delivery(None, FakeMessage(0, 1))
    thread.join(BOUND)
    assert outcome == {"result": Delivery(0, 1)}


class RacingWaiters(DeliveryWaiters):
    """When the delivering thread reads ``waiting`` (deciding whether to notify), a waiter
    thread first runs until it waits (or has its result)."""

    def __init__(self) -> None:
        super().__init__(keep_failures=True)
        self._count = 0
        self.deliverer: threading.Thread | None = None
        self.on_read: Callable[[], None] = lambda: None

    @property  # type: ignore[override]
    def waiting(self) -> int:
        value = self._count
        if threading.current_thread() is self.deliverer:
            self.deliverer = None
            self.on_read()
        return value

    @waiting.setter
    def waiting(self, value: int) -> None:
        self._count = value


def test_waiter_arriving_while_the_report_is_handled_is_not_lost() -> None:
    waiters = RacingWaiters()
    future = DeliveryFuture(waiters, "m")
    started: dict[str, Any] = {}

    def let_a_waiter_in() -> None:
        # no timeout: a lost wake-up hangs the waiter (Condition.wait_for would otherwise
        # re-check the flag when its timeout expires and hide the bug)
        thread, outcome = run_in_thread(future.result)
        started.update(thread=thread, outcome=outcome)
        # the waiter holds the lock until it waits (releasing it) or returns
        while thread.is_alive() and waiters._count == 0:
            thread.join(0.001)
        with waiters.cond:
            pass

    waiters.on_read = let_a_waiter_in
    waiters.deliverer = threading.current_thread()
    future._on_delivery(None, FakeMessage(1, 5))
    started["thread"].join(BOUND)
    assert not started["thread"].is_alive(), "the waiter was never woken"
    assert started["outcome"] == {"result": Delivery(1, 5)}


class RacingFuture(DeliveryFuture):
    """When the delivering thread reads the callbacks (deciding whether to run them), another
    thread first adds a callback."""

    __slots__ = ("_hook", "_stored")

    def __init__(self, waiters: DeliveryWaiters) -> None:
        self._hook: Callable[[], None] | None = None
        super().__init__(waiters, "m")

    @property  # type: ignore[override]
    def _callbacks(self) -> Any:
        value = self._stored
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()
        return value

    @_callbacks.setter
    def _callbacks(self, value: Any) -> None:
        self._stored = value


def test_callback_added_while_the_report_is_handled_runs_exactly_once() -> None:
    future = RacingFuture(DeliveryWaiters(keep_failures=True))
    calls: list[DeliveryFuture] = []
    added: list[threading.Thread] = []

    def add_from_another_thread() -> None:
        thread, _ = run_in_thread(lambda: future.add_done_callback(calls.append))
        thread.join(BOUND)
        added.append(thread)

    future._hook = add_from_another_thread
    future._on_delivery(None, FakeMessage(0, 9))
    assert len(added) == 1
    assert calls == [future]
    assert future.result(timeout=BOUND) == Delivery(0, 9)


def test_many_threads_wait_and_add_callbacks() -> None:
    waiters = DeliveryWaiters(keep_failures=True)
    futures = [DeliveryFuture(waiters, f"m{i}") for i in range(200)]
    calls = [0] * len(futures)
    lock = threading.Lock()

    def count(i: int) -> Callable[[DeliveryFuture], None]:
        def callback(future: DeliveryFuture) -> None:
            with lock:
                calls[i] += 1

        return callback

    def consume() -> list[Delivery]:
        results = []
        for i, future in enumerate(futures):
            future.add_done_callback(count(i))
            results.append(future.result(timeout=BOUND))
        return results

    threads = [run_in_thread(consume) for _ in range(4)]
    for i, future in enumerate(futures):
        future._on_delivery(None, FakeMessage(0, i))
    for thread, outcome in threads:
        thread.join(BOUND)
        assert outcome == {"result": [Delivery(0, i) for i in range(len(futures))]}
    assert calls == [4] * len(futures)
