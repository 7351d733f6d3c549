"""How a gRPC server of goka is secured: TLS, mutual TLS and a bearer token, each optional.

    security = ServerSecurity(cert_file="tls.crt", key_file="tls.key", token=os.environ["T"])
    server = grpc.aio.server(interceptors=security.interceptors())
    port = security.bind(server, "[::]:50051")

The token check is an interceptor, not code in each method. It lets the standard health
service and server reflection through without a token: Kubernetes probes and ``grpcurl``
discovery carry no credentials, and neither service reveals table data.
"""

from __future__ import annotations

import hmac
import os
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from goka.errors import ConfigError

__all__ = ["ServerSecurity"]

_FLAGS = {
    "cert_file": "--tls-cert",
    "key_file": "--tls-key",
    "client_ca_file": "--tls-client-ca",
    "token": "--token",
}
_OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + string.punctuation)
_UNAUTHENTICATED = "missing or wrong bearer token in the 'authorization' metadata"


@dataclass(frozen=True)
class ServerSecurity:
    """TLS, mutual TLS and bearer-token authentication of a server; all optional.

    Args:
        cert_file: PEM certificate chain of the server; with ``key_file`` enables TLS.
        key_file: PEM private key of ``cert_file``.
        client_ca_file: PEM CA certificates; clients must present a certificate one of them
            signed (mutual TLS). Needs TLS.
        token: clients must send the metadata ``authorization: Bearer <token>``.

    The default (nothing set) is a plaintext server open to everyone.
    """

    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            given, missing = (
                ("cert_file", "key_file") if self.key_file is None else ("key_file", "cert_file")
            )
            raise ConfigError(
                f"TLS needs both a certificate and its key: {given} ({_FLAGS[given]}) is set "
                f"but {missing} ({_FLAGS[missing]}) is not"
            )
        if self.client_ca_file is not None and self.cert_file is None:
            raise ConfigError(
                "client_ca_file (--tls-client-ca) needs TLS: set cert_file (--tls-cert) and "
                "key_file (--tls-key) as well"
            )
        for field in ("cert_file", "key_file", "client_ca_file"):
            path = getattr(self, field)
            if path is not None:
                _read_pem(field, path)
        if self.token is not None:
            if not self.token:
                raise ConfigError("token (--token) is empty: pass a secret, or no token at all")
            if not set(self.token) <= _TOKEN_CHARS:
                raise ConfigError(
                    "token (--token) must be printable ASCII without spaces, as gRPC metadata "
                    "values are; e.g. generate one with `openssl rand -hex 32`"
                )

    def bind(self, server: grpc.Server, address: str) -> int:
        """Adds a secure (with TLS) or plaintext port for ``address``; returns the bound port
        (the one the OS chose for port 0)."""
        try:
            if self.cert_file is not None and self.key_file is not None:
                ca = None
                if self.client_ca_file is not None:
                    ca = _read_pem("client_ca_file", self.client_ca_file)
                key = _read_pem("key_file", self.key_file)
                chain = _read_pem("cert_file", self.cert_file)
                credentials = grpc.ssl_server_credentials(
                    [(key, chain)],
                    root_certificates=ca,
                    require_client_auth=ca is not None,
                )
                port = server.add_secure_port(address, credentials)
            else:
                port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ConfigError(
                f"cannot listen on {address}: {exc}; is the port in use? is the host one of "
                "this machine's addresses (or 0.0.0.0 / [::])?"
            ) from exc
        if not port:  # older grpcio reports a failure as port 0
            raise ConfigError(f"cannot listen on {address}: is the port in use?")
        return int(port)

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """The token check, if a token is set; pass to ``grpc.aio.server(interceptors=...)``."""
        return [] if self.token is None else [_TokenInterceptor(self.token)]


def _read_pem(field: str, path: str) -> bytes:
    flag = _FLAGS[field]
    if not os.path.isfile(path):
        raise ConfigError(f"{field} ({flag}) {path!r} does not exist or is not a file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {field} ({flag}) {path!r}: {exc.strerror}; check its permissions"
        ) from exc
    if b"-----BEGIN " not in data:
        raise ConfigError(
            f"{field} ({flag}) {path!r} is not PEM (no '-----BEGIN' line); convert DER files "
            "with `openssl x509 -inform der` or `openssl pkey -inform der`"
        )
    return data


class _TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Rejects calls without ``authorization: Bearer <token>`` as UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        service = details.method.split("/")[1] if details.method.count("/") == 2 else ""
        handler = await continuation(details)
        if handler is None or service in _OPEN_SERVICES:
            return handler
        if self._authorized(details.invocation_metadata):
            return handler
        return _rejecting(handler)

    def _authorized(self, metadata: Any) -> bool:
        for key, value in metadata or ():
            if key != "authorization" or not isinstance(value, str):
                continue
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                token.strip().encode(), self._expected
            ):
                return True
        return False


def _rejecting(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that aborts every call."""

    async def abort(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED)

    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort, **serializers)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort, **serializers)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort, **serializers)
    return grpc.unary_unary_rpc_method_handler(abort, **serializers)
