"""The Node.js client of examples/node_client, its npm dependencies installed: the
``node_client`` fixture (registered for every test by tests/conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.tools import require_tools

__all__ = ["CLIENT_DIR", "node_client"]

CLIENT_DIR = ROOT / "examples" / "node_client"
NPM_TIMEOUT = 240.0  # first install downloads; under pytest-timeout (300 s) so npm output shows


@pytest.fixture(scope="session")
def node_client() -> Path:
    """The client's directory, with its npm dependencies installed (``npm ci``) if needed."""
    require_tools("node", "npm", install="Node.js 18+ with npm (https://nodejs.org)")
    installed = CLIENT_DIR / "node_modules" / ".package-lock.json"  # written by npm ci
    lockfile = CLIENT_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime:
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=CLIENT_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {CLIENT_DIR}:\n{result.stdout}\n{result.stderr}")
    return CLIENT_DIR
