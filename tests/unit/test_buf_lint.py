"""The protos in proto/ pass ``buf lint`` (rules in proto/buf.yaml).

buf comes from the npm registry through npx, pinned to one version so every run lints with the
same rules. npx keeps the package in npm's cache, and ``--prefer-offline`` takes it from there
without asking the registry again: only the first run on a machine downloads (a few seconds),
later runs take under a second and work offline. This needs no package.json of its own in
proto/, where a node_modules directory would sit inside the buf module.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

BUF_VERSION = "1.75.0"
TIMEOUT = 240.0  # the first run downloads buf; under pytest-timeout (300 s) so output shows


def test_protos_pass_buf_lint() -> None:
    if shutil.which("npx") is None:
        pytest.skip("npx is not installed (it comes with node and npm): cannot run buf lint")
    result = subprocess.run(
        ["npx", "--yes", "--prefer-offline", f"@bufbuild/buf@{BUF_VERSION}", "lint"],
        cwd=ROOT / "proto",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"buf lint failed:\n{result.stdout}\n{result.stderr}"
