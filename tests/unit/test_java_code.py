"""The Java client (clients/java) builds with Maven, stubs generated from proto/ at build time,
without warnings, and its unit tests pass (``mvn test``: the shared vectors; the live test
skips without a deployment, see tests/integration/test_clients_live.py). Skipped without
Java or Maven, failed under CI=true."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT
from tests.support.tools import require_tools

JAVA_CLIENT = ROOT / "clients" / "java"
TIMEOUT = 600.0
"""The first build downloads protoc, protoc-gen-grpc-java, gRPC and protobuf."""


def test_the_java_client_builds_without_warnings_and_passes_its_tests() -> None:
    require_tools("java", "mvn", install="Java 17+ and Maven (https://maven.apache.org)")
    done = subprocess.run(
        ["mvn", "-B", "clean", "test"],
        cwd=JAVA_CLIENT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:]
    warnings = [
        line
        for line in done.stdout.splitlines()
        if line.startswith("[WARNING]") and "Skipped: 1" not in line  # the live test
    ]
    assert warnings == [], "\n".join(warnings)
    report = JAVA_CLIENT / "target" / "surefire-reports" / "io.goka.client.VectorsTest.txt"
    assert "Tests run: 3, Failures: 0, Errors: 0, Skipped: 0" in report.read_text()
