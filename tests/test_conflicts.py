"""Conflict warnings ahead of time (issue 18, item 3): real git repositories with domains on
worktrees, merged in memory by `git merge-tree`: committed branches and uncommitted edits,
nothing in any working tree, index or ref changed by a pass, both agents told once, a
cleared event, a restart that does not warn again, and bad repositories reported in one
line while the pass goes on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from comm_node_tui.engine.world_views import ConflictView
from comm_node_tui.integration.conflicts import ConflictChecker, hunks_of, parse_merge_tree
from comm_node_tui.protocol.mailbox import list_inbox
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import run_cli, write_workspace

BASE = "".join(f"line {i}\n" for i in range(1, 21))


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


@pytest.fixture
def repo_ws(tmp_path: Path) -> Path:
    """A workspace whose three domains (a, b, c) are worktrees of one repository, each on
    its own branch, and a fourth (plain) that is a folder in no repository."""
    root = tmp_path / "ws"
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "T")
    git(repo, "config", "user.email", "t@example.com")
    (repo / "app.py").write_text(BASE)
    (repo / "other.py").write_text(BASE)
    (repo / ".gitignore").write_text(".comm-node/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    for name in ("a", "b", "c"):
        git(repo, "worktree", "add", "-q", "-b", f"work-{name}", str(root / name))
    write_workspace(
        root,
        domains=("a", "b", "c", "plain"),
        extra="[integration]\nconflict_check_s = 0\n",
    )
    return root


def state(repo: Path) -> tuple[str, ...]:
    """What a pass must not change: every worktree's status and index, and every ref."""
    out = [git(repo, "for-each-ref"), git(repo, "stash", "list")]
    for wt in git(repo, "worktree", "list", "--porcelain").splitlines():
        if wt.startswith("worktree "):
            top = Path(wt.split(" ", 1)[1])
            out.append(git(top, "status", "--porcelain=v1", "--untracked-files=all"))
            index = git(top, "rev-parse", "--git-path", "index").strip()
            out.append((top / index).read_bytes().hex())
    return tuple(out)


def domains_of(root: Path) -> dict[str, str]:
    return {d.name: d.path for d in load_workspace(str(root)).domains.values()}


def test_committed_branches_and_uncommitted_edits_conflict_and_nothing_changes(repo_ws: Path):
    a, b, c = repo_ws / "a", repo_ws / "b", repo_ws / "c"
    # a and b: committed edits to the same line of app.py
    edit(a / "app.py", "line 5\n", "line 5 by a\n")
    git(a, "commit", "-q", "-am", "a's change")
    edit(b / "app.py", "line 5\n", "line 5 by b\n")
    git(b, "commit", "-q", "-am", "b's change")
    # c: an uncommitted edit to the same line as a; and a new file b also adds, unstaged
    edit(c / "app.py", "line 5\n", "line 5 by c (not committed)\n")
    (c / "new.txt").write_text("c's\n")
    (b / "new.txt").write_text("b's\n")
    # every domain's own copy of CLAUDE.md differs, on purpose: never a conflict
    for name in ("a", "b"):
        (repo_ws / name / "CLAUDE.md").write_text(f"# {name}'s role\n")
    before = state(repo_ws / "repo")

    result = ConflictChecker().run(domains_of(repo_ws))
    assert result.problems == {}
    assert state(repo_ws / "repo") == before
    found = {(x.a, x.b, x.path): x for x in result.conflicts}
    assert set(found) == {
        ("a", "b", "app.py"),
        ("a", "c", "app.py"),
        ("b", "c", "app.py"),
        ("b", "c", "new.txt"),
    }
    ab = found[("a", "b", "app.py")]
    assert ab.kind == "content"
    assert [(h.line, h.ours, h.theirs) for h in ab.hunks] == [
        (5, ("line 5 by a",), ("line 5 by b",))
    ]
    assert found[("b", "c", "new.txt")].kind == "add/add"
    # uncommitted work is a snapshot commit on top of the branch (no ref points to it)
    assert result.work["c"].dirty
    snap = result.work["c"].commit
    assert git(c, "rev-parse", f"{snap}^").strip() == git(c, "rev-parse", "work-c").strip()
    assert snap not in git(repo_ws / "repo", "for-each-ref", "--format=%(objectname)")
    assert result.work["a"].branch == "work-a"
    assert "plain" not in result.work  # a folder in no repository: nothing to merge


def test_a_second_pass_merges_only_what_changed(repo_ws: Path):
    edit(repo_ws / "a" / "app.py", "line 2\n", "a\n")
    edit(repo_ws / "b" / "app.py", "line 2\n", "b\n")
    checker = ConflictChecker()
    first = checker.run(domains_of(repo_ws))
    assert first.pairs == 3 and first.merged == 3
    # the same uncommitted work is the same snapshot commit: answered from the cache
    again = checker.run(domains_of(repo_ws))
    assert again.merged == 0
    assert [x.key for x in again.conflicts] == [x.key for x in first.conflicts]
    edit(repo_ws / "c" / "other.py", "line 9\n", "c\n")
    third = checker.run(domains_of(repo_ws))
    assert third.merged == 2  # c's two pairs only


