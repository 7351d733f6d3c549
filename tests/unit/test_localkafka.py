"""goka.localkafka without starting Kafka: what a missing or old Java, a missing Maven and bad
arguments say, how the test fixture treats them, and which JVM setup the CLI asks for."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import goka.localkafka.__main__ as localkafka_cli
from goka.errors import LocalKafkaError
from goka.localkafka import KAFKA_VERSION, LocalKafka
from goka.localkafka._java import MissingTool, java_command, kafka_classpath
from goka.pytest_plugin import local_kafka


def fake_java(tmp_path: Path, version_line: str) -> Path:
    """A JAVA_HOME whose bin/java prints ``version_line`` as ``java -version`` does."""
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return tmp_path / "jdk"


def test_the_pinned_release_is_kafka_4() -> None:
    assert KAFKA_VERSION.split(".")[0] == "4"


def test_a_missing_java_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(MissingTool, match=r"needs Java 17 or newer: install .*openjdk-17"):
        java_command()


OLD_JAVAS = ['openjdk version "11.0.2" 2019-01-15', 'java version "1.8.0_392"']


@pytest.mark.parametrize("line", OLD_JAVAS)
def test_an_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str) -> None:
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, line)))
    major = "11" if "11." in line else "8"
    with pytest.raises(MissingTool, match=rf"is Java {major}: install openjdk-17"):
        java_command()


def test_java_17_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert java_command() == [str(home / "bin" / "java")]


def test_a_missing_maven_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn there
    with pytest.raises(MissingTool, match=r"install Maven \(e\.g\. apt-get install maven\)"):
        kafka_classpath(tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("kafka-*")), "a failed resolve left a jar directory"


def test_bad_arguments_are_named() -> None:
    with pytest.raises(LocalKafkaError, match="brokers must be 1 or 3, got 2"):
        LocalKafka(brokers=2)
    with pytest.raises(LocalKafkaError, match="positive seconds"):
        LocalKafka(start_timeout=0)
    kafka = LocalKafka()
    with pytest.raises(LocalKafkaError, match=r"not started: call start\(\) first"):
        _ = kafka.bootstrap
    with pytest.raises(LocalKafkaError, match=r"no node 1: this cluster has nodes none"):
        kafka.kill(1)
    with pytest.raises(LocalKafkaError, match=r"no SASL listener: pass sasl_users="):
        _ = kafka.sasl_bootstrap
    with pytest.raises(LocalKafkaError, match=r"user 'alice' and its password may only have"):
        LocalKafka(sasl_users={"alice": 'pass"; user_eve="x'})


def test_the_fixture_skips_without_java_and_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs Java 17 or newer"), local_kafka():
        pass
    monkeypatch.setenv("CI", "true")
    failed = pytest.raises(pytest.fail.Exception, match="CI=true and the Kafka tests cannot run")
    with failed, local_kafka():
        pass


def test_a_cluster_id_starting_with_a_dash_is_not_taken_for_an_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One random id in 64 starts with "-" (URL-safe base64): the storage tool must still
    take it as the id."""
    monkeypatch.setattr("goka.localkafka._cluster_id", lambda: "-" + "A" * 21)
    with local_kafka() as kafka:
        assert kafka.running(1)


def test_the_cli_runs_the_server_jvm_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, object]] = []

    class Refusing(LocalKafka):
        def __init__(self, **options: Any) -> None:
            made.append(options)
            super().__init__(**options)

        def start(self) -> LocalKafka:
            raise LocalKafkaError(f"not started here: {' '.join(self._jvm_options)}")

    monkeypatch.setattr(localkafka_cli, "LocalKafka", Refusing)
    quick = CliRunner().invoke(localkafka_cli.main, [])
    server = CliRunner().invoke(localkafka_cli.main, ["--server-jvm"])
    assert [options["server_jvm"] for options in made] == [False, True]
    assert "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" in quick.output, quick.output
    assert "-XX:+UseG1GC" in server.output and "TieredStopAtLevel" not in server.output
    assert quick.exit_code == server.exit_code == 1
