"""The Dockerfile, read the way ``docker build`` reads it: its instructions and what the
final stage sets (the entry point, the user)."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT

__all__ = ["final_stage", "image_entrypoint", "image_uid", "instructions"]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = (line.strip() for line in text.splitlines())
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def final_stage() -> list[tuple[str, str]]:
    """The instructions from the last FROM on: what the image is made of."""
    found = instructions()
    last_from = max(i for i, (op, _) in enumerate(found) if op == "FROM")
    return found[last_from:]


def image_entrypoint() -> list[str]:
    entrypoints = [args for op, args in final_stage() if op == "ENTRYPOINT"]
    assert entrypoints, "the Dockerfile has no ENTRYPOINT"
    entrypoint: list[str] = json.loads(entrypoints[-1])  # exec form: signals reach the app
    return entrypoint


def image_uid() -> int:
    users = [args for op, args in final_stage() if op == "USER"]
    assert users, "the image must switch to a non-root USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "USER must be numeric, so that runAsNonRoot can verify it"
    return int(uid)
