"""``python -m goka.localkafka``: prints the bootstrap servers of a real Kafka, keeps its data
and logs in --dir, runs the quick JVM setup, and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import goka
from goka.errors import BrokerError
from goka.pytest_plugin import require_local_kafka
from tests.conftest import ProcessGroup, unique

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_runs_until_sigterm_with_data_in_dir(processes: ProcessGroup, tmp_path: Path) -> None:
    require_local_kafka()
    proc = processes.start("-m", "goka.localkafka", "--dir", str(tmp_path))
    assert proc.stdout is not None
    bootstrap = proc.stdout.readline().strip()  # the first line, once Kafka serves clients
    assert bootstrap.startswith("127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
    topic = unique("cli")
    manager = goka.TopicManager(bootstrap)
    manager.ensure_stream(topic, 2)
    with goka.Emitter(bootstrap, topic, goka.codec.String()) as emitter:
        assert emitter.emit_sync("k", "v").offset == 0
    assert any((tmp_path / "node-1" / "data").glob(f"{topic}-*")), "no partition dir in --dir"
    assert (tmp_path / "node-1" / "kafka.log").exists()
    jvm = _java_command_line(tmp_path / "node-1")
    assert "-XX:TieredStopAtLevel=1" in jvm and "-XX:+UseSerialGC" in jvm, jvm  # the quick JVM
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "running (1 node(s)" in err
    assert (tmp_path / "node-1" / "data").is_dir(), "--dir was removed on exit"
    with pytest.raises(BrokerError):
        goka.TopicManager(bootstrap, timeout=2).partitions(topic)


def _java_command_line(node_dir: Path) -> list[str]:
    """The arguments of the running JVM whose Kafka logs go to ``node_dir``."""
    marker = f"-Dkafka.logs.dir={node_dir}".encode()
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or one that just ended
            continue
        if marker in args:
            return [arg.decode() for arg in args]
    raise AssertionError(f"no running JVM with {marker.decode()}")
