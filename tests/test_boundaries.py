"""Boundaries: real git repositories (gitpython) with Python, JS/TS and Rust code, the real
`comm-node check` / `graph` CLI, a real `git commit` through the pre-commit guard, the
engine's background check and the control room's overlay."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import git
import pytest

from comm_node_tui.boundaries.check import MAX_SOURCE_BYTES, ImportCache, run_check
from comm_node_tui.boundaries.rust_imports import expand_tree
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, dedent, run_cli, write_workspace
from tests.waiting import until


def files(root: Path, tree: dict[str, str]) -> None:
    for rel, text in tree.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(dedent(text) if text else "")


def git_repo(path: Path, commit: bool = True) -> git.Repo:
    repo = git.Repo.init(path)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Test")
        cw.set_value("user", "email", "test@example.com")
        cw.set_value("commit", "gpgsign", "false")
    if commit:
        repo.git.add(A=True)
        repo.index.commit("initial")
    return repo


def config(root: Path, domains: list[dict], project: str = "bounds") -> None:
    parts = [f'[project]\nname = "{project}"\n[boundaries]\ncheck_interval_s = 0\n']
    for d in domains:
        lines = [f'name = "{d["name"]}"', f'path = "{d.get("path", d["name"])}"']
        for key in ("scope", "allowed_imports", "forbidden_imports"):
            if key in d:
                lines.append(f"{key} = {json.dumps(d[key])}")
        parts.append("[[domains]]\n" + "\n".join(lines) + "\n")
    (root / "comm-node.toml").write_text("\n".join(parts))


def check_json(root: Path, *args: str, env=None) -> tuple[int, dict]:
    r = run_cli("check", "--json", *args, cwd=root, env=env)
    assert r.returncode in (0, 4), r.stderr
    return r.returncode, json.loads(r.stdout)


def imports_of(report: dict, domain: str | None = None) -> set[tuple[str, int, str, str]]:
    return {
        (v["file"], v["line"], v["target"], v["owner"])
        for v in report["violations"]
        if v["kind"] == "import" and (domain is None or v["domain"] == domain)
    }


# ---- Python ------------------------------------------------------------------------------
@pytest.fixture
def py_ws(tmp_path: Path) -> Path:
    """One repository, three scoped domains: api may use core only; web may not use api."""
    root = tmp_path / "mono"
    files(
        root,
        {
            "core/__init__.py": "",
            "core/models.py": "X = 1\n",
            "core/db/__init__.py": "",
            "core/db/session.py": "S = 1\n",
            "api/__init__.py": "",
            "api/routes.py": """
                import os
                import core.models
                from core.db import session
                from core import models as m
                from . import helpers
                from .helpers import thing
                """,
            "api/helpers.py": "thing = 1\n",
            "web/__init__.py": "",
            "web/views.py": """
                import json

                from api import routes
                from api.helpers import thing
                import core.db.session
                """,
            "web/broken.py": "def nope(:\n",
        },
    )
    config(
        root,
        [
            {"name": "core", "path": ".", "scope": ["core/**"]},
            {"name": "api", "path": ".", "scope": ["api/**"], "allowed_imports": ["core"]},
            {"name": "web", "path": ".", "scope": ["web/**"], "forbidden_imports": ["api"]},
        ],
    )
    git_repo(root)
    return root


def test_python_imports_absolute_relative_and_submodules(py_ws: Path) -> None:
    code, report = check_json(py_ws)
    assert code == 4
    # api imports only core (allowed) and itself: clean. web imports api twice: forbidden.
    assert imports_of(report) == {
        ("web/views.py", 3, "api/routes.py", "api"),
        ("web/views.py", 4, "api/helpers.py", "api"),
    }
    v = next(x for x in report["violations"] if x["line"] == 3)
    assert v == {
        "kind": "import",
        "domain": "web",
        "file": "web/views.py",
        "line": 3,
        "rule": "forbidden_imports: api",
        "owner": "api",
        "import": "from api import routes",
        "target": "api/routes.py",
    }
    # `from core.db import session` resolved to the submodule, not the package
    edges = {(e["from"], e["to"]): e for e in report["edges"]}
    assert edges[("api", "core")]["count"] == 3 and edges[("api", "core")]["violations"] == 0
    assert edges[("web", "api")]["violations"] == 2
    assert edges[("web", "core")]["count"] == 1
    # a file that does not parse is reported, and the rest is still checked
    assert report["unparsed"][0]["file"] == "web/broken.py"
    assert "syntax error" in report["unparsed"][0]["error"]


def test_allowed_imports_refuses_what_it_does_not_list(py_ws: Path) -> None:
    (py_ws / "api" / "routes.py").write_text("from web.views import json\nimport core\n")
    code, report = check_json(py_ws, "--domain", "api")
    assert code == 4
    assert imports_of(report) == {("api/routes.py", 1, "web/views.py", "web")}
    v = next(x for x in report["violations"] if x["kind"] == "import")
    assert v["rule"] == "not in allowed_imports [core]"
    # the text output names domain, file:line, import, target, owner and rule
    r = run_cli("check", "--domain", "api", cwd=py_ws)
    assert r.returncode == 4
    assert (
        "api: api/routes.py:1: from web.views import json -> web/views.py (owned by web): "
        "not in allowed_imports [core]" in r.stdout
    )


def test_clean_repository_exits_zero(py_ws: Path) -> None:
    (py_ws / "web" / "views.py").write_text("import core.models\n")
    (py_ws / "web" / "broken.py").write_text("x = 1\n")
    repo = git.Repo(py_ws)
    repo.git.add(A=True)
    repo.index.commit("clean")
    code, report = check_json(py_ws)
    assert code == 0 and report["violations"] == [] and report["unparsed"] == []
    assert report["files_checked"] == 10


# ---- scope: changes outside a domain's files -------------------------------------------
def test_changes_outside_scope_worktree_and_staged(py_ws: Path) -> None:
    (py_ws / "web" / "views.py").write_text("import core.models\n")
    (py_ws / "web" / "broken.py").unlink()
    (py_ws / "core" / "models.py").write_text("X = 2\n")  # core's file, edited
    (py_ws / "stray.txt").write_text("nobody owns me\n")
    git.Repo(py_ws).index.add(["core/models.py"])
    # as web (an agent checks its own work): everything outside web/** it touched
    _, report = check_json(py_ws, "--domain", "web")
    scope = {(v["file"], v["owner"]) for v in report["violations"] if v["kind"] == "scope"}
    assert scope == {("core/models.py", "core"), ("stray.txt", None)}
    # every domain: only the file nobody owns is out of bounds
    _, report = check_json(py_ws)
    scope = [v for v in report["violations"] if v["kind"] == "scope"]
    assert [(v["file"], v["owner"], v["rule"]) for v in scope] == [
        ("stray.txt", None, "no domain's scope covers it")
    ]
    # staged only: the index holds core/models.py and nothing else
    _, report = check_json(py_ws, "--domain", "web", "--staged")
    assert [v["file"] for v in report["violations"]] == ["core/models.py"]


def test_staged_check_reads_the_index_not_the_worktree(py_ws: Path) -> None:
    views = py_ws / "web" / "views.py"
    (py_ws / "web" / "broken.py").write_text("x = 1\n")
    views.write_text("import core.models\n")
    git.Repo(py_ws).git.add(A=True)
    views.write_text("from api import routes\n")  # not staged: the commit would be clean
    code, report = check_json(py_ws, "--staged")
    assert code == 0, report
    code, report = check_json(py_ws)
    assert code == 4


def test_a_staged_file_too_large_to_parse_is_reported_and_the_rest_still_read(
    py_ws: Path,
) -> None:
    """A staged source file over the size limit is named, unread, and the files after it
    are read: with GitPython's shared `cat-file --batch`, the unread blob was left in the
    pipe and the next file's header read it (ValueError: the pre-commit guard crashed)."""
    web = py_ws / "web"
    (web / "huge.py").write_text("x = 1\n" * (MAX_SOURCE_BYTES // 6 + 10))  # before views.py
    (web / "views.py").write_text("from api import routes\n")  # web may not use api
    git.Repo(py_ws).git.add(A=True)
    code, report = check_json(py_ws, "--staged")
    assert code == 4, report
    assert {"file": "web/huge.py", "error": "too large"} in report["unparsed"]
    assert "web/views.py" in [v["file"] for v in report["violations"]]


def test_repo_top_is_git_own_answer_and_a_pruned_worktree_is_no_repository(tmp_path: Path) -> None:
    """Where git finds the repository: a folder, a worktree's `.git` file; a worktree whose
    folder in the main repository was pruned (its `.git` names nothing) is no repository,
    and git looks no further up: `check` walks it as a plain folder instead of failing."""
    from comm_node_tui.boundaries.gitfiles import repo_top

    main = tmp_path / "main"
    (main / "src").mkdir(parents=True)
    (main / "src" / "a.py").write_text("x = 1\n")

    def git_(*args: str, cwd: Path = main) -> None:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)

    git_("init", "-q")
    git_("add", "-A")
    git_("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    git_("worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))
    assert repo_top(str(main / "src")) == str(main.resolve())
    assert repo_top(str(tmp_path / "wt")) == str((tmp_path / "wt").resolve())
    assert repo_top(str(tmp_path / "nowhere")) is None
    assert repo_top(str(tmp_path)) is None  # tmp_path itself is in no repository
    for sub in (main / ".git" / "worktrees").iterdir():
        shutil.rmtree(sub)  # pruned under the worktree's feet
    assert repo_top(str(tmp_path / "wt")) is None
    root = write_workspace(
        tmp_path,
        domains=("wt",),
        domain_extra={"wt": 'scope = ["**"]'},
    )
    code, report = check_json(root)
    assert code == 0, report


