"""mypy's scope: `./test` runs mypy on the files `[tool.mypy]` in pyproject.toml lists. Every
part of comm_node_tui is either in that list or waiting for its rewrite, so a new package
cannot slip past the type check unnoticed (docs/architecture.md, "Types")."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "comm_node_tui"

# Being rewritten; each moves to [tool.mypy] files when its rewrite lands.
NOT_YET_CHECKED = {"tui", "panes", "kickoff", "demo", "commands"}
# Entry points with nothing to check: the version string and `python -m`.
TRIVIAL = {"__init__", "__main__"}


def _mypy_files() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["mypy"]["files"]


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_mypy_checks_files_that_exist():
    missing = [f for f in _mypy_files() if not (ROOT / f).exists()]
    assert not missing, f"[tool.mypy] files names what does not exist: {missing}"


def test_every_part_is_checked_by_mypy_or_waiting_for_its_rewrite():
    checked = {_part(ROOT / f) for f in _mypy_files()}
    parts = {_part(p) for p in PACKAGE.rglob("*.py")}
    assert checked & NOT_YET_CHECKED == set(), "checked now: remove it from NOT_YET_CHECKED"
    unchecked = parts - checked - NOT_YET_CHECKED - TRIVIAL
    assert unchecked == set(), "add these to [tool.mypy] files in pyproject.toml"
