"""Generate the Python modules of every .proto under proto/ next to the package owning them.

    python scripts/generate_protos.py            # (re)write the generated files
    python scripts/generate_protos.py --check    # exit 1 if a generated file is stale

``proto/discovery/v1/discovery.proto`` (``package discovery.v1``) becomes
``discovery/v1/discovery_pb2.py``, ``_pb2.pyi`` and ``_pb2_grpc.py``, imported as
``from discovery.v1 import discovery_pb2``: the proto path equals the import path.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Runs protoc for every proto file into ``out``; returns the generated paths (relative)."""
    well_known = resources.files("grpc_tools") / "_proto"
    generated = []
    for proto in proto_files():
        relative = proto.relative_to(PROTO_ROOT)
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{PROTO_ROOT}",
                f"-I{well_known}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                str(relative),
            ]
        )
        if code != 0:
            raise SystemExit(f"protoc failed on {relative} (exit {code})")
        stem = relative.with_suffix("")
        generated += [stem.parent / f"{stem.name}{suffix}" for suffix in SUFFIXES]
    return sorted(set(generated))


def stale(out: Path, generated: list[Path]) -> list[Path]:
    return [
        path
        for path in generated
        if not (ROOT / path).exists() or not filecmp.cmp(out / path, ROOT / path, shallow=False)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="goka-protos-") as tmp:
        out = Path(tmp)
        generated = generate(out)
        outdated = stale(out, generated)
        if args.check:
            for path in outdated:
                print(f"stale: {path} (run python scripts/generate_protos.py)", file=sys.stderr)
            return 1 if outdated else 0
        for path in outdated:
            (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / path, ROOT / path)
            print(f"wrote {path}")
        for path in generated:  # the generated modules' packages must be importable
            for package in path.parents[:-1]:
                init = ROOT / package / "__init__.py"
                if not init.exists():
                    init.write_text("")
                    print(f"wrote {init.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
