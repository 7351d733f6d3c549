"""The container image (``Dockerfile``): a slim Python base, the package installed without
the dev extra, a numeric non-root user, the ``viewsvc`` script as entry point, ``examples/``
in the working directory (the processor StatefulSet runs ``python -m examples.clickcount``),
and a ``.dockerignore`` allow-list that lets through what the Dockerfile copies."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT
from tests.support.dockerfile import final_stage, image_entrypoint, image_uid, instructions


def test_dockerfile_builds_a_slim_non_root_image_of_the_package() -> None:
    found = instructions()
    build_args = dict(args.split("=", 1) for op, args in found if op == "ARG" and "=" in args)
    for op, args in found:
        if op == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: build_args[m[1]], args.split()[0])
            assert re.fullmatch(r"python:3\.1[1-9][\w.-]*-slim[\w.-]*", image), image
    runs = " ".join(args for op, args in found if op == "RUN")
    assert re.search(r"\bpip install \.(\s|$)", runs), (
        "the package is installed with `pip install .`"
    )
    assert "[dev]" not in runs and ".[" not in runs, "no extras (the dev extra) in the image"
    assert image_uid() != 0
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert image_entrypoint() == ["viewsvc"] and "viewsvc" in scripts
    # `python -m examples.clickcount` (the StatefulSet's command) needs examples/ in the
    # working directory: the package does not install it
    final = final_stage()
    workdir = [args for op, args in final if op == "WORKDIR"][-1]
    copies = [args.split() for op, args in final if op == "COPY" and "--from" not in args]
    assert ["examples/", "examples/"] in copies and workdir == "/app", (
        "examples/ is copied to the working directory /app"
    )
    assert (ROOT / "examples" / "clickcount" / "__main__.py").is_file()


def test_dockerignore_lets_through_what_the_dockerfile_copies() -> None:
    patterns = (ROOT / ".dockerignore").read_text().split()
    assert "**" in patterns, "the build context is an allow-list"
    allowed = {p.lstrip("!").rstrip("/") for p in patterns if p.startswith("!")}
    for op, args in instructions():
        if op == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert source.rstrip("/") in allowed, f".dockerignore excludes {source}"
    assert "examples/node_client/node_modules/" in patterns
