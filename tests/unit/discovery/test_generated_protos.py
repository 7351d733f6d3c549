"""The committed protobuf modules are exactly what the script generates from proto/."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT
from tests.support.tools import require_tools


def test_generated_modules_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_protos.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"stale generated files:\n{result.stderr}"


def test_generated_go_packages_are_up_to_date() -> None:
    """clients/go/gen, made with the plugin versions clients/go/go.mod pins."""
    require_tools("go", install="Go 1.26+ (https://go.dev/dl/) to generate clients/go/gen")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_protos.py"), "--go", "--check"],
        capture_output=True,
        text=True,
        timeout=600,  # the first run builds protoc-gen-go and protoc-gen-go-grpc
        check=False,
    )
    assert result.returncode == 0, f"stale generated files:\n{result.stderr}"


def test_proto_path_is_the_import_path() -> None:
    from discovery.v1 import discovery_pb2

    assert discovery_pb2.DESCRIPTOR.package == "discovery.v1"
    assert discovery_pb2.DESCRIPTOR.name == "discovery/v1/discovery.proto"
