"""The project's Go modules are ``gofmt`` and ``go vet`` clean and their unit tests pass
(``go test``; the live tests in them skip without a deployment, see
tests/integration/test_clients_live.py). Skipped without Go, failed under CI=true."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.tools import require_tools

GO_MODULES = [ROOT / "interop" / "goka", ROOT / "clients" / "go"]
TIMEOUT = 600.0
"""go vet builds the packages: the first time it downloads and compiles Goka, Sarama, gRPC."""


@pytest.mark.parametrize("module", GO_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_go_code_is_formatted_vetted_and_tested(module: Path) -> None:
    require_tools("go", "gofmt", install="Go 1.25+ (https://go.dev/dl/)")
    unformatted = subprocess.run(
        ["gofmt", "-l", "."], cwd=module, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert (unformatted.returncode, unformatted.stdout) == (0, ""), unformatted.stderr
    vet = subprocess.run(
        ["go", "vet", "./..."], cwd=module, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert vet.returncode == 0, vet.stdout + vet.stderr
    tests = subprocess.run(
        ["go", "test", "-count=1", "./..."], cwd=module, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
