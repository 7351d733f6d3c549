"""The outage proxy of the Tansu leg (tests/support/proxy.py): a cut ends every connection
and refuses new ones until restore(), including ones accepted while the cut happens."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.support.proxy import TcpProxy


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def echoes(port: int) -> bool:
    """Whether a new connection through ``port`` forwards a round trip."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        return round_trip(conn)


def round_trip(conn: socket.socket) -> bool:
    try:
        conn.sendall(b"ping")
        return conn.recv(1024) == b"ping"
    except OSError:
        return False


def test_a_cut_ends_connections_and_refuses_new_ones_until_restored(echo_port: int) -> None:
    with TcpProxy(echo_port) as proxy:
        conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert round_trip(conn)
        proxy.cut()
        assert not round_trip(conn)
        conn.close()
        assert not echoes(proxy.port)
        proxy.restore()
        assert echoes(proxy.port)


def connect(port: int, into: list[socket.socket]) -> None:
    into.append(socket.create_connection(("127.0.0.1", port), timeout=5))


def test_no_connection_made_while_cutting_outlives_the_cut(echo_port: int) -> None:
    with TcpProxy(echo_port) as proxy:
        for _ in range(20):
            opened = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5)]
            connecting = threading.Thread(target=connect, args=(proxy.port, opened))
            connecting.start()
            proxy.cut()
            connecting.join(5)
            assert [round_trip(conn) for conn in opened] == [False] * len(opened)
            for conn in opened:
                conn.close()
            proxy.restore()


def test_close_ends_every_thread_it_started(echo_port: int) -> None:
    proxy = TcpProxy(echo_port)
    assert echoes(proxy.port)
    proxy.close()
    assert [t for t in proxy._threads if t.is_alive()] == []