# ---- JavaScript / TypeScript --------------------------------------------------------------
def test_js_ts_import_forms_and_resolution(tmp_path: Path) -> None:
    root = tmp_path / "js"
    files(
        root,
        {
            "shared/package.json": '{"name": "@acme/shared"}',
            "shared/src/index.ts": "export const s = 1;\n",
            "shared/src/types.ts": "export type T = 1;\n",
            "server/src/db/index.ts": "export const db = 1;\n",
            "server/src/auth.js": "module.exports = 1;\n",
            "server/src/util.mts": "export const u = 1;\n",
            "app/src/local.ts": "export const l = 1;\n",
            "app/src/main.tsx": """
                import { s } from "@acme/shared";
                import type { T } from "@acme/shared/types";
                import React from "react";
                import {
                  db,
                } from "../../server/src/db";
                export * from "../../server/src/auth.js";
                export { u } from '../../server/src/util.mjs';
                // import { x } from "../../server/src/db";
                /* require("../../server/src/auth") */
                const url = "http://example.com//not-a-comment";
                const auth = require("../../server/src/auth");
                const lazy = () => import("../../server/src/db/index.ts");
                const tmpl = import(`../../server/src/auth`);
                import "./local";
                """,
        },
    )
    config(
        root,
        [
            {"name": "shared"},
            {"name": "server"},
            {"name": "app", "allowed_imports": ["shared"]},
        ],
    )
    git_repo(root)
    code, report = check_json(root)
    assert code == 4
    found = imports_of(report, "app")
    assert found == {
        ("app/src/main.tsx", 4, "server/src/db/index.ts", "server"),
        ("app/src/main.tsx", 7, "server/src/auth.js", "server"),
        ("app/src/main.tsx", 8, "server/src/util.mts", "server"),
        ("app/src/main.tsx", 12, "server/src/auth.js", "server"),
        ("app/src/main.tsx", 13, "server/src/db/index.ts", "server"),
        ("app/src/main.tsx", 14, "server/src/auth.js", "server"),
    }
    edges = {(e["from"], e["to"]): e for e in report["edges"]}
    assert edges[("app", "shared")] == {
        "from": "app",
        "to": "shared",
        "count": 2,
        "violations": 0,
    }


