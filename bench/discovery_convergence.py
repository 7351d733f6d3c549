"""Discovery convergence: how long the membership table takes to show a group's new owners.

    python bench/discovery_convergence.py [--brokers B | --kafka] [--rounds 5] [--members 3]
        [--partitions 6] [--heartbeat 1.0] [--session-timeout 6.0]

Without ``--brokers`` the dev broker is started (``--kafka``: a local Apache Kafka, see
bench/_common.py); the JSON names the broker. ``--members`` announcing click-count
processes (``python -m examples.clickcount process --advertise ...``, each an OS process) run
one group over a fresh input topic, and a ``discovery.Membership`` in this process follows a
fresh discovery topic. Each round measures two steps on that running group:

- **start**: from starting one more member process until the membership table shows the
  new owners: exactly the running processes are live, every partition is claimed active by
  exactly one of them, in state running, and every member owns at least one partition (when
  there are at least as many partitions as members). The clock includes the interpreter's
  start, the consumer-group join and rebalance, and the recovery of the moved partitions.
- **sigkill**: from SIGKILLing the oldest member until the killed member is gone from the
  table (3 missed heartbeats) and every partition is claimed active, running, by exactly one
  survivor. The group notices the death only after ``--session-timeout``.

So the group size goes N -> N+1 -> N in every round, on the same group and tables. Each
step also reports where its time goes, from the same clock: ``announced`` (the new member's
first announcement read), ``owning`` (it claims a partition), ``gone`` (the killed member
left the table), ``assigned`` and ``group`` (the processes' own stats files show every
partition assigned, then running: the group's view, before it travels over the discovery
topic); ``converged`` is the measured figure.

Between steps the group must stay converged for ``--settle`` seconds (not timed), and each
process's own stats file must agree with what the table says it owns. Processes are started
in their own session, die with this one (PR_SET_PDEATHSIG on Linux), and are all SIGKILLed
on exit. The last line printed is JSON with ``start_median_s`` and ``sigkill_median_s``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import goka  # noqa: E402
from bench._common import add_broker_arguments, broker_for, die_with_parent  # noqa: E402
from discovery import Membership  # noqa: E402
from goka import codec  # noqa: E402

POLL = 0.01
"""Seconds between looks at the membership table (its queries are cheap)."""


@dataclass
class Member:
    index: int
    endpoint: str
    stats: Path
    proc: subprocess.Popen[bytes]
    log: IO[bytes]

    def running_partitions(self, *, recovering: bool = False) -> set[int] | None:
        """The partitions its stats file shows running (or, with ``recovering``, also still
        recovering); None if it cannot be read yet."""
        states = {"running", "recovering"} if recovering else {"running"}
        try:
            stats = json.loads(self.stats.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return {int(p) for p, s in stats["partitions"].items() if s["state"] in states}

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class Cluster:
    """The member processes of one group; ``close()`` SIGKILLs every one still running."""

    args: argparse.Namespace
    brokers: str
    topic: str
    group: str
    discovery_topic: str
    workdir: Path
    members: list[Member] = field(default_factory=list)
    started: int = 0

    def start(self) -> Member:
        index = self.started
        self.started += 1
        endpoint = f"127.0.0.1:{47500 + index}"  # only announced: nothing listens on it
        stats = self.workdir / f"member-{index}.json"
        log = open(self.workdir / f"member-{index}.log", "wb")  # noqa: SIM115 - closed in close()
        command = [
            sys.executable, "-m", "examples.clickcount", "process",
            "--brokers", self.brokers,
            "--topic", self.topic,
            "--group", self.group,
            "--storage", str(self.workdir / f"store-{index}"),
            "--advertise", endpoint,
            "--discovery-topic", self.discovery_topic,
            "--heartbeat", str(self.args.heartbeat),
            "--stats-file", str(stats),
            "--stats-interval", "0.1",
            "--config", f"session.timeout.ms={round(self.args.session_timeout * 1000)}",
            "--config", f"heartbeat.interval.ms={round(self.args.group_heartbeat * 1000)}",
        ]  # fmt: skip
        try:
            proc = subprocess.Popen(
                die_with_parent(command),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                start_new_session=True,
            )
        except BaseException:
            log.close()
            raise
        member = Member(index, endpoint, stats, proc, log)
        self.members.append(member)
        return member

    def live(self) -> list[Member]:
        return [m for m in self.members if m.proc.poll() is None]

    def kill(self, member: Member) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(member.proc.pid, signal.SIGKILL)
        member.proc.wait(30)

    def close(self) -> None:
        for member in self.members:
            if member.proc.poll() is None:
                self.kill(member)
            member.log.close()


def active_claims(membership: Membership, table: str) -> dict[int, list[tuple[str, str]]]:
    """partition -> [(endpoint, state)] of every live member claiming it active. Counts the
    claims themselves, not ``owners()``, which would hide a conflict behind its winner."""
    claims: dict[int, list[tuple[str, str]]] = {}
    for member in membership.members():
        held = member.table(table)
        for info in held.partitions if held is not None else ():
            if info.kind == "active":
                claims.setdefault(info.partition, []).append((member.endpoint, info.state))
    return claims


def converged(
    membership: Membership, table: str, partitions: int, expected: set[str]
) -> dict[int, str] | None:
    """partition -> owner endpoint if the table shows ``expected`` as the live members, every
    partition active and running on exactly one of them and (with enough partitions) every
    member owning one; else None."""
    if {m.endpoint for m in membership.members()} != expected:
        return None
    claims = active_claims(membership, table)
    if sorted(claims) != list(range(partitions)):
        return None
    owners = {}
    for partition, held in claims.items():
        if len(held) != 1 or held[0][1] != "running" or held[0][0] not in expected:
            return None
        owners[partition] = held[0][0]
    if partitions >= len(expected) and set(owners.values()) != expected:
        return None
    return owners


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls ``condition`` every POLL seconds; returns the seconds it took."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)
    return time.perf_counter() - started


def describe(membership: Membership, table: str) -> str:
    claims = active_claims(membership, table)
    live = [m.endpoint for m in membership.members()]
    return f"live members {live}, active claims {dict(sorted(claims.items()))}"


class Bench:
    def __init__(self, args: argparse.Namespace, cluster: Cluster, membership: Membership) -> None:
        self.args = args
        self.cluster = cluster
        self.membership = membership
        self.table = goka.group_table(cluster.group)
        self.mismatches = 0
        self.relapses = 0

    def expected(self) -> set[str]:
        return {m.endpoint for m in self.cluster.live()}

    def announced(self) -> set[str]:
        return {m.endpoint for m in self.membership.members()}

    def claimed_by(self, endpoint: str) -> bool:
        claims = active_claims(self.membership, self.table)
        return any(endpoint in {e for e, _ in held} for held in claims.values())

    def owners(self) -> dict[int, str] | None:
        return converged(self.membership, self.table, self.args.partitions, self.expected())

    def settle(self, timeout: float, *, measured: bool = True) -> None:
        """Waits until the table stays converged for ``--settle`` seconds, then checks it
        against the members' own stats files. ``measured``: a step just saw it converge, so
        any change now means that step's time was taken too early (counted as a relapse)."""
        deadline = time.perf_counter() + timeout
        stable_since: float | None = None
        relapsed = False
        while True:
            now = time.perf_counter()
            if self.owners() is None:
                relapsed = measured
                stable_since = None
            elif stable_since is None:
                stable_since = now
            elif now - stable_since >= self.args.settle:
                break
            if now > deadline:
                self.fail(f"the group did not settle within {timeout:.0f}s")
            time.sleep(POLL)
        if relapsed:  # converged, then not: the time measured before may be too early
            self.relapses += 1
            print("  warning: the table converged, then changed again", file=sys.stderr)
        self.check_stats_files()

    def check_stats_files(self) -> None:
        """Every process's stats file (written every 0.1 s) shows what the table says."""
        owners = self.owners() or {}
        live = self.cluster.live()
        announced = {m.endpoint: {p for p, e in owners.items() if e == m.endpoint} for m in live}
        try:
            wait_for(
                lambda: all(m.running_partitions() == announced[m.endpoint] for m in live),
                5.0,
                "the stats files to agree with the membership table",
            )
        except TimeoutError:
            self.mismatches += 1
            held = {m.endpoint: m.running_partitions() for m in live}
            print(f"  warning: stats files {held} != table {announced}", file=sys.stderr)

    def fail(self, what: str) -> None:
        logs = "\n".join(
            f"--- member {m.index} ({m.endpoint}, exit {m.proc.poll()}):\n{m.log_tail()}"
            for m in self.cluster.members
        )
        raise SystemExit(f"{what}: {describe(self.membership, self.table)}\n{logs}")

    def group_converged(self, *, recovering: bool = False) -> bool:
        """The processes' own stats files show every partition running (or, with
        ``recovering``, at least assigned) on exactly one live member, and (with enough
        partitions) every member holding one: the group's view, before it travels over the
        discovery topic."""
        live = self.cluster.live()
        held = [m.running_partitions(recovering=recovering) for m in live]
        if any(h is None or (not h and self.args.partitions >= len(live)) for h in held):
            return False
        return sorted(p for h in held for p in h or ()) == list(range(self.args.partitions))

    def measure(
        self, what: str, started: float, conditions: dict[str, Callable[[], bool]]
    ) -> dict[str, float]:
        """Seconds from ``started`` until each condition first held; returns once all have."""
        timeout = 3 * self.args.heartbeat + self.args.session_timeout + self.args.timeout
        times: dict[str, float] = {}
        while True:
            now = time.perf_counter()
            for name, condition in conditions.items():
                if name not in times and condition():
                    times[name] = now - started
            if len(times) == len(conditions):
                return times
            if now - started > timeout:
                self.fail(f"{what}: no convergence within {timeout:.0f}s")
            time.sleep(POLL)

    def start_one(self) -> dict[str, float]:
        """Starts a member; seconds until it is announced, until it claims a partition, until
        the stats files show the new assignment, and until the table does."""
        started = time.perf_counter()
        member = self.cluster.start()
        return self.measure(
            "start",
            started,
            {
                "announced_s": lambda: member.endpoint in self.announced(),
                "owning_s": lambda: self.claimed_by(member.endpoint),
                "assigned_s": lambda: self.group_converged(recovering=True),
                "group_s": self.group_converged,
                "converged_s": lambda: self.owners() is not None,
            },
        )

    def kill_oldest(self) -> dict[str, float]:
        """SIGKILLs the oldest member; seconds until it is gone from the table, until the
        survivors' stats files show every partition, and until the table does."""
        victim = self.cluster.live()[0]
        started = time.perf_counter()
        self.cluster.kill(victim)
        return self.measure(
            "sigkill",
            started,
            {
                "gone_s": lambda: victim.endpoint not in self.announced(),
                "assigned_s": lambda: self.group_converged(recovering=True),
                "group_s": self.group_converged,
                "converged_s": lambda: self.owners() is not None,
            },
        )


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def run(args: argparse.Namespace, brokers: str) -> dict[str, object]:
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench-disc-clicks-{suffix}"
    group = f"bench-disc-counter-{suffix}"
    discovery_topic = f"bench-discovery-{suffix}"
    manager = goka.TopicManager(brokers)
    manager.ensure_stream(topic, args.partitions)
    with goka.Emitter(brokers, topic, codec.String()) as emitter:
        for i in range(args.messages):
            emitter.emit(f"user-{i % 300}", "click")
        emitter.flush()

    starts: list[dict[str, float]] = []
    kills: list[dict[str, float]] = []
    mismatches = relapses = 0
    try:
        with (
            tempfile.TemporaryDirectory(prefix="goka-bench-disc-") as workdir,
            Membership(brokers, discovery_topic) as membership,
        ):
            cluster = Cluster(args, brokers, topic, group, discovery_topic, Path(workdir))
            try:
                if not membership.wait_synced(30):
                    raise SystemExit("the membership table did not read the discovery topic")
                bench = Bench(args, cluster, membership)
                for _ in range(args.members):
                    cluster.start()
                bench.settle(
                    args.timeout + 60, measured=False
                )  # first start: imports, topic creation, join
                for round_ in range(1, args.rounds + 1):
                    start = bench.start_one()
                    bench.settle(args.timeout)
                    kill = bench.kill_oldest()
                    bench.settle(args.timeout)
                    starts.append(start)
                    kills.append(kill)
                    print(
                        f"round {round_}: start {start['converged_s']:.3f}s "
                        f"(announced {start['announced_s']:.3f}s, "
                        f"owning {start['owning_s']:.3f}s, assigned {start['assigned_s']:.3f}s, "
                        f"group {start['group_s']:.3f}s), sigkill {kill['converged_s']:.3f}s "
                        f"(gone {kill['gone_s']:.3f}s, assigned {kill['assigned_s']:.3f}s, "
                        f"group {kill['group_s']:.3f}s)",
                        flush=True,
                    )
                mismatches, relapses = bench.mismatches, bench.relapses
            finally:
                cluster.close()
    finally:
        if args.brokers:  # a shared broker: leave nothing behind (the dev broker goes anyway)
            with contextlib.suppress(Exception):
                manager.delete([topic, goka.group_table(group), discovery_topic])

    start_s = [s["converged_s"] for s in starts]
    sigkill_s = [k["converged_s"] for k in kills]
    start, sigkill = summary(start_s), summary(sigkill_s)
    print(f"start:   median {start['median']}s, min {start['min']}s, max {start['max']}s")
    print(f"sigkill: median {sigkill['median']}s, min {sigkill['min']}s, max {sigkill['max']}s")
    return {
        "benchmark": "discovery_convergence",
        "rounds": args.rounds,
        "members": args.members,
        "partitions": args.partitions,
        "heartbeat": args.heartbeat,
        "session_timeout": args.session_timeout,
        "group_heartbeat": args.group_heartbeat,
        "messages": args.messages,
        "start_median_s": start["median"],
        "start_min_s": start["min"],
        "start_max_s": start["max"],
        "start_s": [round(v, 3) for v in start_s],
        "start_announced_median_s": summary([s["announced_s"] for s in starts])["median"],
        "start_owning_median_s": summary([s["owning_s"] for s in starts])["median"],
        "start_assigned_median_s": summary([s["assigned_s"] for s in starts])["median"],
        "start_group_median_s": summary([s["group_s"] for s in starts])["median"],
        "sigkill_median_s": sigkill["median"],
        "sigkill_min_s": sigkill["min"],
        "sigkill_max_s": sigkill["max"],
        "sigkill_s": [round(v, 3) for v in sigkill_s],
        "sigkill_gone_median_s": summary([k["gone_s"] for k in kills])["median"],
        "sigkill_assigned_median_s": summary([k["assigned_s"] for k in kills])["median"],
        "sigkill_group_median_s": summary([k["group_s"] for k in kills])["median"],
        "stats_file_mismatches": mismatches,
        "relapses": relapses,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that kill members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_arguments(parser)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--members", type=int, default=3, help="members before each start")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--heartbeat", type=float, default=1.0, help="announcement interval")
    parser.add_argument("--session-timeout", type=float, default=6.0, help="seconds")
    parser.add_argument(
        "--group-heartbeat", type=float, default=0.5, help="consumer-group heartbeat, seconds"
    )
    parser.add_argument("--settle", type=float, default=2.0, help="stable seconds between steps")
    parser.add_argument("--messages", type=int, default=3000, help="clicks in the input")
    parser.add_argument("--timeout", type=float, default=60.0, help="slack per step, seconds")
    args = parser.parse_args()
    if args.rounds < 1 or args.members < 1 or args.partitions < 1:
        parser.error("--rounds, --members and --partitions must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)
    with broker_for(args) as broker:
        result = {"broker": broker.description, **run(args, broker.bootstrap)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
