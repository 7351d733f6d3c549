"""Shared fixtures: unique topic names, processors run in threads, CLI processes.

The dev broker comes from goka's pytest plugin (``goka_brokers``), shared by the session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import goka
from goka.topics import TopicManager

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = [  # fixtures shared by several modules
    "tests.support.outage",  # with_outage
    "tests.support.node_client",  # node_client
]

FAST_GROUP_CONFIG = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic_factory(goka_brokers: str) -> Iterator[Callable[..., str]]:
    """Creates uniquely named topics; deletes them after the test."""
    manager = TopicManager(goka_brokers)
    created: list[str] = []

    def create(prefix: str = "topic", partitions: int = 4) -> str:
        name = unique(prefix)
        manager.ensure_stream(name, partitions)
        created.append(name)
        return name

    yield create
    manager.delete(created)


class RunningProcessor:
    """A Processor running in a thread; ``stop()`` returns its error (if any)."""

    def __init__(self, processor: goka.Processor) -> None:
        self.processor = processor
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.processor.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test by stop()/join()
            self.error = exc

    def join(self, timeout: float) -> BaseException | None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"processor did not stop within {timeout}s")
        return self.error

    def stop(self, timeout: float = 30.0) -> BaseException | None:
        self.processor.stop()
        return self.join(timeout)


@pytest.fixture
def processor_factory(goka_brokers: str) -> Iterator[Callable[..., RunningProcessor]]:
    """Starts processors in threads (fast group settings, under the test's ``extra_config``);
    stops them after the test.

    Tansu completes a group join only after half the session timeout (3 s at 6 s, 23 s at
    librdkafka's default 45 s), so every processor keeps the fast settings."""
    running: list[RunningProcessor] = []

    def start(graph: goka.GroupGraph, **options: Any) -> RunningProcessor:
        options["extra_config"] = {**FAST_GROUP_CONFIG, **options.get("extra_config", {})}
        runner = RunningProcessor(goka.Processor(goka_brokers, graph, **options))
        running.append(runner)
        return runner

    yield start
    for runner in running:
        runner.stop()


class ProcessGroup:
    """CLI processes of a test; every one is killed at the end, none outlives the test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(
        self, *args: str, env: Mapping[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[str]:
        """``python *args`` with the project on its path and ``env`` added to this one's;
        stderr to the file ``log`` (for long runs, whose logs would fill a pipe nobody
        reads) or a pipe."""
        return self.start_program(sys.executable, *args, env=env, log=log)

    def start_program(
        self,
        program: str | Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
    ) -> subprocess.Popen[str]:
        """``program *args`` as ``start`` runs Python; stdin, stdout (and stderr without
        ``log``) are pipes."""
        with open(log, "a") if log is not None else contextlib.nullcontext() as stderr:
            proc = subprocess.Popen(
                [str(program), *args],
                stdin=subprocess.PIPE,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=stderr if stderr is not None else subprocess.PIPE,
                text=True,
                env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)


@pytest.fixture
def processes() -> Iterator[ProcessGroup]:
    group = ProcessGroup()
    yield group
    group.cleanup()