# ---- Rust ---------------------------------------------------------------------------------
def test_rust_use_and_mod(tmp_path: Path) -> None:
    root = tmp_path / "rs"
    files(
        root,
        {
            "engine/Cargo.toml": '[package]\nname = "engine-core"\nversion = "0.1.0"\n',
            "engine/src/lib.rs": "pub mod physics;\npub mod secret;\n",
            "engine/src/physics.rs": "pub fn step() {}\n",
            "engine/src/secret/mod.rs": "pub fn key() {}\n",
            "game/Cargo.toml": '[package]\nname = "game"\nversion = "0.1.0"\n',
            "game/src/main.rs": """
                mod world;
                mod net;
                use engine_core::physics::step;
                use std::collections::HashMap;
                fn main() {}
                """,
            "game/src/world.rs": """
                // use engine_core::secret;
                use crate::net::{self, Packet as P};
                use super::net::send;
                pub mod map;
                use engine_core::{physics, secret::key};
                """,
            "game/src/world/map.rs": "use super::super::net;\nuse self::inner::X;\n",
            "game/src/net.rs": "pub struct Packet;\npub fn send() {\n"
            '    let _ = "use engine_core::x;";\n}\n',
        },
    )
    config(
        root,
        [
            {"name": "physics", "path": "engine", "forbidden_imports": ["game"]},
            {"name": "game", "forbidden_imports": ["physics:src/secret/**"]},
        ],
    )
    git_repo(root)
    code, report = check_json(root)
    assert code == 4
    assert imports_of(report) == {("game/src/world.rs", 5, "engine/src/secret/mod.rs", "physics")}
    v = next(x for x in report["violations"] if x["kind"] == "import")
    assert v["rule"] == "forbidden_imports: physics:src/secret/**"
    assert v["import"] == "use engine_core::{physics, secret::key}"
    edges = {(e["from"], e["to"]): e["count"] for e in report["edges"]}
    assert edges == {("game", "physics"): 3}  # physics (main.rs), physics + secret (world.rs)
    assert report["unparsed"] == []


