"""The SessionStart hand-off's fast path (issue 22): the parsed task source kept as JSON
(coordination/tasks.py), only the agent's own rows read from it, the overlay and locks.json
read as plain JSON. Real files and the real hook command: the cached path must tell the agent
exactly what the Coordinator's path tells it, a changed task file must never be answered from
the old cache, and a damaged cache is only slower."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from comm_node_tui.adapters.agent_cli import comm_node_argv
from comm_node_tui.coordination.tasks import CACHE_FILE
from comm_node_tui.hooks.handoff import facts, facts_from_coordinator, render
from comm_node_tui.protocol.messages import render as render_message
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, write_workspace

AGENT = "backend"
SOURCES = ("startup", "resume", "clear", "compact")

NATIVE = """\
[[tasks]]
id = "T1"
title = "held, lower priority"
domain = "backend"
priority = 2
done_when = ["it answers", "tests pass"]
artifacts = ["api.yaml"]
verify = ["pytest -q"]
notes = "context"

[[tasks]]
id = "T0"
title = "held, higher priority: the one shown"
domain = "backend"
priority = 1
done_when = ["c1", "c2", "c3", "c4", "c5", "c6"]
verify = ["make check"]

[[tasks]]
id = "T2"
title = "claimed by frontend"
domain = "frontend"

[[tasks]]
id = "T3"
title = "closed by the overlay"
domain = "backend"

[[tasks]]
id = "T4"
title = "in progress in the file, nobody's"
domain = "backend"
status = "in_progress"

[[tasks]]
id = "T\u00e9\\"5"
title = "an id JSON must escape"
domain = "backend"
"""


def _beads() -> str:
    recs = [
        {"id": "B1", "title": "held by the export itself", "status": "in_progress",
         "assignee": AGENT, "priority": 1, "acceptance_criteria": "- one\n- two",
         "labels": ["domain:backend"], "metadata": "{\"artifacts\": [\"x.md\"]}"},
        {"id": "B2", "title": "assigned in the export, closed by the overlay",
         "status": "in_progress", "assignee": AGENT, "priority": 0},
        {"id": "B3", "title": "claimed through comm-node", "status": "open", "priority": 3,
         "dependencies": [{"issue_id": "B3", "depends_on_id": "B1", "type": "blocks"}]},
        {"id": "B4", "title": "someone else's", "status": "in_progress", "assignee": "frontend"},
        {"id": "B5", "title": "reassigned to frontend by the overlay", "status": "in_progress",
         "assignee": AGENT},
    ]  # fmt: skip
    return "".join(json.dumps(r) + "\n" for r in recs) + "not json\n"


OVERLAY = {
    "version": 1,
    "tasks": {
        "T0": {"status": "in_progress", "assignee": AGENT},
        "T1": {
            "status": "in_progress",
            "assignee": AGENT,
            "attempts": [
                {
                    "at": "2026-11-22T00:00:00Z",
                    "result": "fail",
                    "reason": "exit 1",
                    "excerpt": "E   assert 500 == 200",
                },
                "not an attempt",
            ],
        },
        "T2": {"status": "in_progress", "assignee": "frontend"},
        "T3": {"status": "closed", "assignee": AGENT},
        'T\u00e9"5': {"status": "in_progress", "assignee": AGENT},
        "GONE": {"status": "in_progress", "assignee": AGENT},  # deleted from the source
        "B2": {"status": "closed"},
        "B3": {"status": "in_progress", "assignee": AGENT},
        "B5": {"assignee": "frontend"},
        "odd": "not an entry",
    },
}


def _locks(root: Path) -> None:
    now = time.time()
    recs = [
        {"holder": AGENT, "pattern": "src/b/**", "expires": now + 3600},
        {"holder": AGENT, "pattern": "/src/a.py", "expires": now + 600, "exclusive": False},
        {"holder": AGENT, "pattern": "old/**", "expires": now - 5},  # expired
        {"holder": "frontend", "pattern": "web/**", "expires": now + 3600},
        {"holder": AGENT, "pattern": "bad", "expires": "soon"},  # unreadable
        "not a record",
    ]
    state = root / ".comm-node"
    state.mkdir(exist_ok=True)
    (state / "locks.json").write_text(json.dumps({"version": 1, "locks": recs}))


def aged(path: Path) -> Path:
    """Last changed a minute ago: the cache keeps only a source older than its racy window
    (a same-size rewrite within the timestamp grain would keep its stamp)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 60_000_000_000))
    return path


