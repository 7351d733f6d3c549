"""Committed offsets and ``ctx.defer_commit()`` in the tester."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import goka
from goka import codec
from goka.context import Completion
from goka.errors import ConfigError, GokaError, ProcessorError
from goka.graph import visitor
from goka.partitioner import murmur2
from goka.tester import Tester


def deferring(completions: dict[str, Completion]) -> goka.GroupGraph:
    def handle(ctx: goka.Context, msg: str) -> None:
        ctx.set_value(msg)
        completions[msg] = ctx.defer_commit()

    return goka.define_group(
        "g",
        goka.input("jobs", codec.String(), handle),
        goka.persist(codec.String()),
        visitor("touch", lambda ctx, meta: ctx.defer_commit()),
    )


def test_committed_is_none_before_anything_was_processed() -> None:
    tester = Tester(partitions=2)
    tester.add_processor(deferring({}))
    assert tester.committed("g", "jobs", 0) is None
    assert tester.committed("g", "jobs", 1) is None


def test_commit_stays_behind_the_first_message_with_uncalled_completions() -> None:
    tester = Tester(partitions=4)
    completions: dict[str, Completion] = {}
    tester.add_processor(deferring(completions))
    partition = murmur2(b"k", 4)
    for job in ("j0", "j1", "j2"):
        tester.consume("jobs", "k", job)
    assert tester.table("g-table").get("k") == "j2"  # writes are not held back, only commits
    assert tester.committed("g", "jobs", partition) == 0
    completions["j1"]()
    assert tester.committed("g", "jobs", partition) == 0  # j0 is still open
    completions["j0"]()
    assert tester.committed("g", "jobs", partition) == 2  # j2 is still open
    completions["j2"]()
    assert tester.committed("g", "jobs", partition) == 3


def test_several_completions_of_one_message_all_count() -> None:
    tester = Tester()
    completions: list[Completion] = []

    def twice(ctx: goka.Context, msg: str) -> None:
        completions.extend([ctx.defer_commit(), ctx.defer_commit()])

    tester.add_processor(goka.define_group("g", goka.input("jobs", codec.String(), twice)))
    tester.consume("jobs", "k", "j")
    completions[0]()
    assert tester.committed("g", "jobs", 0) == 0
    completions[1]()
    assert tester.committed("g", "jobs", 0) == 1


def test_a_completion_may_be_called_from_another_thread_once() -> None:
    tester = Tester()
    completions: dict[str, Completion] = {}
    tester.add_processor(deferring(completions))
    tester.consume("jobs", "k", "j0")
    thread = threading.Thread(target=completions["j0"])
    thread.start()
    thread.join()
    assert tester.committed("g", "jobs", 0) == 1
    with pytest.raises(GokaError, match="already called"):
        completions["j0"]()


def test_a_completion_with_an_error_fails_the_next_consume() -> None:
    tester = Tester()
    completions: dict[str, Completion] = {}
    tester.add_processor(deferring(completions))
    tester.consume("jobs", "k", "j0")
    tester.consume("jobs", "k", "j1")
    error = TimeoutError("the mail server did not answer")
    completions["j0"](error)
    completions["j1"]()
    with pytest.raises(ProcessorError) as info:
        tester.consume("jobs", "k", "j2")
    assert info.value.__cause__ is error
    assert "deferred commit of the message at topic 'jobs' partition 0 offset 0" in str(info.value)
    assert tester.committed("g", "jobs", 0) == 0  # never past the failed message
    assert tester.table("g-table").get("k") == "j1"  # j2 was not put in: the call failed first
    tester.consume("jobs", "k", "j2")  # the error was raised once
    assert tester.table("g-table").get("k") == "j2"


def test_a_completion_failing_during_consume_raises_from_that_consume() -> None:
    tester = Tester()
    error = RuntimeError("rejected")

    def rejecting(ctx: goka.Context, msg: str) -> None:
        ctx.set_value(msg)
        ctx.defer_commit()(error)

    tester.add_processor(
        goka.define_group(
            "g", goka.input("jobs", codec.String(), rejecting), goka.persist(codec.String())
        )
    )
    with pytest.raises(ProcessorError) as info:
        tester.consume("jobs", "k", "j0")
    assert info.value.__cause__ is error
    assert tester.committed("g", "jobs", 0) == 0


def test_defer_commit_in_a_visit_is_refused() -> None:
    tester = Tester()
    processor = tester.add_processor(deferring({}))
    tester.consume("jobs", "k", "j0")
    with pytest.raises(ProcessorError) as info:
        processor.visit_all("touch")
    assert isinstance(info.value.__cause__, ConfigError)
    assert "a visit has no offset" in str(info.value.__cause__)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody", "jobs", 0), r"group 'nobody' is not added to the tester \(added: \['g'\]\)"),
        (("g", "other", 0), "topic 'other' is not an input"),
        (("g", "jobs", 2), r"'jobs' has partitions 0..1, not 2"),
    ],
)
def test_committed_checks_its_arguments(args: tuple[Any, ...], message: str) -> None:
    tester = Tester(partitions=2)
    tester.add_processor(deferring({}))
    with pytest.raises(ConfigError, match=message):
        tester.committed(*args)
