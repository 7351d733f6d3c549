"""The reference servers of the gRPC read benchmark, each its own OS process:

    python -m bench.grpc_reads.reference_servers STORAGE --table T --partitions N
        [--forward-to HOST:PORT] [--configured]

- the **ceiling**: a bare grpcio server (a thread pool of ``Limits().max_concurrent_rpcs``
  threads, as TableServer's, nothing else) whose TableService.Get and GetMany only look the
  keys up in the view's own LMDB files under STORAGE (read-only) and build the response;
- with ``--configured``, the same handler on a server set up as TableServer's is
  (``bounded_server``: asyncio, the blocking handler on the pool; health and reflection);
- with ``--forward-to``, the **bare forwarder**: Get only passes the request on, the way a
  node forwards (a blocking call with the default deadline and the forwarded-by metadata).

Each prints ``ceiling on 127.0.0.1:<port>`` once listening and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc
import lmdb
from grpc_health.v1 import health

from goka.partitioner import get_partitioner
from viewsvc.server.event_loop import EventLoopThread
from viewsvc.server.grpc_server import add_health_and_reflection, bounded_server
from viewsvc.server.limits import Limits
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import FORWARDED_BY

__all__ = ["CeilingServicer", "ForwardServicer", "serve_ceiling"]

PARTITIONER = "murmur2"
"""The benchmark table's partitioner (the table is written with it)."""


class CeilingServicer(table_pb2_grpc.TableServiceServicer):
    """TableService.Get (and GetMany) that only reads the keys from LMDB and builds the
    response."""

    def __init__(self, storage: Path, table: str, partitions: int) -> None:
        self._count = partitions
        self._partition_of = get_partitioner(PARTITIONER)
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
    servicer: table_pb2_grpc.TableServiceServicer = (
        ForwardServicer(forward_to) if forward_to else CeilingServicer(storage, table, partitions)
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not configured:
        server = grpc.server(pool)
        table_pb2_grpc.add_TableServiceServicer_to_server(  # type: ignore[no-untyped-call]
            servicer, server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        print(f"ceiling on 127.0.0.1:{port}", flush=True)
        stop.wait()
        server.stop(1).wait(2)
        return

    async def build() -> tuple[grpc.aio.Server, int]:
        server = bounded_server(pool, limits)
        table_pb2_grpc.add_TableServiceServicer_to_server(  # type: ignore[no-untyped-call]
            servicer, server
        )
        add_health_and_reflection(server, health.HealthServicer())
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    loop = EventLoopThread("ceiling")
    aio_server, port = loop.run(build())
    print(f"ceiling on 127.0.0.1:{port}", flush=True)
    stop.wait()
    loop.run(aio_server.stop(1), 3)
    loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage", type=Path, help="the view's storage directory")
    parser.add_argument("--table", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--forward-to", metavar="HOST:PORT", help="be the bare forwarder")
    parser.add_argument("--configured", action="store_true", help="on a TableServer's setup")
    args = parser.parse_args()
    serve_ceiling(args.storage, args.table, args.partitions, args.forward_to, args.configured)


if __name__ == "__main__":
    main()
