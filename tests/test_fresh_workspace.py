"""A workspace fresh from `comm-node init` passes its own check: the files comm-node writes
and manages (each domain's CLAUDE.md part, .claude/settings.json, the protocol folders, a
nested repository or worktree, comm-node.toml, tasks.toml) are never boundary violations,
and with the pre-commit guard installed `git add -A && git commit` of init's output goes
through. Real `comm-node init`, real git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import git
import pytest

from comm_node_tui.boundaries.check import run_check
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import run_cli
from tests.test_kickoff import PLAN, USER_HOOK


def _identity(repo: git.Repo) -> None:
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "T")
        cw.set_value("user", "email", "t@example.com")


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """`comm-node init --from PLAN.toml --yes` on a repository whose api/ has the user's own
    CLAUDE.md and settings.json (scope src/**: none of them is in it)."""
    root = tmp_path / "shop"
    (root / "api").mkdir(parents=True)
    (root / "README.md").write_text("shop\n")
    repo = git.Repo.init(root)
    _identity(repo)
    repo.git.add(A=True)
    repo.index.commit("initial")
    (root / "api" / "CLAUDE.md").write_text("# API notes\n")
    (root / "api" / ".claude").mkdir()
    (root / "api" / ".claude" / "settings.json").write_text(json.dumps(USER_HOOK))
    (root / "PLAN.toml").write_text(PLAN)
    r = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=root)
    assert r.returncode == 0, r.stderr
    return root


def test_check_right_after_init_exits_0(fresh: Path) -> None:
    r = run_cli("check", cwd=fresh)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 violation(s)" in r.stdout
    # the nested repository (web) and the worktree (admin) are ignored by the workspace's
    # repository: `git add -A` there would refuse web (no commit yet)
    lines = (fresh / ".gitignore").read_text().splitlines()
    assert "/web/" in lines and "/admin/" in lines


def test_init_output_commits_through_the_pre_commit_guard(fresh: Path) -> None:
    r = run_cli("hooks", "install", "--git", cwd=fresh)
    assert r.returncode == 0, r.stderr
    for folder in (fresh, fresh / "web", fresh / "admin"):
        repo = git.Repo(folder)
        _identity(repo)
        add = subprocess.run(["git", "add", "-A"], cwd=folder, capture_output=True, text=True)
        assert add.returncode == 0, add.stderr
        done = subprocess.run(
            ["git", "commit", "-m", "what comm-node init wrote"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{folder}: {done.stdout}{done.stderr}"
        assert not repo.is_dirty(untracked_files=True)
    committed = git.Repo(fresh).git.show("--name-only", "--format=", "HEAD").splitlines()
    assert {"api/CLAUDE.md", "api/.claude/settings.json", "comm-node.toml"} <= set(committed)


def test_a_guard_still_blocks_a_real_change_outside_the_scope(fresh: Path) -> None:
    """What init writes is let through, not everything: a file of api outside src/** and
    not comm-node's is still a violation."""
    (fresh / "api" / "notes.txt").write_text("not in src/\n")
    report = run_check(load_workspace(str(fresh)))
    assert [v.file for v in report.violations] == ["api/notes.txt"]


def test_a_nested_repository_committed_as_a_gitlink_is_no_violation(fresh: Path) -> None:
    """A workspace initialised before init ignored the domains' own repositories may have
    them staged as gitlinks: the folder is comm-node's layout, not a change to judge."""
    web = git.Repo(fresh / "web")
    _identity(web)
    web.git.add(A=True)
    web.index.commit("web's first commit")
    (fresh / ".gitignore").write_text(".comm-node/\n")  # as an older init wrote it
    top = git.Repo(fresh)
    top.git.add("-A")
    staged = top.git.diff("--cached", "--name-only").splitlines()
    assert "web" in staged and "admin" in staged  # the folders, as gitlinks
    report = run_check(load_workspace(str(fresh)), staged=True, repo=str(fresh))
    assert report.violations == []
