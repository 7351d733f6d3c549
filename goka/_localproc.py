"""What the local brokers (the Tansu dev broker, the local Apache Kafka) and benchmarks need to
run child processes on this machine: free loopback ports, and children that die with their
parent."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys

__all__ = ["die_with_parent", "free_loopback_port", "terminate"]

_PR_SET_PDEATHSIG = 1


def free_loopback_port() -> int:
    """Ask the OS for a free port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    """``preexec_fn`` of a child process: on Linux, SIGKILL it when the thread that started it
    dies, so a killed test run, demo or benchmark leaves nothing behind (a no-op elsewhere).

    Only a prctl call: safe between fork and exec.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


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
