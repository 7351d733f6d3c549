"""A light future for emitted messages (``concurrent.futures.Future`` costs more than the
produce call itself). All futures of one emitter share one condition variable, which is only
notified when some thread waits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from goka.errors import DeliveryError

__all__ = ["Delivery", "DeliveryFuture", "DeliveryWaiters"]


class Delivery(NamedTuple):
    """Where an emitted message was written."""

    partition: int
    offset: int


class DeliveryWaiters:
    def __init__(self, *, keep_failures: bool) -> None:
        self.cond = threading.Condition()
        self.waiting = 0
        self.keep_failures = keep_failures
        """Keep the failed futures for the emitter's ``flush`` (not for a transactional one:
        its ``commit`` reports failures, and an abort fails its messages on purpose)."""
        self.failed: list[DeliveryFuture] = []
        """The futures whose message failed since the emitter's last flush (under ``cond``)."""

    def take_unobserved_failures(self) -> list[DeliveryFuture]:
        """The failed futures nobody has asked for their outcome since the last call."""
        with self.cond:
            failed, self.failed = self.failed, []
        return [future for future in failed if not future._observed]


class DeliveryFuture:
    """The outcome of one emitted message: ``result()`` is its :class:`Delivery`.

    ``result()`` and ``exception()`` wait (up to ``timeout`` seconds) for the broker's
    acknowledgement; ``result()`` raises DeliveryError if the message was not delivered.
    """

    __slots__ = ("_callbacks", "_describe", "_done", "_error", "_observed", "_result", "_waiters")

    def __init__(self, waiters: DeliveryWaiters, describe: object) -> None:
        self._waiters = waiters
        self._describe = describe
        self._done = False
        self._result: Delivery | None = None
        self._error: DeliveryError | None = None
        self._callbacks: list[Callable[[DeliveryFuture], Any]] | None = None
        self._observed = False
        """Its outcome was asked for (``result``, ``exception``, a done callback): a failure
        is then the asker's to handle, and the emitter's ``flush`` does not report it."""

    def done(self) -> bool:
        return self._done

    def result(self, timeout: float | None = None) -> Delivery:
        self._observed = True
        self._wait(timeout)
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def exception(self, timeout: float | None = None) -> DeliveryError | None:
        self._observed = True
        self._wait(timeout)
        return self._error

    def add_done_callback(self, fn: Callable[[DeliveryFuture], Any]) -> None:
        """Call ``fn(future)`` once the outcome is known (at once if it already is)."""
        self._observed = True
        with self._waiters.cond:
            self._callbacks = [*(self._callbacks or []), fn]
            if not self._done:
                return  # _on_delivery reads the callbacks after setting _done: it runs fn
            # delivered: run fn here (with any callback _on_delivery has not taken yet)
            callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks:
            callback(self)

    def _wait(self, timeout: float | None) -> None:
        if self._done:
            return
        waiters = self._waiters
        with waiters.cond:
            waiters.waiting += 1
            try:
                if not waiters.cond.wait_for(lambda: self._done, timeout):
                    raise TimeoutError(f"no acknowledgement for {self._describe} within {timeout}s")
            finally:
                waiters.waiting -= 1

    def _on_delivery(self, error: Any, msg: Any) -> None:
        """librdkafka's delivery report (called from the emitter's poll thread)."""
        waiters = self._waiters
        if error is not None:
            self._error = DeliveryError(f"{self._describe} was not delivered: {error.str()}")
            if waiters.keep_failures:
                with waiters.cond:  # rare: the lock costs nothing on the delivered path
                    waiters.failed.append(self)
        else:
            self._result = Delivery(msg.partition(), msg.offset())
        # Set _done before reading `waiting` and `_callbacks` (which other threads change
        # before reading _done): a thread that starts waiting or adds a callback meanwhile
        # either sees _done or is seen here, never neither.
        self._done = True
        if waiters.waiting or self._callbacks:
            with waiters.cond:
                callbacks, self._callbacks = self._callbacks, None
                waiters.cond.notify_all()
            for fn in callbacks or ():
                fn(self)
