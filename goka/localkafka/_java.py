"""Java and the Kafka jars: finds a Java 17+, and resolves the pinned Kafka release from Maven
Central with Maven into a cache directory (once; later starts reuse it)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from goka.errors import LocalKafkaError, MissingTool

__all__ = ["KAFKA_VERSION", "MissingTool", "java_command", "kafka_classpath"]

_POM = Path(__file__).resolve().parent / "pom.xml"
KAFKA_VERSION = re.search(
    r"<artifactId>kafka_2\.13</artifactId>\s*<version>([^<]+)</version>", _POM.read_text()
).group(1)  # type: ignore[union-attr]
_MIN_JAVA = 17


def java_command() -> list[str]:
    """The ``java`` to run Kafka with: ``$JAVA_HOME/bin/java`` if set, else the one on PATH;
    raises MissingTool unless it is Java 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        raise MissingTool(
            "the local Kafka needs Java 17 or newer: install a JDK or JRE "
            "(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MissingTool(f"cannot run {java} -version ({exc}): install Java 17 or newer") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0_392" is Java 8
        major = int(match.group(2))
    if major < _MIN_JAVA:
        raise MissingTool(
            f"the local Kafka needs Java {_MIN_JAVA} or newer, {java} is Java {major or '?'}: "
            "install openjdk-17-jre-headless (or newer) or point JAVA_HOME at one"
        )
    return [java]


def default_cache_dir() -> Path:
    configured = os.environ.get("GOKA_KAFKA_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "goka" / "kafka"


def kafka_classpath(cache_dir: str | Path | None = None) -> str:
    """The classpath of the pinned Kafka, resolving the jars with Maven on first use.

    The jars live in ``<cache>/<pom hash>/``, so changing the pom resolves afresh; a lock
    file keeps two processes from resolving at once, and the directory appears only when
    complete.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = hashlib.sha256(_POM.read_bytes()).hexdigest()[:12]
    jars = cache / f"kafka-{KAFKA_VERSION}-{digest}"
    if not jars.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not jars.is_dir():
                _resolve(jars)
    return str(jars / "*")


def _resolve(target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingTool(
            f"the local Kafka resolves Kafka {KAFKA_VERSION} from Maven Central with Maven: "
            "install Maven (e.g. apt-get install maven)"
        )
    staging = Path(tempfile.mkdtemp(prefix=".resolving-", dir=target.parent))
    command = [
        mvn,
        "--batch-mode",
        "--quiet",
        "--file",
        str(_POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            raise LocalKafkaError(
                f"Maven could not resolve Kafka {KAFKA_VERSION} from {_POM} "
                f"(exit {done.returncode}); check that Maven Central is reachable:\n"
                f"{(done.stdout + done.stderr).strip()[-3000:]}"
            )
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
