"""goka._localproc.die_with_parent: the brokers and benchmarks' children die with the thread that
started them, and are started without running fork handlers in the child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from goka._localproc import die_with_parent
from tests.support.tools import require_tools

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only"
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _setpriv() -> None:
    require_tools("setpriv", install="util-linux (Debian: apt-get install util-linux)")


def run_parent(script: str) -> subprocess.Popen[str]:
    """A Python parent process running ``script`` with goka importable."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def is_gone(pid: int) -> bool:
    """True once ``pid`` exited (a zombie nobody reaped yet counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in {"Z", "X"}
    except FileNotFoundError:
        return True


def test_the_child_is_killed_when_its_parent_is_and_keeps_its_pid() -> None:
    parent = run_parent(
        """
        import subprocess, time
        from goka._localproc import die_with_parent
        child = subprocess.Popen(die_with_parent(["sleep", "300"]))
        print(child.pid, flush=True)
        time.sleep(300)
        """
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        while not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0"):
            assert time.monotonic() < deadline, "the child never became `sleep` under its pid"
            time.sleep(0.05)
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        while not is_gone(pid):
            assert time.monotonic() < deadline, f"child {pid} outlived its SIGKILLed parent"
            time.sleep(0.05)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]


def test_no_fork_handler_runs_in_the_child(tmp_path: Path) -> None:
    """A handler registered for the child side of fork() runs when the child is started with
    fork() (as a ``preexec_fn`` forces) and not when it is started with vfork(); gRPC's core has
    such handlers, and a child of a process serving gRPC was seen dying in them."""
    marker = tmp_path / "fork-handler-ran"
    parent = run_parent(
        f"""
        import os, subprocess
        from goka._localproc import die_with_parent
        os.register_at_fork(after_in_child=lambda: open({str(marker)!r}, "w").close())
        print(subprocess.run(die_with_parent(["true"])).returncode, flush=True)
        """
    )
    out, _ = parent.communicate(timeout=60)
    assert out.strip() == "0"
    assert not marker.exists()


def test_the_command_is_run_unchanged_behind_setpriv() -> None:
    command = die_with_parent(["java", "-cp", "x", "kafka.Kafka"])
    assert Path(command[0]).name == "setpriv"
    assert command[1:] == ["--pdeathsig", "KILL", "java", "-cp", "x", "kafka.Kafka"]