def test_a_snapshot_git_warns_about_at_length_is_still_taken(repo_ws: Path):
    """`git add -A` warns a line per file it will convert (core.autocrlf): far more than a
    pipe holds. The snapshot reads git's stderr as it goes, so git is never left blocked on
    a full stderr while the checker waits for its stdout (that waits for ever)."""
    import threading

    git(repo_ws / "repo", "config", "core.autocrlf", "true")
    for i in range(1500):
        (repo_ws / "a" / f"generated-file-with-a-long-name-{i:04d}.txt").write_text("x\n")
    edit(repo_ws / "b" / "app.py", "line 2\n", "b\n")
    got: list = []
    worker = threading.Thread(target=lambda: got.append(ConflictChecker().run(domains_of(repo_ws))))
    worker.start()
    worker.join(240)  # generous for a loaded machine: the pass takes seconds
    assert got, "the conflict check did not finish: git blocked on its stderr"
    assert got[0].problems == {} and got[0].work["a"].dirty


def test_the_engine_tells_both_agents_once_and_clears(repo_ws: Path, engine_for):
    a, b = repo_ws / "a", repo_ws / "b"
    edit(a / "app.py", "line 7\n", "line 7: a wants this\n")
    edit(b / "app.py", "line 7\n", "line 7: b wants that\n")
    eng = engine_for(repo_ws)
    eng.check_conflicts()
    warned = [e for e in eng.recent if e.type == "integration.conflict"]
    assert len(warned) == 1 and warned[0].data["domains"] == ["a", "b"]
    assert warned[0].data["alert"] and "app.py" in warned[0].msg
    for name in ("a", "b"):
        dom = eng.ws.domains[name]
        inbox = list_inbox(dom.paths)
        assert len(inbox) == 1, name
        assert inbox[0]["from"] == "comm-node" and inbox[0]["type"] == "conflict_warning"
        text = inbox[0]["body"]
        assert "app.py (content)" in text and "around line 7" in text
        assert "a: line 7: a wants this" in text and "b: line 7: b wants that" in text
    # the room's World and `status --json` hold it
    world = eng.snapshot()
    assert [(x.a, x.b, x.path, x.lines) for x in world.conflicts] == [("a", "b", "app.py", (7,))]
    assert world.to_json()["conflicts"][0]["domains"] == ["a", "b"]

    eng.check_conflicts()  # the same conflict: no second warning, no second message
    assert len([e for e in eng.recent if e.type == "integration.conflict"]) == 1
    assert len(list_inbox(eng.ws.domains["a"].paths)) == 1

    # a restart remembers it (conflicts.json): still no second warning
    eng.stop()
    eng2 = engine_for(repo_ws)
    eng2.check_conflicts()
    assert not [e for e in eng2.recent if e.type == "integration.conflict"]
    status = run_cli("status", "--json", cwd=repo_ws)
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)["conflicts"]
    assert [(x["domains"], x["path"]) for x in shown] == [(["a", "b"], "app.py")]

    # b gives way: cleared, once
    edit(b / "app.py", "line 7: b wants that\n", "line 7\n")
    eng2.check_conflicts()
    cleared = [e for e in eng2.recent if e.type == "integration.conflict_cleared"]
    assert len(cleared) == 1 and "app.py" in cleared[0].msg
    assert eng2.snapshot().conflicts == ()
    eng2.check_conflicts()
    assert len([e for e in eng2.recent if e.type == "integration.conflict_cleared"]) == 1


def _corrupt_blob(repo: Path, top: Path, rel: str) -> None:
    """Overwrite the loose object of `rel`'s blob with garbage (readable, not inflatable)."""
    sha = git(top, "rev-parse", f"HEAD:{rel}").strip()
    obj = repo / ".git" / "objects" / sha[:2] / sha[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"not a zlib stream")


