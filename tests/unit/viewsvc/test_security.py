"""ServerSecurity against a real gRPC server on port 0: the bearer token, TLS and mutual TLS.

Certificates are made at test time with the ``openssl`` command (a CA, a server certificate for
127.0.0.1 and a client certificate, both signed by the CA); without it, the TLS tests skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from goka.errors import ConfigError
from viewsvc.server.event_loop import EventLoopThread
from viewsvc.server.grpc_server import bounded_server
from viewsvc.server.limits import Limits
from viewsvc.server.security import ServerSecurity
from viewsvc.wire.channels import open_channel

TOKEN = "s3cret-token"
TIMEOUT = 5.0


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def _echo_twice(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield request
    yield request


ECHO = grpc.method_handlers_generic_handler(
    "test.Echo",
    {
        "Say": grpc.unary_unary_rpc_method_handler(_echo),
        "Repeat": grpc.unary_stream_rpc_method_handler(_echo_twice),
    },
)


@pytest.fixture
def serve() -> Iterator[Callable[[ServerSecurity], int]]:
    """Starts a server as TableServer's (asyncio, blocking handlers on a pool) with the echo,
    health and reflection services; returns its port."""
    loop = EventLoopThread("test-security")
    servers: list[grpc.aio.Server] = []

    async def build(security: ServerSecurity) -> int:
        pool = futures.ThreadPoolExecutor(max_workers=4)
        server = bounded_server(pool, Limits(), interceptors=security.interceptors())
        server.add_generic_rpc_handlers([ECHO])
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        reflection.enable_server_reflection(
            [
                "test.Echo",
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        port = security.bind(server, "127.0.0.1:0")
        await server.start()
        servers.append(server)
        return port

    yield lambda security: loop.run(build(security), TIMEOUT)
    for server in servers:
        loop.run(server.stop(None), TIMEOUT)
    loop.close()


def say(channel: grpc.Channel, metadata: Any = None) -> bytes:
    result: bytes = channel.unary_unary("/test.Echo/Say")(b"hi", timeout=TIMEOUT, metadata=metadata)
    return result


def repeat(channel: grpc.Channel, metadata: Any = None) -> list[bytes]:
    return list(
        channel.unary_stream("/test.Echo/Repeat")(b"hi", timeout=TIMEOUT, metadata=metadata)
    )


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    code: grpc.StatusCode = info.value.code()
    return code


# -- bearer token ------------------------------------------------------------------------


def test_without_security_everything_is_open(serve: Callable[[ServerSecurity], int]) -> None:
    port = serve(ServerSecurity())
    assert ServerSecurity().interceptors() == []
    with open_channel(f"127.0.0.1:{port}") as channel:
        assert say(channel) == b"hi"


@pytest.mark.parametrize(
    "metadata",
    [None, [("authorization", "Bearer wrong")], [("authorization", TOKEN)], [("x-token", TOKEN)]],
)
def test_calls_without_the_right_token_are_unauthenticated(
    serve: Callable[[ServerSecurity], int], metadata: Any
) -> None:
    port = serve(ServerSecurity(token=TOKEN))
    with open_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.RpcError) as unary:
            say(channel, metadata)
        assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "bearer token" in unary.value.details()
        assert code_of(lambda: repeat(channel, metadata)) == grpc.StatusCode.UNAUTHENTICATED


def test_calls_with_the_right_token_pass(serve: Callable[[ServerSecurity], int]) -> None:
    port = serve(ServerSecurity(token=TOKEN))
    with open_channel(f"127.0.0.1:{port}") as channel:
        assert say(channel, [("authorization", f"Bearer {TOKEN}")]) == b"hi"
        assert say(channel, [("authorization", f"bearer {TOKEN}")]) == b"hi"
        assert repeat(channel, [("authorization", f"Bearer {TOKEN}")]) == [b"hi", b"hi"]


def test_unknown_methods_stay_unimplemented(serve: Callable[[ServerSecurity], int]) -> None:
    port = serve(ServerSecurity(token=TOKEN))
    with open_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/test.Echo/Nope")
        assert code_of(lambda: call(b"", timeout=TIMEOUT)) == grpc.StatusCode.UNIMPLEMENTED


def test_health_and_reflection_need_no_token(serve: Callable[[ServerSecurity], int]) -> None:
    port = serve(ServerSecurity(token=TOKEN))
    with open_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=TIMEOUT
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
        assert "test.Echo" in services


# -- validation and binding ----------------------------------------------------------------


def test_a_taken_port_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        try:
            with pytest.raises(ConfigError, match=f"cannot listen on {address}.*port in use"):
                ServerSecurity().bind(server, address)
        finally:
            server.stop(None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cert_file": "{pem}"}, r"key_file \(--tls-key\) is not"),
        ({"key_file": "{pem}"}, r"cert_file \(--tls-cert\) is not"),
        ({"client_ca_file": "{pem}"}, r"--tls-client-ca\) needs TLS"),
        ({"cert_file": "{missing}", "key_file": "{pem}"}, r"cert_file \(--tls-cert\) .*missing"),
        ({"cert_file": "{pem}", "key_file": "{dir}"}, r"key_file \(--tls-key\) .*not a file"),
        ({"cert_file": "{pem}", "key_file": "{text}"}, r"key_file \(--tls-key\) .*is not PEM"),
        ({"token": ""}, r"token \(--token\) is empty"),
        ({"token": "two words"}, r"printable ASCII without spaces"),
    ],
)
def test_invalid_settings_name_the_flag(
    tmp_path: Path, kwargs: dict[str, str], message: str
) -> None:
    (tmp_path / "a.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "a.txt").write_text("hello\n")
    paths = {
        "pem": str(tmp_path / "a.pem"),
        "text": str(tmp_path / "a.txt"),
        "dir": str(tmp_path),
        "missing": str(tmp_path / "missing.pem"),
    }
    resolved = {name: value.format(**paths) for name, value in kwargs.items()}
    with pytest.raises(ConfigError, match=message):
        ServerSecurity(**resolved)


# -- TLS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(command: str, cwd: Path) -> None:
    """Runs ``openssl <command>`` (words separated by spaces) in ``cwd``."""
    subprocess.run(
        ["openssl", *command.split()], cwd=cwd, check=True, capture_output=True, timeout=60
    )


def _signed(name: str, extensions: str, directory: Path) -> None:
    """``<name>.crt`` and ``<name>.key``, signed by ``ca.crt``."""
    (directory / f"{name}.ext").write_text(extensions + "\n")
    _openssl(f"req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {name}.key -out {name}.csr",
             directory)  # fmt: skip
    _openssl(f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
             f"-extfile {name}.ext -out {name}.crt", directory)  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    if shutil.which("openssl") is None:
        pytest.skip("TLS tests need the `openssl` command to make certificates; install openssl")
    directory = tmp_path_factory.mktemp("certs")
    _openssl("req -x509 -newkey rsa:2048 -nodes -subj /CN=goka-test-ca -days 2 "
             "-keyout ca.key -out ca.crt", directory)  # fmt: skip
    _signed("server", "subjectAltName=DNS:localhost,IP:127.0.0.1", directory)
    _signed("client", "extendedKeyUsage=clientAuth", directory)
    return Certs(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


def test_tls(serve: Callable[[ServerSecurity], int], certs: Certs) -> None:
    port = serve(ServerSecurity(cert_file=str(certs.server_cert), key_file=str(certs.server_key)))
    trusting = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    with open_channel(f"127.0.0.1:{port}", trusting) as channel:
        assert say(channel) == b"hi"
    with open_channel(f"127.0.0.1:{port}") as plaintext:
        assert code_of(lambda: say(plaintext)) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_with_token(serve: Callable[[ServerSecurity], int], certs: Certs) -> None:
    security = ServerSecurity(
        cert_file=str(certs.server_cert),
        key_file=str(certs.server_key),
        client_ca_file=str(certs.ca),
        token=TOKEN,
    )
    port = serve(security)
    ca = certs.ca.read_bytes()
    anonymous = grpc.ssl_channel_credentials(root_certificates=ca)
    with open_channel(f"127.0.0.1:{port}", anonymous) as channel:
        assert code_of(lambda: say(channel)) == grpc.StatusCode.UNAVAILABLE
    known = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=certs.client_key.read_bytes(),
        certificate_chain=certs.client_cert.read_bytes(),
    )
    with open_channel(f"127.0.0.1:{port}", known) as channel:
        assert code_of(lambda: say(channel)) == grpc.StatusCode.UNAUTHENTICATED
        assert say(channel, [("authorization", f"Bearer {TOKEN}")]) == b"hi"
