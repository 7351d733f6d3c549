"""The documented example of ``goka.tester``: unit-test a processor group without Kafka.

Copy this file to test your own groups. The tester runs the group's callbacks synchronously:
when ``tester.consume(...)`` returns, the message and everything it caused (emits to other
groups, loopbacks) has been processed, so a test needs no sleeping or polling.

- ``tester.consume(topic, key, value)`` puts a message in (encoded with the input's codec);
- ``tester.table(table)`` reads and presets the group table;
- ``tester.output_tracker(topic)`` reads what the group emitted, message by message;
- a failing callback raises ``goka.errors.ProcessorError`` from ``consume``.
"""

from __future__ import annotations

import pytest

import goka
from goka import codec
from goka.errors import ProcessorError
from goka.tester import Tester

ALERT_EVERY = 3


def count_click(ctx: goka.Context, page: str) -> None:
    """Count the user's clicks; every third click, alert with the page clicked."""
    if not page:
        raise ValueError("a click needs a page")
    clicks = (ctx.value() or 0) + 1
    ctx.set_value(clicks)
    if clicks % ALERT_EVERY == 0:
        ctx.emit("alerts", ctx.key, {"clicks": clicks, "page": page})


def define_counter() -> goka.GroupGraph:
    return goka.define_group(
        "click-counter",
        goka.input("clicks", codec.String(), count_click),
        goka.output("alerts", codec.JSON()),
        goka.persist(codec.Int64()),
    )


@pytest.fixture
def tester() -> Tester:
    tester = Tester(partitions=4)  # the clicks topic and the table get 4 partitions
    tester.add_processor(define_counter())
    return tester


def test_counts_clicks_per_user(tester: Tester) -> None:
    for user in ["ann", "bob", "ann"]:
        tester.consume("clicks", user, "/home")
    table = tester.table("click-counter-table")
    assert table.items() == [("ann", 2), ("bob", 1)]


def test_alerts_every_third_click(tester: Tester) -> None:
    alerts = tester.output_tracker("alerts")  # reads what is emitted from now on
    for page in ["/a", "/b", "/c", "/d"]:
        tester.consume("clicks", "ann", page)
    alert = alerts.next()
    assert alert is not None
    assert (alert.key, alert.value) == ("ann", {"clicks": 3, "page": "/c"})
    alerts.expect_empty()


def test_starts_from_a_preset_state(tester: Tester) -> None:
    tester.table("click-counter-table").set("bob", 41)
    alerts = tester.output_tracker("alerts")
    tester.consume("clicks", "bob", "/x")
    assert tester.table("click-counter-table").get("bob") == 42
    assert alerts.next() is not None


def test_a_bad_click_fails_the_processor(tester: Tester) -> None:
    with pytest.raises(ProcessorError, match="a click needs a page"):
        tester.consume("clicks", "ann", "")
    assert tester.table("click-counter-table").get("ann") is None
