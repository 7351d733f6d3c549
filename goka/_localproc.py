"""What the local brokers (the Tansu dev broker, the local Apache Kafka) and benchmarks need to
run child processes on this machine: free loopback ports, and children that die with their
parent."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["die_with_parent", "free_loopback_port", "terminate"]


def free_loopback_port() -> int:
    """Ask the OS for a free port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent(command: Sequence[str]) -> list[str]:
    """``command`` wrapped so that, on Linux, the child is SIGKILLed when the thread that started
    it dies, so a killed test run, demo or benchmark leaves nothing behind.

    util-linux's ``setpriv --pdeathsig KILL`` sets PR_SET_PDEATHSIG and then execs ``command``
    (same pid; the setting survives exec). It is not done in a ``preexec_fn``: one makes
    ``subprocess`` use ``fork()`` instead of ``vfork()``, which runs the fork handlers of gRPC's
    core in the child, and a child forked by a process serving gRPC was seen dying there before
    its exec. Without ``setpriv`` (or off Linux) ``command`` is returned unchanged: the child then
    outlives a parent that is SIGKILLed.
    """
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    if setpriv is None:
        return list(command)
    return [setpriv, "--pdeathsig", "KILL", *command]


def terminate(proc: subprocess.Popen[bytes], signum: int, timeout: float) -> None:
    """Stop ``proc`` with ``signum`` (its clean shutdown), SIGKILL it after ``timeout`` seconds;
    returns once it exited. Nothing happens if it already exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(signum)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
