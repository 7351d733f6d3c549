"""A partition owner SIGKILLed under load, and its partitions taken over by their standbys:
the scenario of tests/e2e/test_takeover.py and bench/takeover.py.

Three click-count processors (``--standby-replicas 1``, stats files) over ``partitions``
partitions and a router, on a table of ``preload`` clicks; clicks go on at about 200 a second
and every partition's key is read with consistency ACTIVE as fast as it goes. The member
owning partition 0 is SIGKILLed (the one whose leaving makes the ``range`` assignor move the
most: the others shift down too). Recorded per partition that changed owner: the standby it
had before the kill, its new owner, the seconds from the kill until its ACTIVE reads
succeeded again, and the rows its new owner replayed against the rows of its table.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

import goka
from goka import codec
from tests.conftest import ProcessGroup
from tests.support.clickcount import partition_stats, stats_of
from tests.support.serving import Deployment, wait_until
from tests.support.traffic import Read, Traffic

__all__ = ["Moved", "TakeoverRun", "run_takeover"]

MEMBERS = 3
BOUND = 90.0
"""Bounds every wait of the scenario."""


@dataclass(frozen=True)
class Moved:
    """A partition that changed owner."""

    partition: int
    owner: str
    """Its owner before the kill (processor name)."""
    standby: str | None
    """Its caught-up standby before the kill."""
    heir: str
    """Its owner after."""
    back_after_s: float
    """From the SIGKILL until its ACTIVE reads succeeded again."""
    failed_reads: int
    replayed: int
    """Rows the heir replayed to run it."""
    table_rows: int
    """Rows of its table partition at the kill (the end offset the heir runs from)."""


@dataclass(frozen=True)
class TakeoverRun:
    session_timeout_s: float
    """The group's session timeout, as the processors report it."""
    killed: str
    moved: list[Moved]

    def describe(self) -> str:
        worst = max(m.back_after_s for m in self.moved)
        replayed = sum(m.replayed for m in self.moved)
        rows = sum(m.table_rows for m in self.moved)
        return (
            f"killed {self.killed}: {len(self.moved)} partitions moved, ACTIVE reads back "
            f"after {worst:.2f} s at worst (session timeout {self.session_timeout_s:g} s); "
            f"replayed {replayed:,} of {rows:,} rows; "
            f"on their standby: {sum(m.heir == m.standby for m in self.moved)}"
        )


def run_takeover(
    brokers: str,
    root: Path,
    *args: str,
    partitions: int = 8,
    preload: int = 20_000,
) -> TakeoverRun:
    """The scenario; ``args`` go to every processor's command line."""
    deployment = Deployment(brokers, ProcessGroup(), root, partitions=partitions)
    traffic = None
    try:
        deployment.start_processors(MEMBERS, "--standby-replicas", "1", *args, stats=True)
        with goka.Emitter(brokers, deployment.topic, codec.String()) as emitter:
            for i in range(preload):
                emitter.emit(f"user-{i % (preload // 4 or 1)}", "click")
        deployment.start_view_and_router(views=0)
        names = {node.endpoint: node.name for node in deployment.processors()}
        wait_until(
            lambda: deployment.settled() and _standbys(deployment, names, partitions) is not None,
            BOUND,
            f"a caught-up standby per partition: {deployment.describe()}",
        )
        router = deployment.nodes["router"].endpoint
        traffic = Traffic(brokers, deployment.topic, deployment.table, [router], partitions,
                          "active")  # fmt: skip
        time.sleep(1.0)  # reads and counts flow
        owners = {p: names[e] for p, e in deployment.active_owners().items()}
        standbys = _standbys(deployment, names, partitions) or {}
        killed = owners[0]
        rows = {
            int(p): s["table"]["offset"] or 0
            for name in names.values()
            if name != killed
            for p, s in partition_stats(deployment.stats_file(name)).items()
            if int(p) in standbys and standbys[int(p)] == name
        }
        node = deployment.nodes[killed]
        node.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        node.proc.wait(30)
        deployment.wait_settled(BOUND)
        time.sleep(1.0)  # reads go on on the new owners
        traffic.stop()
        after = {p: names[e] for p, e in deployment.active_owners().items()}
        moved = []
        for partition in sorted(p for p in range(partitions) if after[p] != owners[p]):
            heir = after[partition]
            held = partition_stats(deployment.stats_file(heir))[str(partition)]
            back, failed = _back_after(traffic.reads[partition], killed_at)
            moved.append(
                Moved(
                    partition, owners[partition], standbys.get(partition), heir,
                    back - killed_at, failed, int(held["recovered_records"]),
                    rows.get(partition, int(held["table"]["offset"] or 0)),
                )
            )  # fmt: skip
        survivor = next(n for n in names.values() if n != killed)
        session = stats_of(deployment.stats_file(survivor))["session_timeout_ms"] / 1000
        return TakeoverRun(session, killed, moved)
    finally:
        if traffic is not None:
            traffic.stop()
        deployment.close()


def _standbys(
    deployment: Deployment, names: dict[str, str], partitions: int
) -> dict[int, str] | None:
    """partition -> the processor holding its caught-up standby, if every partition has one."""
    found = {}
    for partition in range(partitions):
        standbys = [
            o.endpoint
            for o in deployment.membership.owners(deployment.table, partition)
            if o.kind == "standby" and o.state == "running" and o.endpoint in names
        ]
        if len(standbys) != 1:
            return None
        found[partition] = names[standbys[0]]
    return found


def _back_after(reads: list[Read], killed_at: float) -> tuple[float, int]:
    """When the reads of a partition succeeded again after ``killed_at`` (the first success
    after the last failure), and how many failed in between."""
    failures = [at for at, count, _ in reads if count is None and at >= killed_at]
    last_failure = max(failures, default=killed_at)
    back = min(at for at, count, _ in reads if count is not None and at > last_failure)
    return back, len(failures)