def test_rust_use_trees_expand() -> None:
    assert expand_tree("a::{b, c::{d, e as f}, self}") == ["a::b", "a::c::d", "a::c::e", "a"]
    assert expand_tree("crate::x::*") == ["crate::x::*"]


# ---- several repositories ---------------------------------------------------------------
def test_several_repositories(tmp_path: Path) -> None:
    root = tmp_path / "multi"
    files(
        root,
        {
            "billing/billing/__init__.py": "",
            "billing/billing/invoice.py": "from ledger.store import save\n",
            "ledger/ledger/__init__.py": "",
            "ledger/ledger/store.py": "def save(): pass\n",
        },
    )
    config(
        root,
        [
            {"name": "billing", "forbidden_imports": ["ledger:ledger/store.py"]},
            {"name": "ledger"},
        ],
    )
    git_repo(root / "billing")
    git_repo(root / "ledger")
    (root / "ledger" / "ledger" / "store.py").write_text("def save(): return 1\n")
    code, report = check_json(root)
    assert code == 4
    assert imports_of(report) == {
        ("billing/billing/invoice.py", 1, "ledger/ledger/store.py", "ledger")
    }
    # ledger's own change is inside its scope: no scope violation
    assert [v for v in report["violations"] if v["kind"] == "scope"] == []
    # only billing's repository
    code, report = check_json(root, "--repo", str(root / "ledger"))
    assert code == 0 and report["files_checked"] == 2


# ---- the graph ----------------------------------------------------------------------------
def test_graph_dot_and_mermaid(py_ws: Path) -> None:
    dot = run_cli("graph", cwd=py_ws)
    assert dot.returncode == 0, dot.stderr
    assert '"web" -> "api" [color=red, fontcolor=red, label="2 imports, 2 violations"];' in (
        dot.stdout
    )
    assert '"api" -> "core" [label="3 imports"];' in dot.stdout
    mer = run_cli("graph", "--format", "mermaid", cwd=py_ws)
    lines = mer.stdout.splitlines()
    assert lines[0] == "graph LR"
    red = [i for i, ln in enumerate(x for x in lines if "--" in x) if "violations" in ln]
    assert f"  linkStyle {','.join(map(str, red))} stroke:red,color:red" in lines


