"""Click-count members as OS processes, for the multi-process tests, and their stats files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import ProcessGroup

FAST_GROUP_ARGS = ("--config", "session.timeout.ms=6000", "--config", "heartbeat.interval.ms=500")
"""A short session timeout, so that a killed member is noticed in seconds."""


def start_member(
    processes: ProcessGroup,
    brokers: str,
    topic: str,
    group: str,
    storage: Path,
    *args: str,
    stats_file: Path | None = None,
    log: Path | None = None,
    verbose: bool = False,
) -> subprocess.Popen[str]:
    """``python -m examples.clickcount process`` with fast group settings (``args`` come
    after them, so a ``--config`` there wins); ``stats_file`` gets the stats every 0.2 s,
    ``log`` the process's stderr (with goka's INFO messages if ``verbose``)."""
    stats = ("--stats-file", str(stats_file), "--stats-interval", "0.2") if stats_file else ()
    return processes.start(
        "-m", "examples.clickcount", *(("-v",) if verbose else ()), "process",
        "--brokers", brokers, "--topic", topic,
        "--group", group, "--storage", str(storage), *FAST_GROUP_ARGS, *args, *stats, log=log,
    )  # fmt: skip


def partition_stats(path: Path) -> dict[str, Any]:
    """The partitions of the stats file (empty until the member wrote it)."""
    partitions: dict[str, Any] = stats_of(path).get("partitions", {})
    return partitions


def stats_of(path: Path) -> dict[str, Any]:
    """The whole stats file (empty until the member wrote it)."""
    try:
        stats: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return stats


def running(path: Path) -> set[str]:
    """The partitions the member runs, as its stats file says."""
    return {p for p, s in partition_stats(path).items() if s["state"] == "running"}
