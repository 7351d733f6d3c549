"""The design lives in the repository: docs/architecture.md names only files that exist, and
nothing points to a design document outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SOURCES = ["goka", "discovery", "viewsvc", "examples", "bench", "tests", "k8s", "scripts"]


def test_every_file_the_architecture_names_exists() -> None:
    text = ARCHITECTURE.read_text()
    named = set(re.findall(r"\b((?:goka|discovery|viewsvc|tests|bench)/[\w/]+\.(?:py|md))", text))
    assert len(named) > 10  # the test would pass on a page that names nothing
    assert sorted(path for path in named if not (ROOT / path).is_file()) == []


def test_nothing_points_outside_the_repository_for_the_design() -> None:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", ARCHITECTURE]
    for folder in SOURCES:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".yaml"}]
    offenders = [
        str(path.relative_to(ROOT))
        for path in files
        if "node_modules" not in path.parts
        and path != Path(__file__)
        and re.search(r"DESIGN\.md|\.\./shared/", path.read_text(errors="replace"))
    ]
    assert offenders == []
