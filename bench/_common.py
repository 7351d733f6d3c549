"""What every benchmark needs: a broker to run against, child processes that die with it, and
a description of the machine."""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from goka.devbroker import DevBroker

__all__ = ["brokers_for", "die_with_parent", "machine"]

_PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def brokers_for(address: str | None) -> Iterator[str]:
    """``address`` if given, else a dev broker started for the run."""
    if address:
        yield address
    else:
        with DevBroker() as broker:
            yield broker.bootstrap


def die_with_parent() -> None:
    """``preexec_fn`` of a child process: SIGKILL it when the benchmark dies (Linux only; a
    no-op elsewhere), so an interrupted run leaves no server behind."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def machine(*versions: str) -> str:
    """CPU model, cores, memory and Python version, then ``versions`` (e.g. "grpcio 1.85")."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / (1 << 20):.0f} GiB"
    described = f"{os.cpu_count()} vCPU {model} ({platform.machine()}){memory}"
    return ", ".join((described, f"Python {platform.python_version()}", *versions))
