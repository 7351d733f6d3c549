"""Generate the code of every .proto under proto/: the Python modules next to the package
owning them, and with ``--go`` the Go client's packages.

    python scripts/generate_protos.py                 # (re)write the Python files
    python scripts/generate_protos.py --check         # exit 1 if a generated file is stale
    python scripts/generate_protos.py --go [--check]  # the same for clients/go (needs Go)

``proto/discovery/v1/discovery.proto`` (``package discovery.v1``) becomes
``discovery/v1/discovery_pb2.py``, ``_pb2.pyi`` and ``_pb2_grpc.py``, imported as
``from discovery.v1 import discovery_pb2``: the proto path equals the import path. For Go it
becomes ``clients/go/gen/discoveryv1/discovery.pb.go`` and ``discovery_grpc.pb.go`` (package
``discoveryv1``), made by protoc-gen-go and protoc-gen-go-grpc at the versions
``clients/go/go.mod`` pins (its ``tool`` lines), with the same protoc (grpcio-tools').
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
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


GO_MODULE_DIR = ROOT / "clients" / "go"
GO_MODULE = "github.com/goka-py/goka-py/clients/go"
GO_PLUGINS = {
    "go": "google.golang.org/protobuf/cmd/protoc-gen-go",
    "go-grpc": "google.golang.org/grpc/cmd/protoc-gen-go-grpc",
}


def go_package(relative: Path) -> str:
    """``discovery/v1/discovery.proto`` -> ``<module>/gen/discoveryv1;discoveryv1``."""
    name = "".join(relative.parent.parts)
    return f"{GO_MODULE}/gen/{name};{name}"


def generate_go(out: Path) -> list[Path]:
    """Builds the Go plugins, runs protoc with them into ``out``; returns the generated
    paths (relative to the repository)."""
    if shutil.which("go") is None:
        raise SystemExit("--go needs Go 1.26+ on PATH (https://go.dev/dl/)")
    plugins = out / "bin"
    for name, package in GO_PLUGINS.items():
        build = ["go", "build", "-o", str(plugins / f"protoc-gen-{name}"), package]
        done = subprocess.run(build, cwd=GO_MODULE_DIR, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"building protoc-gen-{name} failed:\n{done.stderr}")
    well_known = resources.files("grpc_tools") / "_proto"
    generated = []
    for proto in proto_files():
        relative = proto.relative_to(PROTO_ROOT)
        mapping = f"M{relative}={go_package(relative)}"
        arguments = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known}"]
        for name in GO_PLUGINS:
            arguments += [
                f"--plugin=protoc-gen-{name}={plugins / f'protoc-gen-{name}'}",
                f"--{name}_out={out}",
                f"--{name}_opt=module={GO_MODULE},{mapping}",
            ]
        if protoc.main([*arguments, str(relative)]) != 0:
            raise SystemExit(f"protoc failed on {relative} for Go")
        package = Path("clients/go/gen") / "".join(relative.parent.parts)
        generated += [
            package / f"{relative.stem}.pb.go",
            package / f"{relative.stem}_grpc.pb.go",
        ]
    for path in generated:  # written under out/gen/: move to where they live in the repo
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(out / path.relative_to("clients/go"), out / path)
    return sorted(generated)


def stale(out: Path, generated: list[Path]) -> list[Path]:
    return [
        path
        for path in generated
        if not (ROOT / path).exists() or not filecmp.cmp(out / path, ROOT / path, shallow=False)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    parser.add_argument("--go", action="store_true", help="the Go client's files, not Python's")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="goka-protos-") as tmp:
        out = Path(tmp)
        generated = generate_go(out) if args.go else generate(out)
        outdated = stale(out, generated)
        if args.check:
            command = "python scripts/generate_protos.py" + (" --go" if args.go else "")
            for path in outdated:
                print(f"stale: {path} (run {command})", file=sys.stderr)
            return 1 if outdated else 0
        for path in outdated:
            (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / path, ROOT / path)
            print(f"wrote {path}")
        if args.go:
            return 0
        for path in generated:  # the generated modules' packages must be importable
            for package in path.parents[:-1]:
                init = ROOT / package / "__init__.py"
                if not init.exists():
                    init.write_text("")
                    print(f"wrote {init.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