def _mail(root: Path, n: int) -> None:
    box = root / AGENT / ".comm-node" / "inbox"
    box.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        meta = {"id": f"m-{i}", "from": "frontend", "to": [AGENT], "type": "request",
                "priority": "normal", "subject": f"question {i}"}  # fmt: skip
        (box / f"m-{i}.md").write_text(render_message(meta, "body"))


@pytest.fixture(params=["native", "beads"])
def root(request, tmp_path: Path) -> Path:
    source = request.param
    root = write_workspace(tmp_path / "ws", extra=f'[tasks]\nsource = "{source}"\n')
    if source == "native":
        (root / "tasks.toml").write_text(NATIVE)
        aged(root / "tasks.toml")
    else:
        (root / ".beads").mkdir()
        (root / ".beads" / "issues.jsonl").write_text(_beads())
        aged(root / ".beads" / "issues.jsonl")
    state = root / ".comm-node"
    state.mkdir(exist_ok=True)
    (state / "tasks.json").write_text(json.dumps(OVERLAY))
    _locks(root)
    _mail(root, 4)
    note = root / AGENT / ".comm-node" / "handoff.md"
    note.write_text("where I was")
    return root


def hook_context(root: Path, source: str) -> str:
    payload = {
        "session_id": "s-" + source,
        "cwd": str(root / AGENT),
        "hook_event_name": "SessionStart",
        "source": source,
    }
    res = subprocess.run(
        [*comm_node_argv(), "hook"],
        cwd=root / AGENT,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["hookSpecificOutput"]["additionalContext"]


def reference(root: Path, source: str) -> str:
    """The text through the Coordinator, from the source parsed now (no cache)."""
    (root / ".comm-node" / CACHE_FILE).unlink(missing_ok=True)
    ws = load_workspace(str(root))
    return render(AGENT, source, facts_from_coordinator(ws, ws.domains[AGENT]))


@pytest.mark.parametrize("kind", SOURCES)
def test_the_cached_hand_off_is_byte_identical_to_the_uncached_one(root, kind):
    expected = reference(root, kind)
    cache = root / ".comm-node" / CACHE_FILE
    cache.unlink(missing_ok=True)
    cold = hook_context(root, kind)  # parses the source and writes the cache
    assert cache.exists()
    warm = hook_context(root, kind)  # reads the agent's rows from the cache
    assert cold == warm == expected
    # what the fixture set up is really in it: the held task by priority, the other held ones,
    # the last failure only where it failed, the own unexpired locks, the mail, the note
    lines = expected.splitlines()
    if (root / "tasks.toml").exists():
        assert lines[1] == "- Your task: T0: held, higher priority: the one shown"
        assert "(+1 more)" in expected and 'Also held: T1, Té"5' in expected
    else:
        assert lines[1] == "- Your task: B1: held by the export itself"
        assert "Also held: B3" in expected and "B2" not in expected and "B5" not in expected
    assert "Your locks: /src/a.py (until" in expected and "src/b/**" in expected
    assert "old/**" not in expected and "web/**" not in expected and "bad" not in expected
    assert "Unread mail: 4" in expected and "Your hand-off note" in expected


def test_the_facts_are_the_coordinators_cached_or_not(root):
    ws = load_workspace(str(root))
    dom = ws.domains[AGENT]
    (root / ".comm-node" / CACHE_FILE).unlink(missing_ok=True)
    cold = facts(ws, dom)
    warm = facts(ws, dom)
    assert cold == warm == facts_from_coordinator(ws, dom)
    assert cold["task"]["id"] in ("T0", "B1")
    assert cold["task"]["verify"] == (["make check"] if cold["task"]["id"] == "T0" else [])


def _rewrite(path: Path, text: str) -> None:
    """Rewrite the file in place (same inode) with text of the same size: only its
    modification time tells the cache it changed (set 1 ms later, whatever the clock's
    grain)."""
    st = path.stat()
    with open(path, "r+") as fh:
        fh.write(text)
        fh.truncate()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_a_changed_tasks_toml_invalidates_the_cache(tmp_path):
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "native"\n')
    tasks = root / "tasks.toml"
    tasks.write_text(NATIVE)
    aged(tasks)
    (root / ".comm-node").mkdir(exist_ok=True)
    (root / ".comm-node" / "tasks.json").write_text(json.dumps(OVERLAY))
    first = hook_context(root, "startup")
    assert "held, higher priority: the one shown" in first
    assert (root / ".comm-node" / CACHE_FILE).exists()
    # same size, same inode: only the modification time says it changed
    _rewrite(tasks, NATIVE.replace("the one shown", "THE ONE SHOWN"))
    second = hook_context(root, "startup")
    assert "held, higher priority: THE ONE SHOWN" in second
    assert second == reference(root, "startup")
    # and a new file in its place (an editor's rename): a new task content again
    tasks.unlink()
    tasks.write_text(
        NATIVE.replace('priority = 1\ndone_when = ["c1"', 'priority = 3\ndone_when = ["c1"', 1)
    )
    third = hook_context(root, "startup")
    assert third.splitlines()[1] == "- Your task: T1: held, lower priority"
    assert third == reference(root, "startup")


def test_a_rewrite_within_the_timestamp_grain_is_never_answered_from_the_cache(tmp_path):
    """A file changed within the file system's timestamp grain of its last change keeps
    size, inode and modification time: a cache of the first text would answer for the
    second. A source that new is not cached (git's racy entries), so it is parsed again."""
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "native"\n')
    tasks = root / "tasks.toml"
    tasks.write_text(NATIVE)
    # changed "just now" whatever the machine's load: a hook that took over RACY_NS to start
    # would otherwise find the source old enough to cache, and the same-tick rewrite below
    # (which cannot happen that late outside a test) would be answered from that cache
    now = time.time_ns() + 3600 * 10**9
    os.utime(tasks, ns=(now, now))
    (root / ".comm-node").mkdir(exist_ok=True)
    (root / ".comm-node" / "tasks.json").write_text(json.dumps(OVERLAY))
    assert "held, higher priority: the one shown" in hook_context(root, "startup")
    stamp = tasks.stat()
    with open(tasks, "r+") as fh:  # same size, same inode
        fh.write(NATIVE.replace("the one shown", "THE ONE SHOWN"))
    os.utime(tasks, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the same tick
    assert "held, higher priority: THE ONE SHOWN" in hook_context(root, "startup")
    ws = load_workspace(str(root))
    assert "THE ONE SHOWN" in facts_from_coordinator(ws, ws.domains[AGENT])["task"]["title"]


def test_a_damaged_or_foreign_cache_is_only_slower(tmp_path):
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "native"\n')
    (root / "tasks.toml").write_text(NATIVE)
    aged(root / "tasks.toml")
    (root / ".comm-node").mkdir(exist_ok=True)
    (root / ".comm-node" / "tasks.json").write_text(json.dumps(OVERLAY))
    expected = reference(root, "startup")
    ws = load_workspace(str(root))
    expected_facts = facts_from_coordinator(ws, ws.domains[AGENT])
    cache = root / ".comm-node" / CACHE_FILE
    good = cache.read_text()
    head, _, body = good.partition("\n")

    def with_body(new_body: str) -> str:  # a header that vouches for `new_body`
        h = json.loads(head)
        h["bytes"] = len(new_body.encode())
        return json.dumps(h, ensure_ascii=False, separators=(",", ":")) + "\n" + new_body

    damaged = [
        "garbage",
        "",
        head,  # the header alone: cut short
        good + "[]\n",  # something appended
        with_body('[\n["T0", 1]\n]\n'),  # the held row of the wrong shape
        with_body('[\n["T0", "no closing bracket\n]\n'),
        head.replace('"problems"', '"problemz"') + "\n" + body,
        good.replace("held, higher priority", "FORGED", 1).replace(
            '"key":[', '"key":[0,', 1
        ),  # another version's key
    ]
    # rows of the right length whose parts are not (deps, a contract): read by the
    # Coordinator as well as by the hand-off, never a traceback
    rows = json.loads(body)
    bad_deps = [[*r[:8], [1], *r[9:]] for r in rows]
    bad_contract = [[*r[:15], ["only one"]] for r in rows]
    damaged += [
        with_body("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in bad) + "\n]\n")
        for bad in (bad_deps, bad_contract)
    ]
    for text in damaged:
        cache.write_text(text)
        assert hook_context(root, "startup") == expected, text[:80]
        cache.write_text(text)
        assert facts_from_coordinator(ws, ws.domains[AGENT]) == expected_facts, text[:80]
