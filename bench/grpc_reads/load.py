"""The load of the gRPC read benchmark: the table's data, the driver (C threads issuing
blocking calls back to back) and the variants measured, interleaved per concurrency."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

import goka
from bench._common import busy_seconds
from bench.grpc_reads.reference_servers import PARTITIONER
from bench.grpc_reads.servers import ServerProcess
from goka import codec
from viewsvc import Client
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc

__all__ = [
    "CONCURRENCY",
    "GET_VARIANTS",
    "Bench",
    "Figures",
    "drive",
    "fill",
    "key_of",
    "run_rounds",
    "value_of",
]

CONCURRENCY = (1, 16)
GET_VARIANTS = ("ceiling", "ceiling_cfg", "ceiling_fwd", "local", "forwarded", "smart")
GO_VARIANTS = ("ceiling_go", "smart_go")
"""The same Gets from a Go process (clients/go/cmd/loadgen): a plain stub on the ceiling, and
the Go smart client through the view's membership."""


# -- data -------------------------------------------------------------------------------------


def key_of(i: int) -> bytes:
    return f"user-{i:08d}".encode()


def value_of(i: int, size: int) -> bytes:
    return f"value-{i:08d}-".encode().ljust(size, b"x")[:size]


def fill(brokers: str, table: str, args: argparse.Namespace) -> float:
    """Writes the keys to the table topic; returns seconds taken."""
    started = time.perf_counter()
    goka.TopicManager(brokers).ensure_table(table, args.partitions)
    with goka.Emitter(brokers, table, codec.Bytes(), partitioner=PARTITIONER) as emitter:
        for i in range(args.keys):
            emitter.emit(key_of(i).decode(), value_of(i, args.value_bytes))
        emitter.flush()
    return time.perf_counter() - started


# -- load -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    calls: int
    items: int
    """Keys (Get, GetMany) or rows (Scan) answered."""
    seconds: float
    latencies: list[float]
    client_cpu: float
    """Share of one core this process used."""
    server_cpu: float
    """CPU seconds the server processes used."""
    other_cpu: float
    """Cores busy with anything else: the other servers, the broker, other users."""

    @property
    def per_s(self) -> float:
        return self.calls / self.seconds

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    @property
    def server_cpu_us(self) -> float:
        return 1e6 * self.server_cpu / self.calls

    @classmethod
    def combine(cls, parts: Sequence[Figures]) -> Figures:
        """The figures of consecutive slices of one measurement, as if measured at once."""
        seconds = sum(f.seconds for f in parts)
        return cls(
            calls=sum(f.calls for f in parts),
            items=sum(f.items for f in parts),
            seconds=seconds,
            latencies=[latency for f in parts for latency in f.latencies],
            client_cpu=sum(f.client_cpu * f.seconds for f in parts) / seconds,
            server_cpu=sum(f.server_cpu for f in parts),
            other_cpu=sum(f.other_cpu * f.seconds for f in parts) / seconds,
        )


def drive(
    call: Callable[[int], int],
    concurrency: int,
    seconds: float,
    servers: Sequence[ServerProcess],
    everyone: Sequence[ServerProcess],
) -> Figures:
    """``concurrency`` threads call ``call(i)`` (returning the items answered) back to back
    for ``seconds``; i counts each thread's calls, threads start at different offsets."""
    barrier = threading.Barrier(concurrency + 1)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    items = [0] * concurrency
    stop_at = [0.0]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        mine, got, i = latencies[index], 0, index * 7919
        clock = time.perf_counter
        barrier.wait()
        end = stop_at[0]
        try:
            while True:
                started = clock()
                got += call(i)
                finished = clock()
                mine.append(finished - started)
                i += 1
                if finished >= end:
                    break
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        items[index] = got

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu_before = sum(s.cpu_seconds() for s in servers)
    all_before = sum(s.cpu_seconds() for s in everyone)
    busy_before = busy_seconds()
    own_before = time.process_time()
    started = time.perf_counter()
    stop_at[0] = started + seconds
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    own = time.process_time() - own_before
    cpu = sum(s.cpu_seconds() for s in servers) - cpu_before
    ours = own + sum(s.cpu_seconds() for s in everyone) - all_before
    other = max(0.0, busy_seconds() - busy_before - ours) / elapsed
    if errors:
        raise errors[0]
    flat = [latency for mine in latencies for latency in mine]
    return Figures(len(flat), sum(items), elapsed, flat, own / elapsed, cpu, other)


