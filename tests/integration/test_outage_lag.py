"""While no broker can be reached, the lag of what a view or a processor holds is unknown
(-1 to readers, None in stats), never 0, so ``max_lag`` reads and ``--ready-max-lag`` health
do not pass on data that may be stale; it is known again once the brokers are back (the
outage: see tests/support/outage.py)."""

from __future__ import annotations

import pytest

import goka
from goka import codec
from tests.conftest import RunningProcessor, unique
from tests.support.counting_member import count
from tests.support.outage import Outage
from tests.support.serving import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TIMEOUT = 60.0
PARTITIONS = 2
LONG_SESSION = {"session.timeout.ms": 20_000, "heartbeat.interval.ms": 1000}
"""Outlasts the outage (lag unknown within 5 s of the cut, see goka._reachability); not
longer, as Tansu completes a group join only after half the session timeout."""


def test_lag_is_unknown_while_the_brokers_cannot_be_reached(
    with_outage: tuple[str, Outage],
) -> None:
    brokers, outage = with_outage
    topic, group = unique("clicks"), unique("lag")
    goka.TopicManager(brokers).ensure_stream(topic, PARTITIONS)

    graph = goka.define_group(
        group, goka.input(topic, codec.String(), count), goka.persist(codec.Int64())
    )
    # a session that outlasts the outage: a member whose session timed out holds no
    # partitions, and so has no lag to report (known or not)
    runner = RunningProcessor(goka.Processor(brokers, graph, extra_config=LONG_SESSION))
    goka.TopicManager(brokers).wait_for(goka.group_table(group), TIMEOUT)  # the processor's
    view = goka.View(brokers, goka.group_table(group), codec.Int64()).start()
    try:
        with goka.Emitter(brokers, topic, codec.String()) as emitter:
            for i in range(20):
                emitter.emit_sync(f"user-{i}", "x")

        def view_lags() -> list[int]:
            return [h.lag for h in view.local_table().held().values()]

        def table_lags() -> list[object]:
            partitions = runner.processor.stats()["partitions"].values()
            return [p.get("table", {}).get("lag") for p in partitions]

        def lags() -> str:
            return (
                f"view lags {view_lags()} (unreachable for {view.unreachable_for():.1f}s), "
                f"table lags {table_lags()} (unreachable for "
                f"{runner.processor.stats()['brokers_unreachable_s']}s)"
            )

        # every click counted: no batch is still on its way to the changelog when the outage
        # begins (over an empty table every lag is 0 already)
        counted = {f"user-{i}": 1 for i in range(20)}
        wait_until(lambda: view.wait_running(0) and dict(view.items()) == counted
                   and view_lags() == [0] * PARTITIONS and table_lags() == [0] * PARTITIONS,
                   TIMEOUT, "caught up")  # fmt: skip
        with outage():
            try:
                wait_until(lambda: view_lags() == [-1] * PARTITIONS and table_lags() == [None] *
                           PARTITIONS, TIMEOUT, "view and table lag unknown")  # fmt: skip
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {lags()}") from exc
            assert runner.processor.stats()["brokers_unreachable_s"] > 0
        try:
            wait_until(lambda: view_lags() == [0] * PARTITIONS, TIMEOUT, "view lag known again")
        except AssertionError as exc:  # which of the two makes it unknown, for the record
            reader = view._reader
            highs = reader.high_watermarks if reader is not None else None
            raise AssertionError(
                f"{exc}: {lags()}, high watermarks {highs}, view state {view.state}, "
                f"error {view.error!r}"
            ) from exc
        wait_until(lambda: table_lags() == [0] * PARTITIONS, TIMEOUT, "table lag known again")
        assert runner.processor.stats()["brokers_unreachable_s"] == 0.0
        assert runner.error is None
    finally:
        view.stop()
        assert runner.stop() is None
