"""What a domain changed (integration/gitwork.py, diff.py, `comm-node diff`): real repositories,
a worktree per domain on its own branch; the file list with status letters and counts, each
file's patch, a binary or huge file as a one-line note, a folder outside git in one line, and
an agent's control characters never reaching the terminal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from comm_node_tui.integration.diff import MAX_PATCH_BYTES, changed_files, hunk_at, patch
from comm_node_tui.integration.gitwork import find_work
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import run_cli
from tests.gitrepos import SHARED, commit, git, make_project


def work_of(root: Path, name: str):
    ws = load_workspace(str(root))
    return find_work(ws, ws.domains[name])


def test_a_branch_lists_committed_uncommitted_and_new_files_against_its_base(tmp_path):
    root = make_project(tmp_path, ("api", "web"))
    api = root / "api"
    commit(api, {"src/api.py": "a = 1\nb = 2\n", "README.md": None})
    git(api, "mv", "src/shared.txt", "src/common.txt")
    git(api, "commit", "-q", "-m", "rename")
    (api / "src" / "common.txt").write_text("changed\n" + SHARED.split("\n", 1)[1])  # uncommitted
    (api / "notes.txt").write_text("new\n")  # untracked
    git(root, "commit", "-q", "--allow-empty", "-m", "main moves on")  # not api's work

    work = work_of(root, "api")
    files, total = changed_files(work)

    assert (work.mode, work.branch, work.base) == ("branch", "comm-node/api", "main")
    got = {f.path: (f.status, f.added, f.removed, f.old_path) for f in files}
    assert got == {
        "README.md": ("D", 0, 1, None),
        "notes.txt": ("?", None, None, None),
        "src/api.py": ("A", 2, 0, None),
        "src/common.txt": ("R", 1, 1, "src/shared.txt"),
    }
    assert total == 4
    renamed = patch(work, next(f for f in files if f.status == "R"))
    assert "-line 1\n+changed\n" in renamed.text and not renamed.note
    assert renamed.hunks() and renamed.hunks()[0][1].startswith("@@ -1,")
    assert "+new" in patch(work, next(f for f in files if f.status == "?")).text
    # a domain on a branch with no work yet: nothing
    assert changed_files(work_of(root, "web")) == ([], 0)


def test_a_binary_or_huge_file_is_a_note_not_bytes(tmp_path):
    root = make_project(tmp_path, ("api",))
    big = "".join(f"row {i} " + "x" * 60 + "\n" for i in range(MAX_PATCH_BYTES // 50))
    commit(root / "api", {"logo.png": b"\x89PNG\x00\x01\x02" * 100, "big.txt": big})
    work = work_of(root, "api")
    files, _ = changed_files(work)
    by = {f.path: f for f in files}
    assert by["logo.png"].binary
    binary = patch(work, by["logo.png"])
    assert (binary.text, binary.note) == ("", "binary file: not shown")
    huge = patch(work, by["big.txt"])
    assert huge.text == "" and huge.note.startswith("diff larger than 512 KB: not shown")
    assert f"{by['big.txt'].added} lines added" in huge.note


def test_control_characters_from_an_agent_never_reach_the_output(tmp_path):
    root = make_project(tmp_path, ("api",))
    commit(root / "api", {"src/evil\x1b[31m.txt": "ok\n\x1b]0;owned\x07[bold]x[/bold]\n"})
    work = work_of(root, "api")
    (f,) = changed_files(work)[0]
    assert "\x1b" not in f.path and "\ufffd" in f.path
    text = patch(work, f).text
    assert "\x1b" not in text and "\x07" not in text and "[bold]x[/bold]" in text
    r = run_cli("diff", "api", "--patch", cwd=root)
    assert r.returncode == 0 and "\x1b" not in r.stdout and "[bold]x[/bold]" in r.stdout


def test_cli_diff_lists_patches_and_json(tmp_path):
    root = make_project(tmp_path, ("api",))
    commit(root / "api", {"src/shared.txt": "first\n" + SHARED.split("\n", 1)[1]})
    r = run_cli("diff", "api", cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "api: branch comm-node/api against main: 1 file(s) changed",
        "M         +1 -1  src/shared.txt",
    ]
    r = run_cli("diff", "--patch", cwd=root / "api")  # an agent: its own domain
    assert "@@ -1,4 +1,4 @@" in r.stdout and "+first" in r.stdout
    data = json.loads(run_cli("diff", "api", "--json", "--patch", cwd=root).stdout)
    assert data["files"] == [
        {"path": "src/shared.txt", "status": "M", "added": 1, "removed": 1,
         "old_path": None, "binary": False},
    ]  # fmt: skip
    assert "+first" in data["patches"]["src/shared.txt"]["text"]


def test_a_folder_outside_git_or_on_the_base_says_so(tmp_path):
    root = tmp_path / "plain"
    (root / "api").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "p"\n\n[[domains]]\nname = "api"\npath = "api"\n'
    )
    r = run_cli("diff", "api", cwd=root)
    assert (r.returncode, r.stdout) == (0, f"api: {root / 'api'} is not in git: no diff to show\n")
    # a plain folder inside a repository on main: its working tree against HEAD, only its own
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "T")
    (root / "api" / "a.txt").write_text("one\n")
    (root / "other.txt").write_text("not api's\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    (root / "api" / "a.txt").write_text("two\n")
    (root / "other.txt").write_text("changed, not api's\n")
    work = work_of(root, "api")
    assert work.mode == "tree"
    assert [(f.path, f.status) for f in changed_files(work)[0]] == [("a.txt", "M")]


def test_review_and_the_conflict_check_find_a_domain_in_git_alike(tmp_path):
    """One finder (gitwork.locate) for review, the merge queue and the conflict check: a
    worktree its repository no longer knows is the same one-line fault for all of them,
    not "not in git" for review and a fault for the conflict check."""
    import shutil

    from comm_node_tui.integration.conflicts import ConflictChecker
    from comm_node_tui.integration.gitwork import GitFailed, locate

    root = make_project(tmp_path)
    where = locate(str(root / "api"))
    assert where is not None and where.top == str((root / "api").resolve())
    assert where.repo == str((root / ".git").resolve())  # the worktrees share one repository
    assert locate(str(tmp_path)) is None  # a folder in no repository
    shutil.rmtree(root / ".git" / "worktrees" / "api")
    try:
        work_of(root, "api")
    except GitFailed as exc:
        review_says = str(exc)
    else:
        raise AssertionError("review took a broken worktree for a folder outside git")
    assert "not a git repository" in review_says and "\n" not in review_says
    ws = load_workspace(str(root))
    problems = ConflictChecker().run({d.name: d.path for d in ws.domains.values()}).problems
    assert problems == {"api": review_says}
    r = run_cli("diff", "api", cwd=root)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "not a git repository" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_hunk_at_names_the_hunk_and_the_new_line_number():
    text = "diff --git a/x b/x\n@@ -1,3 +10,4 @@ def f():\n ctx\n-gone\n+new\n+more\n ctx\n"
    assert hunk_at(text, 2) == ("@@ -1,3 +10,4 @@ def f():", 10)
    assert hunk_at(text, 3) == ("@@ -1,3 +10,4 @@ def f():", None)  # a removed line
    assert hunk_at(text, 5) == ("@@ -1,3 +10,4 @@ def f():", 12)
    assert hunk_at(text, 0) == ("", None)
