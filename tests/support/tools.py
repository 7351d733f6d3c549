"""Tools some tests need besides Python (Go, Node.js): present, or the test is skipped with
a one-line message saying what to install; under ``CI=true`` that is a failure instead, so
CI never passes by skipping."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["require_tools"]


def require_tools(*tools: str, install: str) -> None:
    """Skips (fails under ``CI=true``) the test unless every one of ``tools`` is on PATH;
    ``install`` says what to install, e.g. ``"Go 1.25+ (https://go.dev/dl/)"``."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    message = f"{' and '.join(missing)} not found on PATH: install {install}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and this test cannot run: {message}", pytrace=False)
    pytest.skip(message)
