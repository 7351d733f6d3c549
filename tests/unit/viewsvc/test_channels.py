"""viewsvc.wire.channels against real gRPC servers: a channel made after a node came back on
the same address connects at once, whatever older channels of the process went through (by
default gRPC shares one connection, reconnect backoff included, among them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from goka._localproc import free_loopback_port
from viewsvc.wire.channels import ChannelPool, open_aio_channel

SAY = "/test.Echo/Say"
ECHO = grpc.method_handlers_generic_handler(
    "test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(lambda request, _: request)}
)


@contextlib.contextmanager
def serving_on(address: str) -> Iterator[None]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([ECHO])
    assert server.add_insecure_port(address) == int(address.rsplit(":", 1)[1])
    server.start()
    try:
        yield
    finally:
        server.stop(None)


def test_a_channel_does_not_inherit_an_older_channels_backoff() -> None:
    address = f"127.0.0.1:{free_loopback_port()}"
    with grpc.insecure_channel(address) as stale:  # gRPC's default: a shared connection
        with pytest.raises(grpc.RpcError) as refused:
            stale.unary_unary(SAY)(b"", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        pool = ChannelPool()
        with serving_on(address):
            try:
                assert pool.channel(address).unary_unary(SAY)(b"hi", timeout=5) == b"hi"
            finally:
                pool.close()


def test_an_asyncio_channel_does_not_either() -> None:
    address = f"127.0.0.1:{free_loopback_port()}"

    async def refused_then_served() -> bytes:
        async with grpc.aio.insecure_channel(address) as stale:
            with pytest.raises(grpc.RpcError) as refused:
                await stale.unary_unary(SAY)(b"", timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            with serving_on(address):
                async with open_aio_channel(address) as channel:
                    reply: bytes = await channel.unary_unary(SAY)(b"hi", timeout=5)
                    return reply

    assert asyncio.run(refused_then_served()) == b"hi"
