"""Real Goka (lovoo/goka, Go) for the interop tests: ``interop/goka`` built into one binary,
``gokainterop``, whose subcommands emit, count, copy, join and read Goka tables (see its
main.go), as OS processes."""

from __future__ import annotations

import json
import select
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, ProcessGroup
from tests.support.tools import require_tools

__all__ = ["GokaGo", "build"]

INTEROP_DIR = ROOT / "interop" / "goka"
BUILD_TIMEOUT = 600.0
"""The first build downloads Goka, Sarama and their modules."""


def build(into: Path) -> Path:
    """``go build`` of interop/goka into ``into``; skips without Go (fails under CI=true)."""
    require_tools("go", install="Go 1.25+ (https://go.dev/dl/) to build interop/goka")
    binary = into / "gokainterop"
    result = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=INTEROP_DIR,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"go build failed in {INTEROP_DIR}:\n{result.stdout}\n{result.stderr}")
    return binary


class GokaGo:
    """Runs ``gokainterop`` subcommands against ``brokers``."""

    def __init__(self, binary: Path, brokers: str, processes: ProcessGroup, logs: Path) -> None:
        self.binary, self.brokers, self.processes, self.logs = binary, brokers, processes, logs

    def emit(self, topic: str, pairs: list[tuple[str, str | int]], timeout: float) -> None:
        """Goka's emitter (default hasher): each (key, value), an Int64 when an int."""
        lines = "".join(f"{key} {value}\n" for key, value in pairs)
        proc = self.processes.start_program(
            self.binary, "emit", "-brokers", self.brokers, "-topic", topic
        )
        out, err = proc.communicate(lines, timeout=timeout)
        assert proc.returncode == 0 and out.strip() == f"emitted {len(pairs)}", err[-3000:]

    def processor(self, command: str, group: str, *args: str, timeout: float) -> None:
        """Starts a Goka processor (``count``, ``copy`` or ``joiner``) of ``group``; returns
        once it printed ``ready`` (recovered, its partitions assigned)."""
        log = self.logs / f"{group}.log"
        proc = self.processes.start_program(
            self.binary, command, "-brokers", self.brokers, "-group", group, *args, log=log
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        assert line.strip() == "ready", f"goka {command} not ready in {timeout}s: {log.read_text()}"

    def view(self, table: str, keys: list[str] | None, timeout: float) -> dict[str, int | None]:
        """The values Goka's view reads (``keys``: ``View.Get`` of each, which looks in the
        partition Goka's hasher picks; None: every entry, by its iterator)."""
        args = ["-keys", ",".join(keys)] if keys else []
        proc = self.processes.start_program(
            self.binary, "view", "-brokers", self.brokers, "-table", table, *args
        )
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-3000:]
        values: dict[str, int | None] = json.loads(out)
        return values
