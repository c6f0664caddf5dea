"""locks.index (coordination/store.py): the edit guard reads only the locks filed under its
path's prefixes, and answers exactly as reading all of locks.json does (issue 22: the guard's
cost grew with the locks held). Real locks through the Coordinator, real files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.coordination.store import LOCKS_INDEX, _index_line, locks_for
from comm_node_tui.hooks.guard import lock_holder
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import write_workspace

PATTERNS = {
    "frontend": [
        "src/**",
        "/web/app.ts",
        "*.css",  # any depth
        "docs/",
        "a b/c-d.txt",  # re.escape escapes the space and the dash
        "lib/*/x.py",
        "[ab]*/z.md",
        "weird\\\\name/**",  # a backslash: filed under the domain's directory
    ],
    "docs": ["**", "/guide/intro.md"],
}
PATHS = [
    "frontend/src/a.py",
    "frontend/src/deep/er/b.py",
    "frontend/web/app.ts",
    "frontend/web/app.tsx",
    "frontend/x/y/s.css",
    "frontend/docs/readme.md",
    "frontend/a b/c-d.txt",
    "frontend/lib/k/x.py",
    "frontend/b1/z.md",
    "frontend/weird\\name/f",
    "frontend/other.txt",
    "docs/guide/intro.md",
    "backend/src/a.py",
    "elsewhere/file",
]


@pytest.fixture
def ws(tmp_path: Path):
    root = write_workspace(tmp_path / "ws")
    ws = load_workspace(str(root))
    coord = Coordinator(ws)
    for holder, patterns in PATTERNS.items():
        for p in patterns:
            coord.acquire(ws.domains[holder], [p], reason=f"{holder} {p}")
    return ws


def whole_file(ws, dom, path: str) -> dict | None:
    """lock_holder with no index: locks.json read whole."""
    index = os.path.join(ws.paths.state, LOCKS_INDEX)
    shutil.move(index, index + ".away")
    try:
        return lock_holder(ws, dom, path)
    finally:
        shutil.move(index + ".away", index)


def test_the_index_answers_as_the_whole_file_does(ws):
    assert os.path.exists(os.path.join(ws.paths.state, LOCKS_INDEX))
    held = 0
    for name in ("backend", "frontend", "docs"):
        dom = ws.domains[name]
        for rel in PATHS:
            path = os.path.realpath(os.path.join(ws.root, rel))
            expected = whole_file(ws, dom, path)
            assert locks_for(ws.paths.state, path.lstrip("/")) is not None  # the index is used
            assert lock_holder(ws, dom, path) == expected, (name, rel)
            held += expected is not None
    assert held >= 10  # the patterns above do cover many of the paths


def test_the_index_holds_only_the_paths_prefixes(ws):
    path = os.path.realpath(os.path.join(ws.root, "frontend/src/a.py"))
    found = locks_for(ws.paths.state, path.lstrip("/"))
    patterns = {r["pattern"] for r in found}
    assert "src/**" in patterns and "*.css" in patterns  # frontend's, at or above the path
    assert "/web/app.ts" not in patterns  # another branch of frontend
    assert "**" not in patterns and "/guide/intro.md" not in patterns  # docs' directory


def test_a_locks_json_written_otherwise_is_read_whole(ws):
    state = Path(ws.paths.state)
    path = os.path.realpath(os.path.join(ws.root, "frontend/web/app.ts"))
    assert lock_holder(ws, ws.domains["backend"], path)["pattern"] == "/web/app.ts"
    # by hand (or by the cluster's mirror): no gen, the old index no longer applies
    data = json.loads((state / "locks.json").read_text())
    del data["gen"]
    data["locks"] = [r for r in data["locks"] if r["pattern"] != "/web/app.ts"]
    (state / "locks.json").write_text(json.dumps(data))
    assert locks_for(ws.paths.state, path.lstrip("/")) is None
    assert lock_holder(ws, ws.domains["backend"], path) is None
    # a hand edit that keeps the gen (as the first key, as the store writes it) but not the
    # size: the index is not used either
    gen = json.loads((state / LOCKS_INDEX).read_text().splitlines()[0])["gen"]
    kept = json.dumps({"gen": gen, "locks": []}, separators=(",", ":"))
    assert kept.startswith('{"gen":"')
    (state / "locks.json").write_text(kept)
    assert locks_for(ws.paths.state, path.lstrip("/")) is None
    assert lock_holder(ws, ws.domains["backend"], path) is None


def test_a_released_lock_leaves_the_index(ws):
    coord = Coordinator(ws)
    path = os.path.realpath(os.path.join(ws.root, "frontend/web/app.ts"))
    backend = ws.domains["backend"]
    assert lock_holder(ws, backend, path)["pattern"] == "/web/app.ts"
    coord.release("frontend", ["/web/app.ts"])
    coord.release("docs", ["**"])
    assert lock_holder(ws, backend, path) is None
    assert locks_for(ws.paths.state, path.lstrip("/")) is not None


@given(
    st.lists(st.text(alphabet='ab/,"é\\', max_size=6), unique=True, max_size=40),
    st.lists(st.text(alphabet='ab/,"é\\', max_size=6), max_size=10),
)
def test_a_prefix_line_is_found_by_binary_search_exactly_when_it_is_there(present, probes):
    def needle(p: str) -> bytes:
        return b"[" + json.dumps(p, ensure_ascii=False).encode() + b","

    lines = sorted(needle(p) + b"[[0,{}]]]" for p in present)
    data = b"HEAD\nLOOSE\n" + b"\n".join(lines) + b"\n"
    for p in [*present, *probes]:
        line = _index_line(data, len(b"HEAD\nLOOSE\n"), needle(p))
        if p in present:
            assert line == needle(p) + b"[[0,{}]]]"
        else:
            assert line is None
