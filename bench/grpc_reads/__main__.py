"""gRPC reads: Get (bare-grpcio ceiling, local, forwarded, smart client), GetMany and Scan.

    python -m bench.grpc_reads [--brokers B | --kafka] [--seconds 5] [--rounds 3]
        [--keys 100000] [--partitions 4] [--record]

The broker: the Tansu dev broker started for the run by default, ``--kafka`` a real Apache
Kafka started for the run (``goka.localkafka``, one KRaft node on this machine), or
``--brokers B`` an external one; the records and the JSON name it. ``--keys`` keys (values
of ``--value-bytes`` bytes) are written straight to a fresh compacted table topic with the
murmur2 partitioner; then five server OS processes start, each on its own port on 127.0.0.1:

- **view**: ``python -m viewsvc serve-view`` holding every partition (LMDB under a temporary
  directory), announcing on a fresh discovery topic (heartbeat 0.5 s);
- **router**: ``python -m viewsvc route`` on the same discovery topic, holding nothing;
- **ceiling**: this module with ``--serve-ceiling``: a bare grpcio server (a thread pool of
  ``Limits().max_concurrent_rpcs`` threads, as TableServer, nothing else) whose
  TableService.Get only looks the key up in the view's own LMDB files (opened read-only with
  the lmdb package) and builds the GetResponse;
- **configured**: the ceiling's handler on a server set up as TableServer's is
  (``viewsvc.server.bounded_server``: the concurrent-call limit, request size and streams per
  connection, plus health and reflection; ``ceiling_cfg``): what the server costs around the
  handler, apart from the handler;
- **forwarder**: the same bare server whose Get only passes the request on to the ceiling
  (a blocking call with a timeout and the forwarded-by metadata, as a node forwards): the
  least one Python gRPC hop adds, the reference for the forwarded figures (``ceiling_fwd``).

The load runs in this process, in threads: concurrency C is C threads issuing blocking calls
back to back on one shared channel (the smart client's own channel for the smart client).
Threads, not futures or asyncio, because the smart client is a blocking API: every variant is
then driven by the same code. The Get variants send the same pre-built requests for uniformly
random keys: **ceiling** and **local** (the view, holding the key) directly, **forwarded**
through the router (one hop to the view), **smart** through ``viewsvc.Client`` watching the
view's membership (it hashes the key and calls the view directly). **get_many** sends
GetMany(``--batch`` random keys) to the view, **get_many_ceiling** the same to the ceiling
(whose GetMany only hashes each key, reads it from LMDB and adds a result); **scan** reads
the whole table from the view in one Scan stream, back to back.

Each measurement runs ``--seconds`` after ``--warmup`` seconds. The Get variants of one
concurrency are interleaved in turns of ``--slice`` seconds (ceiling, ceiling_cfg,
ceiling_fwd, local, forwarded, smart, ceiling, ...), so a change in the machine's other load
hits each one alike; GetMany and Scan follow. The figures are the medians over ``--rounds``
(req/s, p50, p99 each). ``srv_cpu_us`` is the CPU time the server processes (router + view
for forwarded) spent per request, from /proc (clock ticks), ``cli_cpu`` the share of one core
this process used (near 100% would mean the load generator, not the server, set the pace)
and ``other_cpu`` the cores busy with anything else (idle servers, the broker, other users of
the machine: above ~0.1 the figures are disturbed). With ``--record`` a dated section is added
to the grpc_reads section of bench/RESULTS.md. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import lmdb  # noqa: E402
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: E402

import goka  # noqa: E402
from bench._common import (  # noqa: E402
    Broker,
    add_broker_arguments,
    add_to_results,
    broker_for,
    die_with_parent,
    machine,
)
from goka import codec  # noqa: E402
from goka.partitioner import get_partitioner  # noqa: E402
from viewsvc import Client  # noqa: E402
from viewsvc.server.grpc_server import add_health_and_reflection, bounded_server  # noqa: E402
from viewsvc.server.limits import Limits  # noqa: E402
from viewsvc.v1 import table_pb2 as pb  # noqa: E402
from viewsvc.v1 import table_pb2_grpc  # noqa: E402

CONCURRENCY = (1, 16)
GET_VARIANTS = ("ceiling", "ceiling_cfg", "ceiling_fwd", "local", "forwarded", "smart")
TARGETS = {
    "local_vs_ceiling": 0.90,  # local Get req/s >= 90% of the ceiling's, at each concurrency
    "forwarded_p50_vs_local": 2.0,  # forwarded p50 <= 2x local p50, at each concurrency
    "get_many_keys_per_s": 100_000,
    "scan_rows_per_s": 200_000,
}
FORWARDED_BY = "x-goka-forwarded-by"
"""The metadata a node marks a forwarded request with (see proto/viewsvc/v1/table.proto)."""
_SERVING = re.compile(r"^(?:serving (\S+) on|ceiling on) (\S+:\d+)$")
_TICK = os.sysconf("SC_CLK_TCK")


# -- the ceiling server (runs in its own process) ----------------------------------------------


class CeilingServicer(table_pb2_grpc.TableServiceServicer):
    """TableService.Get (and GetMany) that only reads the keys from LMDB and builds the
    response."""

    def __init__(self, storage: Path, table: str, partitions: int) -> None:
        self._count = partitions
        self._partition_of = get_partitioner("murmur2")
        self._envs = []
        for partition in range(partitions):
            env = lmdb.open(
                str(storage / table / str(partition)),
                readonly=True,
                max_dbs=2,
                readahead=False,
                max_readers=1024,
            )
            self._envs.append((env, env.open_db(b"rows", create=False)))

    def Get(self, request: pb.GetRequest, context: grpc.ServicerContext) -> pb.GetResponse:
        partition = self._partition_of(request.key, self._count)
        env, rows = self._envs[partition]
        with env.begin(db=rows) as txn:
            value = txn.get(request.key)
        return pb.GetResponse(
            found=value is not None,
            value=value or b"",
            partition=partition,
            served_by="ceiling",
            key=request.key,
        )

    def GetMany(
        self, request: pb.GetManyRequest, context: grpc.ServicerContext
    ) -> pb.GetManyResponse:
        response = pb.GetManyResponse()
        add = response.results.add
        for key in request.keys:
            partition = self._partition_of(key, self._count)
            env, rows = self._envs[partition]
            with env.begin(db=rows) as txn:
                value = txn.get(key)
            add(
                found=value is not None,
                value=value or b"",
                partition=partition,
                served_by="ceiling",
                key=key,
            )
        return response


class ForwardServicer(table_pb2_grpc.TableServiceServicer):
    """TableService.Get that only passes the request on to ``target``, the way a node
    forwards (a blocking call with a timeout and the forwarded-by metadata)."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.insecure_channel(target)
        self._get = table_pb2_grpc.TableServiceStub(self._channel).Get  # type: ignore[no-untyped-call]

    def Get(self, request: pb.GetRequest, context: grpc.ServicerContext) -> pb.GetResponse:
        response: pb.GetResponse = self._get(
            request, timeout=Limits().default_deadline, metadata=((FORWARDED_BY, "bare"),)
        )
        return response


