"""Sending a read to candidates best first, within one overall deadline: the one failover
rule of the smart client and of a node forwarding a read.

A candidate that cannot be reached, or answers a retryable code (see :func:`retryable`), passes
the read to the next candidate with the time that is left; any other error is the answer and
is raised as it came (a ``grpc.RpcError``). When no candidate is left, or the deadline passes
first, :class:`Exhausted` says what was tried; each caller turns it into its own error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc

__all__ = ["Exhausted", "Sent", "first_answer", "grouped", "retryable"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})


def retryable(code: grpc.StatusCode | None) -> bool:
    """Whether a read that failed with ``code`` goes to the next candidate: UNAVAILABLE, or
    CANCELLED, which a blocking call only gets from the server (a draining server cancels
    calls it accepted but had not started). Reads are idempotent, so retrying is safe."""
    return code in _RETRYABLE


class Exhausted(Exception):
    """No candidate answered.

    ``candidates`` are the endpoints the read had, best first; ``failures`` the (endpoint,
    error) of those that failed with a retryable code, in order; ``deadline_passed`` says the
    deadline came before the next candidate; ``item`` is the item whose candidates ran out
    (for :func:`grouped`; else None).
    """

    def __init__(
        self,
        candidates: Sequence[str],
        failures: Sequence[tuple[str, grpc.RpcError]],
        *,
        deadline_passed: bool,
        item: object = None,
    ) -> None:
        self.candidates = list(candidates)
        self.failures = list(failures)
        self.deadline_passed = deadline_passed
        self.item = item
        super().__init__(self.describe())

    @property
    def last(self) -> grpc.RpcError | None:
        return self.failures[-1][1] if self.failures else None

    def describe(self) -> str:
        """What was tried, for an error message: ``endpoint: details; ...``."""
        return "; ".join(f"{endpoint}: {error.details()}" for endpoint, error in self.failures)


def first_answer(endpoints: Sequence[str], call: Callable[[str, float], T], deadline: float) -> T:
    """``call(endpoint, timeout)`` on each endpoint in turn until one answers."""
    failures: list[tuple[str, grpc.RpcError]] = []
    for endpoint in endpoints:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Exhausted(endpoints, failures, deadline_passed=True)
        try:
            return call(endpoint, left)
        except grpc.RpcError as exc:
            if not retryable(exc.code()):
                raise
            failures.append((endpoint, exc))
    raise Exhausted(endpoints, failures, deadline_passed=False)


@dataclass(frozen=True, slots=True)
class Sent(Generic[K, T]):
    """The answer of one endpoint for its ``items``."""

    endpoint: str
    items: list[K]
    answer: T


def grouped(
    routes: Mapping[K, Sequence[str]],
    start: Callable[[str, list[K], float], Callable[[], T]],
    deadline: float,
    *,
    discard: Callable[[T], None] | None = None,
) -> list[Sent[K, T]]:
    """One call per endpoint for the items whose best remaining candidate it is, all in
    flight at once; the items of an endpoint that failed with a retryable code go again,
    grouped by their next candidate.

    ``routes`` maps each item (a key's index, a partition) to its candidates, best first.
    ``start(endpoint, items, timeout)`` starts a call and returns a function that waits for
    its answer (raising ``grpc.RpcError``). If the whole read fails, ``discard`` is called
    with each answer already received (to cancel a stream, say).
    """
    left_routes = {item: list(candidates) for item, candidates in routes.items()}
    failures: dict[K, list[tuple[str, grpc.RpcError]]] = {item: [] for item in routes}
    sent: list[Sent[K, T]] = []
    pending = list(routes)
    try:
        while pending:
            groups: dict[str, list[K]] = {}
            for item in pending:
                if not left_routes[item]:
                    raise Exhausted(routes[item], failures[item], deadline_passed=False, item=item)
                groups.setdefault(left_routes[item][0], []).append(item)
            left = deadline - time.monotonic()
            if left <= 0:
                first = pending[0]
                raise Exhausted(routes[first], failures[first], deadline_passed=True, item=first)
            waiting = [
                (endpoint, items, start(endpoint, items, left))
                for endpoint, items in groups.items()
            ]
            pending, refused = [], None
            for endpoint, items, wait in waiting:
                try:
                    sent.append(Sent(endpoint, items, wait()))
                except grpc.RpcError as exc:
                    if not retryable(exc.code()):
                        refused = refused or exc
                        continue
                    for item in items:
                        left_routes[item].pop(0)
                        failures[item].append((endpoint, exc))
                    pending.extend(items)
            if refused is not None:
                raise refused
    except BaseException:
        if discard is not None:
            for answer in sent:
                discard(answer.answer)
        raise
    return sent
