"""The merge queue (integration/queue.py, `comm-node merge`): real repositories, a worktree per
domain on its own branch. What passes lands on the integration branch; a conflict or a failed
check goes back to the domain as a message with the files and the output; a branch is never
deleted or reset, a domain's worktree never touched, and a bad entry never stops the queue."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.errors import CommNodeError
from comm_node_tui.integration.queue import QUEUE_FILE, MergeQueue, scratch_path
from comm_node_tui.protocol.events import tail
from comm_node_tui.workspace.config import IntegrationConfig
from comm_node_tui.workspace.discovery import load_workspace
from comm_node_tui.workspace.settings import DEFAULTS
from tests.conftest import run_cli, start_serve
from tests.gitrepos import SHARED, branches, commit, git, make_project
from tests.test_engine_process import engine_ready
from tests.waiting import wait_for

INTEG = "comm-node/integration"


def queue_for(root: Path) -> MergeQueue:
    return MergeQueue(Coordinator(load_workspace(str(root))))


def inbox(root: Path, name: str) -> list[str]:
    box = root / name / ".comm-node" / "inbox"
    return [p.read_text() for p in sorted(box.glob("*.md"))]


def tree(root: Path, ref: str) -> set[str]:
    return set(git(root, "ls-tree", "-r", "--name-only", ref).split())


def events(root: Path) -> list:
    return tail(str(root / ".comm-node" / "events.jsonl"), 1000)


def edit_shared(first_line: str) -> str:
    return first_line + "\n" + SHARED.split("\n", 1)[1]


def test_the_integration_settings_agree_with_their_validation():
    dumped = IntegrationConfig().model_dump()
    assert {**dumped, "tests": tuple(dumped["tests"])} == DEFAULTS.integration.to_dict()
    assert DEFAULTS.integration.branch == INTEG and DEFAULTS.integration.base_branch == ""


def test_five_branches_one_failing_verify_one_conflict_the_rest_land(tmp_path):
    names = ("a", "b", "c", "d", "e")
    root = make_project(
        tmp_path, names, domain_extra={"b": 'verify = ["echo tests broke >&2; exit 3"]'}
    )
    commit(root / "a", {"src/a.txt": "a\n", "src/shared.txt": edit_shared("from a")})
    commit(root / "b", {"src/b.txt": "b\n"})
    commit(root / "c", {"src/shared.txt": edit_shared("from c")})  # the same line as a
    commit(root / "d", {"src/d.txt": "d\n"})
    commit(root / "e", {"src/e.txt": "e\n"})
    (root / "d" / "wip.txt").write_text("not committed\n")  # d's own worktree: never touched
    before = branches(root)
    q = queue_for(root)
    for name in names:
        q.enqueue(name)

    done = q.run_pass()

    assert [(e["domain"], e["state"]) for e in done] == [
        ("a", "landed"), ("b", "failed"), ("c", "conflict"), ("d", "landed"), ("e", "landed"),
    ]  # fmt: skip
    landed = tree(root, INTEG)
    assert {"src/a.txt", "src/d.txt", "src/e.txt"} <= landed
    assert "src/b.txt" not in landed
    assert git(root, "show", f"{INTEG}:src/shared.txt").startswith("from a\n")
    # merge commits (--no-ff), each with the domain's branch as its second parent
    parents = git(root, "log", "--merges", "--format=%P", INTEG).split("\n")
    assert len([p for p in parents if p]) == 3
    # the conflict goes back to c with the file, the failure to b with the output
    (to_c,) = inbox(root, "c")
    assert 'from: "comm-node"' in to_c and "src/shared.txt" in to_c and "conflict" in to_c
    (to_b,) = inbox(root, "b")
    assert "tests broke" in to_b and "exited 3" in to_b
    assert inbox(root, "a") == [] and inbox(root, "d") == []
    # nothing deleted or reset: every branch still there, the domains' at the same commit
    after = branches(root)
    assert {k: v for k, v in after.items() if k != INTEG} == before
    assert (root / "d" / "wip.txt").read_text() == "not committed\n"
    assert git(root / "d", "status", "--porcelain").strip() == "?? wip.txt"
    kinds = [e.type for e in events(root)]
    assert kinds.count("merge.landed") == 3 and "merge.conflict" in kinds
    assert "merge.failed" in kinds and kinds.count("merge.queued") == 5


def test_a_branch_that_vanished_fails_in_one_line_and_the_queue_goes_on(tmp_path):
    root = make_project(tmp_path, ("api", "web"))
    commit(root / "api", {"src/api.txt": "api\n"})
    commit(root / "web", {"src/web.txt": "web\n"})
    q = queue_for(root)
    q.enqueue("api")
    q.enqueue("web")
    git(root, "worktree", "remove", "--force", "api")
    git(root, "branch", "-D", "comm-node/api")

    gone, landed = q.run_pass()

    assert gone["state"] == "failed" and "no longer exists" in gone["reason"]
    assert "\n" not in gone["reason"]
    assert landed["state"] == "landed" and "src/web.txt" in tree(root, INTEG)


def test_a_dirty_or_broken_scratch_worktree_is_the_queues_own_and_is_cleaned(tmp_path):
    root = make_project(tmp_path, ("api", "web", "docs"))
    commit(root / "api", {"src/api.txt": "api\n"})
    q = queue_for(root)
    q.enqueue("api")
    assert q.run_pass()[0]["state"] == "landed"
    wt = Path(scratch_path(q.ws, str(root)))
    (wt / "README.md").write_text("someone edited the scratch tree\n")
    (wt / "junk.txt").write_text("left behind\n")
    commit(root / "web", {"src/web.txt": "web\n"})
    q.enqueue("web")

    assert q.run_pass()[0]["state"] == "landed"

    assert not (wt / "junk.txt").exists() and (wt / "README.md").read_text() == "# proj\n"
    assert git(root, "show", f"{INTEG}:README.md") == "# proj\n"
    # a broken one (a plain folder where the worktree was) is made again
    git(root, "worktree", "remove", "--force", str(wt))
    wt.mkdir()
    (wt / "stray").write_text("x")
    commit(root / "docs", {"src/docs.txt": "docs\n"})
    q.enqueue("docs")
    assert q.run_pass()[0]["state"] == "landed"
    assert (wt / ".git").is_file() and not (wt / "stray").exists()
    assert [e.type for e in events(root)].count("merge.scratch_cleaned") == 2


def test_integration_tests_and_scope_run_on_the_merged_result(tmp_path):
    # the tests need both domains' work: they pass only once web lands on top of api
    check = "test -f src/api.txt && test -f src/web.txt"
    root = make_project(
        tmp_path,
        ("api", "web", "docs"),
        domain_extra={"docs": 'scope = ["docs/**"]'},
        extra=f"\n[integration]\ntests = [{json.dumps(check)}]\n",
    )
    commit(root / "api", {"src/api.txt": "api\n"})
    commit(root / "web", {"src/api.txt": "api\n", "src/web.txt": "web\n"})
    commit(root / "docs", {"docs/ok.md": "ok\n", "src/not-mine.txt": "x\n"})
    q = queue_for(root)
    for name in ("api", "web", "docs"):
        q.enqueue(name)

    api, web, docs = q.run_pass()

    assert api["state"] == "failed" and api["reason"].startswith("integration tests:")
    assert web["state"] == "landed"
    assert docs["state"] == "failed" and docs["files"] == ["src/not-mine.txt"]
    assert "outside docs's scope" in docs["reason"] and "src/not-mine.txt" in inbox(root, "docs")[0]


def test_a_pass_that_died_mid_entry_leaves_it_queued_for_the_next(tmp_path):
    root = make_project(tmp_path, ("api",))
    commit(root / "api", {"src/api.txt": "api\n"})
    q = queue_for(root)
    q.enqueue("api")
    path = root / ".comm-node" / QUEUE_FILE
    data = json.loads(path.read_text())
    data["entries"][0]["state"] = "running"  # as a pass killed in the middle leaves it
    path.write_text(json.dumps(data))

    (entry,) = q.run_pass()

    assert entry["state"] == "landed" and entry["retried"] == 1


def test_the_queue_refuses_work_it_cannot_take_in_one_line(tmp_path):
    root = make_project(tmp_path, ("api",))
    plain = root / "plain"
    plain.mkdir()
    toml = root / "comm-node.toml"
    toml.write_text(toml.read_text() + '\n[[domains]]\nname = "plain"\npath = "plain"\n')
    q = queue_for(root)
    with pytest.raises(CommNodeError, match="no branch of its own"):
        q.enqueue("plain")  # a folder inside the main checkout, on main
    entry = q.enqueue("api")
    assert entry["uncommitted"] is False
    (root / "api" / "README.md").write_text("edited, not committed\n")
    assert q.enqueue("api") == {**entry, "already": True, "uncommitted": True}
    assert [e["id"] for e in q.entries()] == ["q1"]


def test_land_on_base_fast_forwards_a_clean_base_checkout(tmp_path):
    root = make_project(tmp_path, ("api",), extra="\n[integration]\nland_on_base = true\n")
    commit(root / "api", {"src/api.txt": "api\n"})
    q = queue_for(root)
    q.enqueue("api")
    (entry,) = q.run_pass()
    assert entry["state"] == "landed" and entry["base"] == "main fast-forwarded"
    assert (root / "src" / "api.txt").read_text() == "api\n"  # main's checkout moved with it
    assert branches(root)["main"] == entry["commit"]


def test_cli_merge_queue_run_status_and_a_bad_queue_file(tmp_path):
    root = make_project(tmp_path, ("api", "web"))
    commit(root / "api", {"src/api.txt": "api\n"})
    r = run_cli("merge", "api", cwd=root)
    assert r.returncode == 0 and r.stdout == "api: comm-node/api queued as q1\n"
    r = run_cli("merge", "--run", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    assert [e["state"] for e in json.loads(r.stdout)["ran"]] == ["landed"]
    r = run_cli("merge", "--status", cwd=root)
    assert r.returncode == 0 and "q1  landed   api  comm-node/api" in r.stdout
    # a branch with nothing new lands as "already merged"; an agent queues its own
    r = run_cli("merge", "--run", "web", cwd=root / "web", env=None)
    assert r.returncode == 0 and "already merged" in r.stdout
    # a queue file someone broke: one line naming it, and the file kept as it was
    path = root / ".comm-node" / QUEUE_FILE
    path.write_text("{not json")
    r = run_cli("merge", "web", cwd=root)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert QUEUE_FILE in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert path.read_text() == "{not json"
    assert "merge.queue_invalid" in [e.type for e in events(root)]
    r = run_cli("merge", cwd=root)
    assert r.returncode != 0 and "name a domain" in r.stderr


def test_the_engine_takes_what_is_queued_and_the_domain_hears_of_a_failure(tmp_path):
    root = make_project(tmp_path, ("api", "web"), domain_extra={"web": 'verify = ["false"]'})
    commit(root / "api", {"src/api.txt": "api\n"})
    commit(root / "web", {"src/web.txt": "web\n"})
    proc = start_serve(root)
    try:
        wait_for(lambda: engine_ready(root))
        assert run_cli("merge", "api", cwd=root).returncode == 0
        assert run_cli("merge", "web", cwd=root / "web").returncode == 0  # the agent itself
        q = queue_for(root)
        wait_for(lambda: all(e["state"] != "queued" and e["state"] != "running"
                             for e in q.entries()), timeout=60, show=q.entries)  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert [(e["domain"], e["state"]) for e in q.entries()] == [
        ("api", "landed"),
        ("web", "failed"),
    ]
    assert "src/api.txt" in tree(root, INTEG)
    assert "`false` exited 1" in inbox(root, "web")[0]


def test_an_import_that_breaks_the_rules_in_the_merged_tree_does_not_land(tmp_path):
    root = make_project(
        tmp_path,
        ("api", "web"),
        domain_extra={
            "api": 'scope = ["api/**"]\nforbidden_imports = ["web"]',
            "web": 'scope = ["web/**"]',
        },
    )
    commit(root / "web", {"web/__init__.py": "", "web/views.py": "X = 1\n"})
    commit(root / "api", {"api/__init__.py": "", "api/ok.py": "import json\n"})
    q = queue_for(root)
    q.enqueue("web")
    q.enqueue("api")
    assert [e["state"] for e in q.run_pass()] == ["landed", "landed"]
    # web's module is in the integration branch now: api importing it breaks api's rules
    commit(root / "api", {"api/use.py": "from web import views\n"})
    q.enqueue("api")

    (entry,) = q.run_pass()

    assert entry["state"] == "failed" and "import(s) that break api's rules" in entry["reason"]
    assert entry["files"] == ["api/use.py"] and "from web import views" in entry["output"]
    assert "api/use.py" in inbox(root, "api")[0]