def serve_ceiling(
    storage: Path, table: str, partitions: int, forward_to: str | None, configured: bool
) -> None:
    """Runs the ceiling server (or, with ``forward_to``, the bare forwarder) until SIGTERM;
    prints ``ceiling on 127.0.0.1:<port>``. ``configured`` serves the same handler on a
    server set up as a TableServer is (its limits, health and reflection)."""
    limits = Limits()
    pool = futures.ThreadPoolExecutor(max_workers=limits.max_concurrent_rpcs)
    server = bounded_server(pool, limits) if configured else grpc.server(pool)
    servicer: table_pb2_grpc.TableServiceServicer = (
        ForwardServicer(forward_to) if forward_to else CeilingServicer(storage, table, partitions)
    )
    table_pb2_grpc.add_TableServiceServicer_to_server(  # type: ignore[no-untyped-call]
        servicer, server
    )
    if configured:
        add_health_and_reflection(server, health.HealthServicer())
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"ceiling on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait(2)


# -- server processes -------------------------------------------------------------------------


@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    member_id: str = ""
    address: str = ""

    def wait_listening(self, timeout: float) -> None:
        """Waits for the ``serving <id> on <address>`` (or ``ceiling on``) line."""
        deadline = time.monotonic() + timeout
        path = Path(self.log.name)
        while time.monotonic() < deadline:
            for line in path.read_text(errors="replace").splitlines():
                match = _SERVING.match(line.strip())
                if match:
                    self.member_id, self.address = match.group(1) or self.name, match.group(2)
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"{self.name} did not start listening:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far, from /proc/<pid>/stat."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


