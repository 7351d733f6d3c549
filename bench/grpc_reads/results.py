"""The targets of the gRPC read benchmark, its verdicts and tables, and its record in
bench/RESULTS.md."""

from __future__ import annotations

import argparse
import shlex
import sys

import grpc
import lmdb

from bench._common import Broker, add_to_results, machine
from bench.grpc_reads.load import CONCURRENCY

__all__ = ["TARGETS", "figures_table", "machine_description", "record", "verdict_table", "verdicts"]

TARGETS = {
    "local_vs_ceiling": 0.90,  # local Get req/s >= 90% of the ceiling's, at each concurrency
    "forwarded_p50_vs_bare_forwarder": 1.1,  # forwarded p50 <= 1.1x the bare forwarder's p50
    "get_many_keys_per_s": 100_000,
    "scan_rows_per_s": 200_000,
}


def verdicts(rows: dict[str, dict[str, float]]) -> list[tuple[str, str, str, bool | None]]:
    """(figure, measured, target, met) for each target; met None for a reference figure."""
    out: list[tuple[str, str, str, bool | None]] = []
    for c in CONCURRENCY:
        ceiling, local = rows[f"get_ceiling_c{c}"], rows[f"get_local_c{c}"]
        forwarded = rows[f"get_forwarded_c{c}"]
        share = local["per_s"] / ceiling["per_s"]
        out.append((f"local Get req/s / ceiling, c={c}", f"{share:.1%}",
                    f">= {TARGETS['local_vs_ceiling']:.0%}",
                    share >= TARGETS["local_vs_ceiling"]))  # fmt: skip
        cpu = ceiling["srv_cpu_us"] / local["srv_cpu_us"]
        out.append((f"(reference) ceiling / local server CPU per request, c={c}", f"{cpu:.0%}",
                    "", None))  # fmt: skip
        configured = rows[f"get_ceiling_cfg_c{c}"]["per_s"] / ceiling["per_s"]
        out.append((f"(reference) configured ceiling req/s / ceiling, c={c}",
                    f"{configured:.1%}", "", None))  # fmt: skip
        bare = rows[f"get_ceiling_fwd_c{c}"]
        ratio = forwarded["p50_ms"] / bare["p50_ms"]
        wanted = TARGETS["forwarded_p50_vs_bare_forwarder"]
        out.append((f"forwarded p50 / bare forwarder p50, c={c}", f"{ratio:.2f}x",
                    f"<= {wanted:.1f}x", ratio <= wanted))  # fmt: skip
        out.append((f"(reference) forwarded p50 / local p50, c={c}",
                    f"{forwarded['p50_ms'] / local['p50_ms']:.2f}x", "", None))  # fmt: skip
        out.append((f"(reference) bare forwarder p50 / ceiling p50, c={c}",
                    f"{bare['p50_ms'] / ceiling['p50_ms']:.2f}x", "", None))  # fmt: skip
    many = max(rows[f"get_many_c{c}"]["items_per_s"] for c in CONCURRENCY)
    out.append(("GetMany(100) keys/s (best concurrency)", f"{many:,.0f}",
                f">= {TARGETS['get_many_keys_per_s']:,}",
                many >= TARGETS["get_many_keys_per_s"]))  # fmt: skip
    bare_many = max(rows[f"get_many_ceiling_c{c}"]["items_per_s"] for c in CONCURRENCY)
    out.append(("(reference) bare-grpcio GetMany(100) keys/s", f"{bare_many:,.0f}", "", None))
    scan = rows["scan_c1"]["items_per_s"]
    out.append(("Scan rows/s", f"{scan:,.0f}", f">= {TARGETS['scan_rows_per_s']:,}",
                scan >= TARGETS["scan_rows_per_s"]))  # fmt: skip
    return out


def figures_table(rows: dict[str, dict[str, float]]) -> str:
    lines = [
        "| measurement | conc | req/s | keys or rows/s | p50 ms | p99 ms | req/s min-max "
        "| srv CPU us/req | cli CPU | other CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        what, _, conc = name.rpartition("_c")
        lines.append(
            f"| {what} | {conc} | {row['per_s']:,.0f} | {row['items_per_s']:,.0f} "
            f"| {row['p50_ms']:.3f} | {row['p99_ms']:.3f} "
            f"| {row['min_per_s']:,.0f}-{row['max_per_s']:,.0f} | {row['srv_cpu_us']:.0f} "
            f"| {row['cli_cpu']:.0%} | {row['other_cpu']:.2f} |"
        )
    return "\n".join(lines)


def verdict_table(checks: list[tuple[str, str, str, bool | None]]) -> str:
    lines = ["| target | measured | wanted | met |", "|---|---:|---:|---|"]
    for figure, measured, wanted, met in checks:
        verdict = "" if met is None else "pass" if met else "FAIL"
        lines.append(f"| {figure} | {measured} | {wanted} | {verdict} |")
    return "\n".join(lines)


def machine_description() -> str:
    return machine(f"grpcio {grpc.__version__}", f"py-lmdb {lmdb.__version__}")


def record(
    args: argparse.Namespace,
    broker: Broker,
    rows: dict[str, dict[str, float]],
    started: str,
    load: float,
) -> None:
    checks = verdicts(rows)
    command = "python -m bench.grpc_reads " + shlex.join(sys.argv[1:])
    section = (
        f"\n### {started}, {broker.description.split(' (', 1)[0]}\n\n"
        f"- Machine: {machine_description()}\n"
        f"- Date: {started} (load average {load:.2f} before the run)\n"
        f"- Broker: {broker.description}\n"
        f"- Command: `.venv/bin/{command.strip()}` ({args.keys:,} keys of "
        f"{args.value_bytes} bytes, {args.partitions} partitions, {args.rounds} rounds of "
        f"{args.seconds:g} s per measurement after {args.warmup:g} s warm-up)\n\n"
        f"{figures_table(rows)}\n\n{verdict_table(checks)}\n"
    )
    add_to_results("grpc_reads", section, _SECTION_INTRO)


_SECTION_INTRO = """\
Reads over gRPC (`bench/grpc_reads.py`): a 4-partition table of 100,000 keys written straight
to a compacted topic, served by a `viewsvc serve-view` process (LMDB); a `viewsvc route`
process forwards to it. The ceiling is a bare grpcio server (a thread pool as large as
TableServer's, `Limits.max_concurrent_rpcs`; 16 threads before 06:08) whose TableService.Get
only does the LMDB get on the view's files and builds the response; `ceiling_cfg` (from
08:22) is that handler on a server set up as TableServer's (the concurrent-call limit,
request size and streams per connection, health and reflection); `ceiling_fwd` goes through a
bare grpcio server that only passes each Get on to the ceiling (the least a Python gRPC hop
costs: the reference for the forwarded figures). Each server is its own OS process; the load
generator is the benchmark process (C threads sharing one channel for concurrency C), all on
the same machine, with the broker named in each entry (until 2026-11-22 always the dev
broker, Tansu 0.6.0). Figures are medians over the rounds; `srv CPU us/req`
is the CPU time of the serving processes per request (router + view for forwarded), `cli CPU`
the load generator's share of one core, `other CPU` the cores busy with anything else (other
users of the shared machine: above ~0.1 the figures are disturbed).
"""
