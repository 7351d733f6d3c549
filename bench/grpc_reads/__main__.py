"""Runs the gRPC read benchmark: ``python -m bench.grpc_reads --help`` (see the package's
docstring for what is measured)."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

import bench.grpc_reads
import goka
from bench._common import add_broker_arguments, broker_for
from bench.grpc_reads.load import Bench, fill, key_of, run_rounds
from bench.grpc_reads.results import (
    figures_table,
    machine_description,
    record,
    verdict_table,
    verdicts,
)
from bench.grpc_reads.servers import ServerProcess, start_process, wait_serving
from viewsvc import Client

GO_CLIENT = Path(__file__).resolve().parent.parent.parent / "clients" / "go"


def build_loadgen(into: Path) -> Path | None:
    """clients/go/cmd/loadgen built into ``into``; None (no Go variants) without Go."""
    if shutil.which("go") is None:
        print("go not found on PATH: the Go variants are left out (install Go 1.26+)")
        return None
    binary = into / "loadgen"
    subprocess.run(["go", "build", "-o", str(binary), "./cmd/loadgen"], cwd=GO_CLIENT,
                   check=True, timeout=600)  # fmt: skip
    return binary


def run(args: argparse.Namespace, brokers: str) -> dict[str, dict[str, float]]:
    suffix = uuid.uuid4().hex[:8]
    table, discovery_topic = f"bench-reads-{suffix}-table", f"bench-reads-discovery-{suffix}"
    fill_s = fill(brokers, table, args)
    print(f"wrote {args.keys:,} keys to {table} in {fill_s:.1f}s", flush=True)
    node = ["--brokers", brokers, "--listen", "127.0.0.1:0",
            "--discovery-topic", discovery_topic, "--heartbeat", "0.5"]  # fmt: skip
    processes: list[ServerProcess] = []
    channels: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="goka-bench-reads-") as workdir:
        storage = Path(workdir) / "view"
        try:
            view = start_process("view", [sys.executable, "-m", "viewsvc", "serve-view",
                                          "--table", table, "--storage", str(storage),
                                          "--partitioner", "murmur2", "--value-codec", "bytes",
                                          *node], Path(workdir))  # fmt: skip
            processes.append(view)
            view.wait_listening(60)
            wait_serving(view.address, 120)
            router = start_process("router", [sys.executable, "-m", "viewsvc", "route", *node],
                                   Path(workdir))  # fmt: skip
            processes.append(router)
            bare = [sys.executable, "-m", "bench.grpc_reads.reference_servers", str(storage),
                    "--table", table, "--partitions", str(args.partitions)]  # fmt: skip
            ceiling = start_process("ceiling", bare, Path(workdir))
            processes.append(ceiling)
            configured = start_process("configured", [*bare, "--configured"], Path(workdir))
            processes.append(configured)
            router.wait_listening(60)
            ceiling.wait_listening(60)
            configured.wait_listening(60)
            forwarder = start_process("forwarder", [*bare, "--forward-to", ceiling.address],
                                      Path(workdir))  # fmt: skip
            processes.append(forwarder)
            forwarder.wait_listening(60)
            wait_serving(router.address, 60)
            rng = random.Random(1)
            keys = [key_of(rng.randrange(args.keys)) for _ in range(args.sample)]
            keys_file = Path(workdir) / "keys.hex"
            keys_file.write_text("".join(f"{key.hex()}\n" for key in keys))
            loadgen = build_loadgen(Path(workdir))
            with Client([view.address]) as client:
                if not client.wait_ready(30):
                    raise SystemExit("the smart client got no membership from the view")
                bench = Bench(
                    args, table, view, router, ceiling, configured, forwarder, client, channels,
                    loadgen, keys_file,
                )  # fmt: skip
                deadline = time.monotonic() + 30
                while True:  # the router needs the view's announcement to forward
                    try:
                        bench.check([key_of(7)])
                        break
                    except (SystemExit, grpc.RpcError, goka.GokaError):
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                return run_rounds(bench, keys)
        finally:
            for channel in channels.values():
                channel.close()
            for process in reversed(processes):
                process.stop()


def main() -> None:
    doc = bench.grpc_reads.__doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_broker_arguments(parser)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before each one")
    parser.add_argument(
        "--slice", type=float, default=1.0, help="seconds per turn of the interleaved Get variants"
    )
    parser.add_argument("--rounds", type=int, default=3, help="medians over this many rounds")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--value-bytes", type=int, default=32)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="keys per GetMany")
    parser.add_argument("--sample", type=int, default=20_000, help="random keys to cycle over")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    if min(args.seconds, args.slice) <= 0 or args.warmup < 0 or args.rounds < 1:
        parser.error("--seconds and --slice must be > 0, --warmup >= 0, --rounds >= 1")
    if args.keys < args.batch:
        parser.error("--keys must be at least --batch")
    if args.value_bytes < 16:
        parser.error("--value-bytes must be at least 16")
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    with broker_for(args) as broker:
        print(f"broker: {broker.description} at {broker.bootstrap}", flush=True)
        rows = run(args, broker.bootstrap)
    print(figures_table(rows))
    print(verdict_table(verdicts(rows)))
    if args.record:
        record(args, broker, rows, started, load)
    result = {
        "benchmark": "grpc_reads",
        "broker": broker.description,
        "rows": rows,
        "load_before": load,
        "machine": machine_description(),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
