"""The committed protobuf modules are exactly what the script generates from proto/."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_generated_modules_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_protos.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"stale generated files:\n{result.stderr}"


def test_proto_path_is_the_import_path() -> None:
    from discovery.v1 import discovery_pb2

    assert discovery_pb2.DESCRIPTOR.package == "discovery.v1"
    assert discovery_pb2.DESCRIPTOR.name == "discovery/v1/discovery.proto"
