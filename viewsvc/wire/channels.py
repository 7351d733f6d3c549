"""gRPC channels to the nodes of a deployment, one per endpoint, with the same credentials.

Shared by the smart client and the servers' forwarding code, so both speak to a node the same
way: plain TCP or TLS (optionally with a client certificate), and a bearer token in the
``authorization`` metadata.

gRPC only attaches call credentials on secure channels, so without TLS the token travels as
plain per-call metadata (:meth:`ChannelPool.metadata`); with TLS it is part of the channel
credentials and ``metadata()`` is empty.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import grpc

from goka.errors import ConfigError
from viewsvc.v1 import table_pb2_grpc

__all__ = ["FORWARDED_BY", "ChannelPool", "Metadata", "open_aio_channel", "open_channel"]

Metadata = tuple[tuple[str, str], ...]

FORWARDED_BY = "x-goka-forwarded-by"
"""Metadata marking a forwarded request (value: the forwarding member); a node never forwards
such a request again. The smart client never sets it."""


OWN_SUBCHANNELS = (("grpc.use_local_subchannel_pool", 1),)
"""Each channel connects on its own: by default gRPC shares a connection (a subchannel) among
every channel of the process to the same address, reconnect backoff included, so a channel
made after a node came back on the same address would fail with UNAVAILABLE ("connection
refused") until an older channel's backoff (up to two minutes) ran out."""


def open_channel(endpoint: str, credentials: grpc.ChannelCredentials | None = None) -> Any:
    """A channel to ``endpoint`` (TLS with ``credentials``, else plain TCP) that connects on
    its own (``OWN_SUBCHANNELS``)."""
    if credentials is None:
        return grpc.insecure_channel(endpoint, options=OWN_SUBCHANNELS)
    return grpc.secure_channel(endpoint, credentials, options=OWN_SUBCHANNELS)


def open_aio_channel(endpoint: str, credentials: grpc.ChannelCredentials | None = None) -> Any:
    """``open_channel`` for asyncio."""
    if credentials is None:
        return grpc.aio.insecure_channel(endpoint, options=OWN_SUBCHANNELS)
    return grpc.aio.secure_channel(endpoint, credentials, options=OWN_SUBCHANNELS)


class ChannelPool:
    """One channel per ``host:port``, created on first use and closed by :meth:`close`.

    Args:
        tls: connect with TLS (default False: plain TCP).
        ca_file: PEM file of the CA that signed the servers' certificates (default: the
            system's roots). Needs ``tls``.
        cert_file: PEM client certificate for mutual TLS; needs ``key_file`` and ``tls``.
        key_file: PEM private key of ``cert_file``.
        token: bearer token sent on every call as ``authorization: Bearer <token>``.
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        token: str | None = None,
    ) -> None:
        if not tls and (ca_file or cert_file or key_file):
            raise ConfigError(
                "ca_file, cert_file and key_file are TLS settings: pass tls=True (--tls) too"
            )
        if bool(cert_file) != bool(key_file):
            raise ConfigError(
                "mutual TLS needs both cert_file and key_file (--cert-file and --key-file)"
            )
        if token is not None and (not token or token != token.strip()):
            raise ConfigError("token must be non-empty without surrounding whitespace")
        self._token = token
        self._credentials = _credentials(tls, ca_file, cert_file, key_file, token)
        self._lock = threading.Lock()
        self._channels: dict[str, Any] = {}
        self._stubs: dict[str, Any] = {}
        self._aio_stubs: dict[str, Any] = {}
        self._aio_channels: list[Any] = []
        self._closed = False

    def channel(self, endpoint: str) -> Any:
        """The channel to ``endpoint`` (``host:port``)."""
        with self._lock:
            if self._closed:
                raise ConfigError("the client is closed: create a new one")
            channel = self._channels.get(endpoint)
            if channel is None:
                channel = self._channels[endpoint] = open_channel(endpoint, self._credentials)
            return channel

    def table_stub(self, endpoint: str) -> Any:
        """The ``TableService`` stub of ``endpoint``, made once per endpoint."""
        stub = self._stubs.get(endpoint)
        if stub is None:
            stub = table_pb2_grpc.TableServiceStub(self.channel(endpoint))  # type: ignore[no-untyped-call]
            with self._lock:
                stub = self._stubs.setdefault(endpoint, stub)
        return stub

    def aio_table_stub(self, endpoint: str) -> Any:
        """A ``TableService`` stub of ``endpoint`` on an asyncio channel, for the event loop
        running now (a server's streams); one channel per endpoint, closed by ``aclose``."""
        with self._lock:
            if self._closed:
                raise ConfigError("the channel pool is closed")
            stub = self._aio_stubs.get(endpoint)
            if stub is None:
                channel = open_aio_channel(endpoint, self._credentials)
                self._aio_channels.append(channel)
                stub = self._aio_stubs[endpoint] = table_pb2_grpc.TableServiceStub(channel)  # type: ignore[no-untyped-call]
            return stub

    async def aclose(self) -> None:
        """Close the asyncio channels (on the loop they were made on)."""
        with self._lock:
            channels, self._aio_channels, self._aio_stubs = self._aio_channels, [], {}
        for channel in channels:
            await channel.close()

    def metadata(self) -> Metadata:
        """Metadata to send with every call: the token on plain channels, else nothing."""
        if self._token is not None and self._credentials is None:
            return (("authorization", f"Bearer {self._token}"),)
        return ()

    def close(self) -> None:
        with self._lock:
            channels, self._channels, self._closed = list(self._channels.values()), {}, True
            self._stubs = {}
        for channel in channels:
            channel.close()


def _credentials(
    tls: bool, ca_file: str | None, cert_file: str | None, key_file: str | None, token: str | None
) -> Any:
    if not tls:
        return None
    ssl = grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "ca_file"),
        private_key=_read(key_file, "key_file"),
        certificate_chain=_read(cert_file, "cert_file"),
    )
    if token is None:
        return ssl
    return grpc.composite_channel_credentials(ssl, grpc.access_token_call_credentials(token))


def _read(path: str | None, name: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {name} {path!r}: {exc.strerror}") from exc