# ---- the git pre-commit guard --------------------------------------------------------------
def _commit(repo_dir: Path, message: str, *extra: str, env=None):
    return subprocess.run(
        ["git", "commit", "-m", message, *extra],
        cwd=repo_dir,
        capture_output=True,
        text=True,
        timeout=60,
        env=env or cli_env(),
    )


def test_pre_commit_guard_blocks_then_allows_and_keeps_the_users_hook(py_ws: Path) -> None:
    hooks = py_ws / ".git" / "hooks"
    mine = hooks / "pre-commit"
    mine.write_text(f"#!/bin/sh\necho ran >> {py_ws}/user-hook.log\n")
    mine.chmod(mine.stat().st_mode | stat.S_IXUSR)
    r = run_cli("hooks", "install", "--git", cwd=py_ws)
    assert r.returncode == 0, r.stderr
    assert "your hook kept" in r.stdout
    # idempotent: a second install keeps one chained hook, not a chain of ours
    assert run_cli("hooks", "install", "--git", cwd=py_ws).returncode == 0
    assert sorted(p.name for p in hooks.glob("pre-commit*") if "sample" not in p.name) == [
        "pre-commit",
        "pre-commit.before-comm-node",
    ]
    repo = git.Repo(py_ws)
    head = repo.head.commit.hexsha
    (py_ws / "web" / "broken.py").write_text("from api.routes import x\n")
    repo.git.add("web/broken.py")
    r = _commit(py_ws, "violating")
    assert r.returncode == 1
    assert "commit blocked: 1 boundary violation(s)" in r.stderr
    assert "web/broken.py:1: from api.routes import x -> api/routes.py (owned by api)" in r.stderr
    assert "--no-verify" in r.stderr
    assert repo.head.commit.hexsha == head
    # fixed: the commit goes through (the existing violations in web/views.py are not staged)
    (py_ws / "web" / "broken.py").write_text("from core.models import X\n")
    repo.git.add("web/broken.py")
    r = _commit(py_ws, "fixed")
    assert r.returncode == 0, r.stderr
    assert repo.head.commit.hexsha != head
    # the user's hook ran before ours both times
    assert (py_ws / "user-hook.log").read_text() == "ran\nran\n"
    # the event log has both verdicts
    log = run_cli("log", "--json", "-t", "boundary", cwd=py_ws).stdout.splitlines()
    assert [json.loads(x)["type"] for x in log] == [
        "boundary.commit_blocked",
        "boundary.commit_checked",
    ]
    # uninstall restores the user's hook as it was
    r = run_cli("hooks", "uninstall", "--git", cwd=py_ws)
    assert r.returncode == 0 and "restored" in r.stdout
    assert mine.read_text().startswith("#!/bin/sh\necho ran")
    assert not (hooks / "pre-commit.before-comm-node").exists()


def test_failing_user_hook_still_blocks(py_ws: Path) -> None:
    mine = py_ws / ".git" / "hooks" / "pre-commit"
    mine.write_text("#!/bin/sh\necho user says no >&2\nexit 7\n")
    mine.chmod(0o755)
    assert run_cli("hooks", "install", "--git", cwd=py_ws).returncode == 0
    (py_ws / "web" / "broken.py").write_text("x = 1\n")
    git.Repo(py_ws).git.add(A=True)
    r = _commit(py_ws, "clean but refused")
    assert r.returncode != 0 and "user says no" in r.stderr