def start_process(name: str, command: list[str], workdir: Path) -> ServerProcess:
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
    try:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    except BaseException:
        log.close()
        raise
    return ServerProcess(name, proc, log)


def wait_serving(address: str, timeout: float) -> None:
    """Waits until grpc.health.v1 says SERVING (every partition recovered)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            with contextlib.suppress(grpc.RpcError):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.1)
    raise SystemExit(f"{address} was not SERVING within {timeout:.0f}s")


# -- data -------------------------------------------------------------------------------------


def key_of(i: int) -> bytes:
    return f"user-{i:08d}".encode()


def value_of(i: int, size: int) -> bytes:
    return f"value-{i:08d}-".encode().ljust(size, b"x")[:size]


def fill(brokers: str, table: str, args: argparse.Namespace) -> float:
    """Writes the keys to the table topic; returns seconds taken."""
    started = time.perf_counter()
    goka.TopicManager(brokers).ensure_table(table, args.partitions)
    with goka.Emitter(brokers, table, codec.Bytes(), partitioner="murmur2") as emitter:
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


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


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
            for variant in GET_VARIANTS:
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


# -- verdicts and the record -----------------------------------------------------------------


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
        ratio = forwarded["p50_ms"] / local["p50_ms"]
        out.append((f"forwarded p50 / local p50, c={c}", f"{ratio:.2f}x",
                    f"<= {TARGETS['forwarded_p50_vs_local']:.0f}x",
                    ratio <= TARGETS["forwarded_p50_vs_local"]))  # fmt: skip
        bare = rows[f"get_ceiling_fwd_c{c}"]["p50_ms"] / ceiling["p50_ms"]
        out.append((f"(reference) bare forwarder p50 / ceiling p50, c={c}", f"{bare:.2f}x",
                    "", None))  # fmt: skip
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


def _machine() -> str:
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
        f"- Machine: {_machine()}\n"
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


# -- main -------------------------------------------------------------------------------------


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
            bare = [sys.executable, "-m", "bench.grpc_reads", "--serve-ceiling", str(storage),
                    "--table", table, "--partitions", str(args.partitions)]  # fmt: skip
            ceiling = start_process("ceiling", bare, Path(workdir))
            processes.append(ceiling)
            configured = start_process("configured", [*bare, "--configured"], Path(workdir))
            processes.append(configured)
            router.wait_listening(60)
            ceiling.wait_listening(60)
            configured.wait_listening(60)
            forwarder = start_process("forwarder", [sys.executable, "-m", "bench.grpc_reads",
                                                    "--serve-ceiling", str(storage),
                                                    "--forward-to", ceiling.address],
                                      Path(workdir))  # fmt: skip
            processes.append(forwarder)
            forwarder.wait_listening(60)
            wait_serving(router.address, 60)
            with Client([view.address]) as client:
                if not client.wait_ready(30):
                    raise SystemExit("the smart client got no membership from the view")
                bench = Bench(
                    args, table, view, router, ceiling, configured, forwarder, client, channels
                )
                deadline = time.monotonic() + 30
                while True:  # the router needs the view's announcement to forward
                    try:
                        bench.check([key_of(7)])
                        break
                    except (SystemExit, grpc.RpcError, goka.GokaError):
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                rng = random.Random(1)
                keys = [key_of(rng.randrange(args.keys)) for _ in range(args.sample)]
                return run_rounds(bench, keys)
        finally:
            for channel in channels.values():
                channel.close()
            for process in reversed(processes):
                process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    parser.add_argument("--serve-ceiling", metavar="STORAGE", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--forward-to", help=argparse.SUPPRESS)
    parser.add_argument("--configured", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling:
        serve_ceiling(
            Path(args.serve_ceiling), args.table, args.partitions, args.forward_to, args.configured
        )
        return
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
        "machine": _machine(),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
