"""The dev broker starts on a free loopback port, answers Kafka requests, leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka.admin import AdminClient

from goka.devbroker import DevBroker
from goka.errors import DevBrokerError
from tests.conftest import ROOT

pytestmark = pytest.mark.broker


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone as far as the broker is concerned
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_context_manager_starts_and_stops_the_broker() -> None:
    with DevBroker() as broker:
        host, port = broker.bootstrap.split(":")
        assert host == "127.0.0.1" and int(port) > 0
        pid = broker.pid
        assert pid is not None and alive(pid)
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
        assert len(metadata.brokers) == 1
    assert wait_gone(pid)
    with pytest.raises(DevBrokerError, match="not running"):
        _ = broker.bootstrap


def test_two_brokers_get_different_ports() -> None:
    with DevBroker() as first, DevBroker() as second:
        assert first.bootstrap != second.bootstrap


def test_module_prints_the_address_and_stops_the_broker_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "goka.devbroker"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("127.0.0.1:")
        AdminClient({"bootstrap.servers": address}).list_topics(timeout=10)
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert wait_gone(int(children[0]))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