# ---- the engine and the control room -----------------------------------------------------
def test_engine_reports_new_and_resolved_violations(py_ws: Path, engine_for) -> None:
    eng = engine_for(py_ws)
    data = eng.check_boundaries()
    assert len([v for v in data["violations"] if v["kind"] == "import"]) == 2
    types = [e.type for e in eng.recent if e.type.startswith("boundary")]
    assert types == ["boundary.violation", "boundary.violation"]
    alert = next(e for e in eng.recent if e.type == "boundary.violation")
    assert alert.agent == "web" and alert.level == "warn" and alert.data["owner"] == "api"
    eng.check_boundaries()  # nothing changed: nothing logged again
    assert len([e for e in eng.recent if e.type.startswith("boundary")]) == 2
    (py_ws / "web" / "views.py").write_text("from api import routes\n")
    eng.check_boundaries()
    resolved = [e for e in eng.recent if e.type == "boundary.resolved"]
    assert len(resolved) == 1 and "from api.helpers import thing" in resolved[0].msg
    assert eng.snapshot().boundaries.violations[0].file == "web/views.py"
    # a viewer (no engine in-process) reads the engine's copy
    from comm_node_tui.engine.world import snapshot

    viewer = snapshot(eng.ws, eng.coord).to_json()
    assert viewer["boundaries"]["violations"] == eng.boundaries["violations"]


def test_import_cache_sees_new_files(py_ws: Path) -> None:
    ws = load_workspace(str(py_ws))
    cache = ImportCache()
    (py_ws / "web" / "views.py").write_text("from core import extra\n")
    first = run_check(ws, cache=cache)
    assert [v for v in first.violations if v.kind == "import"] == []
    assert first.edges[("web", "core")]["count"] == 1  # the package, until extra.py exists
    (py_ws / "api" / "extra.py").write_text("")
    (py_ws / "web" / "views.py").write_text("from api import extra\n")
    os.utime(py_ws / "web" / "views.py", ns=(1, 1))  # a changed file: new stamp either way
    again = run_check(ws, cache=cache)
    assert [v.target for v in again.violations if v.kind == "import"] == ["api/extra.py"]


async def test_control_room_shows_boundaries(py_ws: Path) -> None:
    from comm_node_tui.tui.app import ControlRoom

    # The timer on: the engine checks at once when it starts, on its own thread (its state
    # changes only there, so this test does not run a check from the UI thread).
    toml = py_ws / "comm-node.toml"
    toml.write_text(toml.read_text().replace("check_interval_s = 0", "check_interval_s = 30"))
    app = ControlRoom(load_workspace(str(py_ws)))
    async with app.run_test(size=(160, 48)) as pilot:

        def checked() -> bool:
            if app.bridge.engine is not None and app.bridge.engine.boundaries is not None:
                app.request_refresh()
            return bool(app.world and app.world.boundaries and app.bridge.engine)

        await until(pilot, checked, every=0.1, what="the engine's first boundaries check")
        await pilot.press("v")
        await until(pilot, lambda: type(app.screen).__name__ == "BoundariesScreen")
        await pilot.pause()
        table = app.screen.query_one("#boundaries-table")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[0] == [
            "web",
            "web/views.py:3",
            "from api import routes → api/routes.py",
            "api",
            "forbidden_imports: api",
        ]
        assert "2 violation(s)" in str(app.screen.query_one("#boundaries-summary").render())
        await pilot.press("escape")
        assert not app.screen.is_modal


def test_config_refuses_bad_rules(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    (root / "a").mkdir(parents=True)
    config(root, [{"name": "a", "forbidden_imports": ["nosuch:x/**", "typo"]}])
    r = run_cli("config", "check", cwd=root)
    assert r.returncode == 1
    assert "forbidden_imports: 'nosuch:x/**': unknown domain 'nosuch' (known: a)" in r.stderr
    config(root, [{"name": "a", "scope": ["../escape/**"]}])
    r = run_cli("config", "check", cwd=root)
    assert "domains[0] (a).scope: '../escape/**': '..' is not allowed" in r.stderr


def test_a_git_failure_is_one_line_with_gits_reason(tmp_path: Path) -> None:
    """git's complaint can span lines (hints first, its reason last): the operator gets one."""
    from comm_node_tui.boundaries.gitfiles import GitError, _run

    (tmp_path / "r").mkdir()
    subprocess.run(["git", "init", "-q"], cwd=tmp_path / "r", check=True)
    with pytest.raises(GitError) as info:
        _run(str(tmp_path / "r"), "show", "no-such-revision")
    said = str(info.value)
    assert "\n" not in said and "unknown revision" in said, said