@dataclass
class Bench:
    args: argparse.Namespace
    table: str
    view: ServerProcess
    router: ServerProcess
    ceiling: ServerProcess
    configured: ServerProcess
    forwarder: ServerProcess
    client: Client
    channels: dict[str, Any]
    loadgen: Path | None = None
    """The Go load generator, built for the run (None: no Go, no Go variants)."""
    keys_file: Path | None = None
    """The sample of keys, hex, one per line, for the load generator."""

    def stub(self, server: ServerProcess) -> Any:
        channel = self.channels.get(server.address)
        if channel is None:
            channel = self.channels[server.address] = grpc.insecure_channel(server.address)
        return table_pb2_grpc.TableServiceStub(channel)  # type: ignore[no-untyped-call]

    def get_call(self, variant: str, keys: list[bytes]) -> Callable[[int], int]:
        n = len(keys)
        if variant == "smart":
            client, table = self.client, self.table

            def smart(i: int) -> int:
                return int(client.get(table, keys[i % n]).found)

            return smart
        server = {
            "ceiling": self.ceiling,
            "ceiling_cfg": self.configured,
            "ceiling_fwd": self.forwarder,
            "local": self.view,
            "forwarded": self.router,
        }[variant]
        get = self.stub(server).Get
        requests = [pb.GetRequest(table=self.table, key=key) for key in keys]

        def raw(i: int) -> int:
            return int(get(requests[i % n]).found)

        return raw

    def servers(self, variant: str) -> list[ServerProcess]:
        return {
            "ceiling": [self.ceiling],
            "ceiling_cfg": [self.configured],
            "ceiling_fwd": [self.forwarder, self.ceiling],
            "local": [self.view],
            "forwarded": [self.router, self.view],
            "smart": [self.view],
        }[variant]

    def get_many_call(self, keys: list[bytes], server: ServerProcess) -> Callable[[int], int]:
        size, stub = self.args.batch, self.stub(server)
        rng = random.Random(2)
        requests = [
            pb.GetManyRequest(table=self.table, keys=rng.sample(keys, size)) for _ in range(256)
        ]

        def get_many(i: int) -> int:
            return sum(r.found for r in stub.GetMany(requests[i % len(requests)]).results)

        return get_many

    def scan_call(self) -> Callable[[int], int]:
        stub, request = self.stub(self.view), pb.ScanRequest(table=self.table)

        def scan(i: int) -> int:
            return sum(len(response.entries) for response in stub.Scan(request))

        return scan

    def drive(
        self,
        call: Callable[[int], int],
        concurrency: int,
        seconds: float,
        servers: list[ServerProcess],
    ) -> Figures:
        everyone = [self.view, self.router, self.ceiling, self.configured, self.forwarder]
        return drive(call, concurrency, seconds, servers, everyone)

    def drive_go(self, variant: str, concurrency: int) -> Figures:
        """One measurement of a Go variant: the load generator warms up, says ``measuring``,
        runs ``--seconds`` and reports its calls, latencies and CPU; the servers' CPU and the
        machine's other load are taken over the same window."""
        assert self.loadgen is not None and self.keys_file is not None
        server, mode = (self.ceiling, "direct") if variant == "ceiling_go" else (self.view, "smart")
        everyone = [self.view, self.router, self.ceiling, self.configured, self.forwarder]
        command = [
            str(self.loadgen), "-mode", mode, "-targets", server.address, "-table", self.table,
            "-keys-file", str(self.keys_file), "-concurrency", str(concurrency),
            "-seconds", str(self.args.seconds), "-warmup", str(self.args.warmup),
        ]  # fmt: skip
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "measuring":
                raise SystemExit(f"the Go load generator failed: {' '.join(command)}")
            cpu_before = server.cpu_seconds()
            all_before = sum(s.cpu_seconds() for s in everyone)
            busy_before = busy_seconds()
            line = proc.stdout.readline()
            cpu = server.cpu_seconds() - cpu_before
            all_cpu = sum(s.cpu_seconds() for s in everyone) - all_before
            busy = busy_seconds() - busy_before
        if proc.returncode != 0 or not line:
            raise SystemExit(f"the Go load generator failed (exit {proc.returncode})")
        report = json.loads(line)
        elapsed, own = report["seconds"], report["cpu_seconds"]
        other = max(0.0, busy - own - all_cpu) / elapsed
        return Figures(
            report["calls"],
            report["found"],
            elapsed,
            report["latencies"],
            own / elapsed,
            cpu,
            other,
        )

    def measure(
        self, call: Callable[[int], int], concurrency: int, servers: list[ServerProcess]
    ) -> Figures:
        self.drive(call, concurrency, self.args.warmup, servers)
        return self.drive(call, concurrency, self.args.seconds, servers)

    def check(self, keys: list[bytes]) -> None:
        """Every variant answers the right value, from the view (the router forwards)."""
        key = keys[0]
        wanted = value_of(int(key.split(b"-")[1]), self.args.value_bytes)
        direct = (
            ("ceiling", self.ceiling),
            ("ceiling_cfg", self.configured),
            ("ceiling_fwd", self.forwarder),
            ("local", self.view),
        )
        for variant, server in direct:
            reply = self.stub(server).Get(pb.GetRequest(table=self.table, key=key))
            if reply.value != wanted:
                raise SystemExit(f"{variant} answered {reply.value!r}, not {wanted!r}")
        reply = self.stub(self.router).Get(pb.GetRequest(table=self.table, key=key))
        if reply.value != wanted or reply.served_by != self.view.member_id:
            raise SystemExit(f"the router answered {reply}, not from {self.view.member_id}")
        result = self.client.get(self.table, key)
        if result.value != wanted or result.served_by != self.view.member_id:
            raise SystemExit(f"the smart client got {result}")
        rows = self.scan_call()(0)
        if rows != self.args.keys:
            raise SystemExit(f"Scan returned {rows} rows, not {self.args.keys}")