def test_bad_repositories_are_one_line_each_and_the_pass_goes_on(repo_ws: Path, engine_for):
    repo = repo_ws / "repo"
    # b's branch vanishes under its worktree (HEAD names a branch with no commit)
    git(repo, "update-ref", "-d", "refs/heads/work-b")
    # c's worktree is no longer registered with its repository (.git names a missing dir)
    shutil.rmtree(repo / ".git" / "worktrees" / "c")
    # d's committed blob is corrupt (e changed the same lines: the merge must read it)
    git(repo, "worktree", "add", "-q", "-b", "work-d", str(repo_ws / "d"))
    git(repo, "worktree", "add", "-q", "-b", "work-e", str(repo_ws / "e"))
    edit(repo_ws / "d" / "other.py", "line 3\n", "d\n")
    git(repo_ws / "d", "commit", "-q", "-am", "d")
    edit(repo_ws / "e" / "other.py", "line 3\n", "e\n")
    git(repo_ws / "e", "commit", "-q", "-am", "e")
    _corrupt_blob(repo, repo_ws / "d", "other.py")
    edit(repo_ws / "a" / "app.py", "line 1\n", "a\n")
    text = (repo_ws / "comm-node.toml").read_text()
    for name in ("d", "e"):
        text += f'\n[[domains]]\nname = "{name}"\npath = "{name}"\n'
    (repo_ws / "comm-node.toml").write_text(text)
    git(repo, "worktree", "add", "-q", "-b", "work-g", str(repo_ws / "g"))
    edit(repo_ws / "g" / "app.py", "line 1\n", "g\n")
    (repo_ws / "comm-node.toml").write_text(
        (repo_ws / "comm-node.toml").read_text() + '\n[[domains]]\nname = "g"\npath = "g"\n'
    )

    eng = engine_for(repo_ws)
    eng.check_conflicts()
    failed = {e.agent: e.msg for e in eng.recent if e.type == "integration.check_failed"}
    assert set(failed) == {"b", "c", "d"}, failed
    assert all("\n" not in m for m in failed.values())
    assert "work-b" in failed["b"] and "no commit" in failed["b"]
    assert "not a git repository" in failed["c"]
    assert "merge with e" in failed["d"]
    # the pass went on: a and g still conflict
    warned = [e.data["domains"] for e in eng.recent if e.type == "integration.conflict"]
    assert warned == [["a", "g"]]
    # the same faults next pass: not reported again
    eng.check_conflicts()
    assert len([e for e in eng.recent if e.type == "integration.check_failed"]) == 3


def test_merge_tree_output_and_markers_are_read_as_git_writes_them():
    out = "\0".join(
        [
            "t" * 40,
            "x.py",
            "y.txt",
            "",
            "1",
            "x.py",
            "Auto-merging",
            "Auto-merging x.py\n",
            "1",
            "x.py",
            "CONFLICT (contents)",
            "CONFLICT (content): Merge conflict in x.py\n",
            "2",
            "y.txt",
            "y.txt",
            "CONFLICT (modify/delete)",
            "CONFLICT (modify/delete): y.txt deleted in A and modified in B\n",
            "1",
            "z.txt",
            "CONFLICT (contents)",
            "CONFLICT (add/add): Merge conflict in z.txt\n",
            "",
        ]
    )
    tree, paths, kinds = parse_merge_tree(out)
    assert tree == "t" * 40 and paths == ["x.py", "y.txt"]
    assert kinds == {"x.py": "content", "y.txt": "modify/delete", "z.txt": "add/add"}
    merged = "one\n<<<<<<< A\nours\n||||||| base\nold\n=======\ntheirs\n>>>>>>> B\nsix\n" * 5
    hunks, more = hunks_of(merged)
    assert [h.line for h in hunks] == [2, 5, 8] and more == 2
    assert hunks[0].ours == ("ours",) and hunks[0].theirs == ("theirs",)


def test_a_hand_edited_conflicts_file_is_read_as_far_as_it_makes_sense():
    data = {"conflicts": [{"domains": ["a"], "path": "x"}, 3, {"domains": ["a", "b"], "path": "y"}]}
    assert [(v.a, v.b, v.path) for v in ConflictView.all_of(data)] == [("a", "b", "y")]
    assert ConflictView.all_of([1, 2]) == ()


def test_the_room_raises_a_conflict_as_an_alert_and_its_clearing_quietly():
    from comm_node_tui.protocol.events import Event
    from comm_node_tui.tui.alerts import react

    warned = react(
        Event(
            "integration.conflict",
            "a and b: conflicting changes in app.py",
            agent="a",
            level="warn",
            data={"domains": ["a", "b"], "files": ["app.py"], "alert": True},
        )
    )
    assert warned.notice is not None and warned.notice.severity == "warning"
    assert "a and b" in warned.notice.text and warned.mark == "a"
    cleared = react(Event("integration.conflict_cleared", "a and b: no longer", agent="a"))
    assert cleared.notice is None


def test_the_running_engine_checks_in_a_worker_and_reports_on_its_loop(repo_ws: Path):
    """The engine's own timer: git in a worker thread, the events on the loop thread."""
    import threading

    from comm_node_tui.engine.engine import Engine
    from tests.running import running_engine
    from tests.waiting import wait_for

    toml = repo_ws / "comm-node.toml"
    toml.write_text(toml.read_text().replace("conflict_check_s = 0", "conflict_check_s = 0.2"))
    edit(repo_ws / "a" / "app.py", "line 9\n", "a's 9\n")
    edit(repo_ws / "c" / "app.py", "line 9\n", "c's 9\n")
    eng = Engine(load_workspace(str(repo_ws)))
    seen: list[tuple[str, int]] = []
    eng.subscribe(lambda ev: seen.append((ev.type, threading.get_ident())))
    with running_engine(eng) as running:
        wait_for(
            lambda: any(kind == "integration.conflict" for kind, _ in seen),
            timeout=60,
            show=lambda: seen,
        )
    threads = {ident for kind, ident in seen if kind.startswith("integration.")}
    assert threads == {running["thread"]}
    assert [(c.a, c.b, c.path) for c in eng.snapshot().conflicts] == [("a", "c", "app.py")]
