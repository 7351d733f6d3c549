"""The server processes of a run: started with their output in a log file, found listening
by the line they print, waited for until SERVING, stopped with their process group."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._common import cpu_seconds, die_with_parent

__all__ = ["ServerProcess", "start_process", "wait_serving"]

ROOT = Path(__file__).resolve().parents[2]
_SERVING = re.compile(r"^(?:serving (\S+) on|ceiling on) (\S+:\d+)$")
"""What a node (``viewsvc serve-view``, ``route``) or a reference server prints once
listening."""


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
        """User + system CPU time so far."""
        return cpu_seconds(self.proc.pid)

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
            die_with_parent(command),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
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