def median_row(runs: list[Figures]) -> dict[str, float]:
    return {
        "per_s": statistics.median(f.per_s for f in runs),
        "items_per_s": statistics.median(f.items_per_s for f in runs),
        "p50_ms": statistics.median(1000 * f.percentile(0.50) for f in runs),
        "p99_ms": statistics.median(1000 * f.percentile(0.99) for f in runs),
        "min_per_s": min(f.per_s for f in runs),
        "max_per_s": max(f.per_s for f in runs),
        "srv_cpu_us": statistics.median(f.server_cpu_us for f in runs),
        "cli_cpu": statistics.median(f.client_cpu for f in runs),
        "other_cpu": statistics.median(f.other_cpu for f in runs),
    }


def run_rounds(bench: Bench, keys: list[bytes]) -> dict[str, dict[str, float]]:
    args = bench.args
    runs: dict[str, list[Figures]] = {}
    slices = max(1, round(args.seconds / args.slice))
    for round_ in range(1, args.rounds + 1):
        for concurrency in CONCURRENCY:
            calls = {variant: bench.get_call(variant, keys) for variant in GET_VARIANTS}
            parts: dict[str, list[Figures]] = {variant: [] for variant in GET_VARIANTS}
            for variant, call in calls.items():
                bench.drive(call, concurrency, args.warmup, bench.servers(variant))
            for _ in range(slices):  # interleaved: the machine's other load hits all alike
                for variant, call in calls.items():
                    servers = bench.servers(variant)
                    part = bench.drive(call, concurrency, args.seconds / slices, servers)
                    parts[variant].append(part)
            go_variants = GO_VARIANTS if bench.loadgen is not None else ()
            for variant in go_variants:  # a process of their own: not interleaved
                parts[variant] = [bench.drive_go(variant, concurrency)]
            for variant in (*GET_VARIANTS, *go_variants):
                figures = Figures.combine(parts[variant])
                runs.setdefault(f"get_{variant}_c{concurrency}", []).append(figures)
                print(
                    f"round {round_} get {variant:9} c={concurrency:<2} "
                    f"{figures.per_s:8.0f} req/s  p50 {1000 * figures.percentile(0.5):.3f} ms  "
                    f"p99 {1000 * figures.percentile(0.99):.3f} ms  "
                    f"srv {figures.server_cpu_us:.0f} us/req  cli {figures.client_cpu:.0%}  "
                    f"other {figures.other_cpu:.2f} cores",
                    flush=True,
                )
        for concurrency in CONCURRENCY:
            for name, server in (("get_many", bench.view), ("get_many_ceiling", bench.ceiling)):
                call = bench.get_many_call(keys, server)
                figures = bench.measure(call, concurrency, [server])
                runs.setdefault(f"{name}_c{concurrency}", []).append(figures)
                print(f"round {round_} {name}({args.batch}) c={concurrency:<2} "
                      f"{figures.items_per_s:8.0f} keys/s  p50 "
                      f"{1000 * figures.percentile(0.5):.3f} ms", flush=True)  # fmt: skip
        figures = bench.measure(bench.scan_call(), 1, [bench.view])
        runs.setdefault("scan_c1", []).append(figures)
        print(f"round {round_} scan c=1  {figures.items_per_s:8.0f} rows/s  "
              f"({figures.calls} scans)", flush=True)  # fmt: skip
    return {name: median_row(figures) for name, figures in runs.items()}
