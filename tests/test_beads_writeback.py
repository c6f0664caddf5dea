"""Beads write-back: with `[tasks] source = "beads"`, claims, closes and reopens made through
the real CLI, and the operator's assign from the room, are handed to `bd`. bd is not
installed on this machine, so `bd` here is a small executable of our own on PATH (a real
process) that records its argv and working directory; the flags are the ones Beads documents
(bd update/close/reopen)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from tests.conftest import cli_env, run_cli, write_workspace

ISSUE = {
    "id": "bd-a1b2",
    "title": "add the health endpoint",
    "status": "open",
    "priority": 1,
    "issue_type": "task",
    "labels": ["domain:backend"],
}

FAKE_BD = """\
#!{python}
import json, os, sys
with open(os.environ["FAKE_BD_LOG"], "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\\n")
if os.environ.get("FAKE_BD_FAIL"):
    print("Error: database is locked", file=sys.stderr)
    sys.exit(1)
"""


def _ws(tmp_path: Path, source: str = "beads") -> Path:
    root = write_workspace(tmp_path / "ws", extra=f'[tasks]\nsource = "{source}"\n')
    (root / ".beads").mkdir()
    (root / ".beads" / "issues.jsonl").write_text(json.dumps(ISSUE) + "\n")
    (root / "tasks.toml").write_text('[[tasks]]\nid = "bd-a1b2"\ntitle = "t"\n')
    return root


def _fake_bd(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    bd = bin_dir / "bd"
    bd.write_text(FAKE_BD.format(python=sys.executable))
    bd.chmod(bd.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _path_without_bd() -> str:
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if not os.path.exists(os.path.join(d, "bd")))


def _env(tmp_path: Path, bin_dir: Path | None, domain: str | None = "backend", **extra: str):
    path = _path_without_bd()
    if bin_dir is not None:
        path = f"{bin_dir}{os.pathsep}{path}"
    env = cli_env(PATH=path, FAKE_BD_LOG=str(tmp_path / "bd.log"), **extra)
    if domain:
        env["COMM_NODE_DOMAIN"] = domain
    return env


def _calls(tmp_path: Path) -> list[dict]:
    log = tmp_path / "bd.log"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def _status(root: Path, tid: str = "bd-a1b2") -> tuple[str, str | None]:
    res = run_cli("task", "show", tid, "--json", cwd=root, env=cli_env(PATH=_path_without_bd()))
    row = json.loads(res.stdout)
    return row["status"], row["assignee"]


def test_claim_close_and_reopen_are_written_back_through_bd(tmp_path):
    root = _ws(tmp_path)
    bin_dir = _fake_bd(tmp_path)
    agent = _env(tmp_path, bin_dir)
    res = run_cli("task", "claim", "bd-a1b2", cwd=root / "backend", env=agent)
    assert res.returncode == 0, res.stderr
    assert "bd" not in res.stderr  # it worked: nothing to say
    res = run_cli("task", "done", "bd-a1b2", cwd=root / "backend", env=agent)
    assert res.returncode == 0, res.stderr
    operator = _env(tmp_path, bin_dir, domain=None)
    res = run_cli("task", "reopen", "bd-a1b2", "--reason", "regressed", cwd=root, env=operator)
    assert res.returncode == 0, res.stderr
    calls = _calls(tmp_path)
    assert [c["argv"] for c in calls] == [
        ["update", "bd-a1b2", "--status", "in_progress", "--assignee", "backend"],
        ["close", "bd-a1b2", "--reason", "done (comm-node)"],
        ["reopen", "bd-a1b2", "--reason", "regressed"],
    ]
    assert {c["cwd"] for c in calls} == {str(root)}  # where .beads/ is
    assert _status(root) == ("open", None)  # the overlay decided, bd followed


def test_a_failing_bd_is_one_warning_and_the_claim_stands(tmp_path):
    root = _ws(tmp_path)
    env = _env(tmp_path, _fake_bd(tmp_path), FAKE_BD_FAIL="1")
    res = run_cli("task", "claim", "bd-a1b2", cwd=root / "backend", env=env)
    assert res.returncode == 0, res.stderr
    warnings = [x for x in res.stderr.splitlines() if x.startswith("comm-node:")]
    assert len(warnings) == 1 and "database is locked" in warnings[0]
    assert "bd update bd-a1b2" in warnings[0] and "Traceback" not in res.stderr
    assert _status(root) == ("in_progress", "backend")
    events = (root / ".comm-node" / "events.jsonl").read_text()
    assert '"tasks.writeback_failed"' in events and '"task.claimed"' in events


def test_without_bd_the_limitation_is_stated_once_and_the_overlay_works(tmp_path):
    root = _ws(tmp_path)
    env = _env(tmp_path, None)
    res = run_cli("task", "claim", "bd-a1b2", cwd=root / "backend", env=env)
    assert res.returncode == 0, res.stderr
    notes = [x for x in res.stderr.splitlines() if x.startswith("comm-node:")]
    assert notes == [
        "comm-node: note: bd is not installed, so this is recorded in comm-node's overlay "
        "(.comm-node/tasks.json), not in .beads/"
    ]
    assert _status(root) == ("in_progress", "backend")
    assert _calls(tmp_path) == []


def test_native_tasks_never_call_bd(tmp_path):
    root = _ws(tmp_path, source="native")
    env = _env(tmp_path, _fake_bd(tmp_path))
    res = run_cli("task", "claim", "bd-a1b2", cwd=root / "backend", env=env)
    assert res.returncode == 0, res.stderr
    assert _calls(tmp_path) == [] and res.stderr == ""


# ---- the room's assign and the engine's release, on a real Beads export -----------------------
REAL_EXPORT = Path("/work/shared/data/beads/beads-repo-385c0c03.jsonl")


def _real_beads_ws(tmp_path: Path, monkeypatch, fail: bool = False) -> tuple[Path, str]:
    """A workspace over a copy of a real Beads export, a recording `bd` first on PATH; an
    open task of the export."""
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "beads"\n')
    (root / ".beads").mkdir()
    (root / ".beads" / "issues.jsonl").write_bytes(REAL_EXPORT.read_bytes())
    records = [json.loads(x) for x in REAL_EXPORT.read_text().splitlines() if x.strip()]
    tid = next(r["id"] for r in records if r.get("status") == "open")
    monkeypatch.setenv("PATH", f"{_fake_bd(tmp_path)}{os.pathsep}{_path_without_bd()}")
    monkeypatch.setenv("FAKE_BD_LOG", str(tmp_path / "bd.log"))
    if fail:
        monkeypatch.setenv("FAKE_BD_FAIL", "1")
    return root, tid


def _room(root: Path):
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.operator.actions import OperatorActions
    from comm_node_tui.workspace.discovery import load_workspace

    ws = load_workspace(str(root))
    coord = Coordinator(ws)
    return OperatorActions(ws, lambda: coord), coord


def test_the_rooms_assign_is_written_back_as_the_agents_claim_is(tmp_path, monkeypatch):
    root, tid = _real_beads_ws(tmp_path, monkeypatch)
    room, _coord = _room(root)
    said = room.assign_task(tid, "backend")
    assert said == "assigned"  # bd worked: nothing more to say
    calls = _calls(tmp_path)
    assert [c["argv"] for c in calls] == [
        ["update", tid, "--status", "in_progress", "--assignee", "backend"]
    ]
    assert calls[0]["cwd"] == str(root)
    # taken from backend by frontend: bd follows again, with the new assignee
    assert room.assign_task(tid, "frontend") == "assigned (taken from backend)"
    assert _calls(tmp_path)[-1]["argv"][-1] == "frontend"
    assert _status(root, tid) == ("in_progress", "frontend")


def test_a_failing_bd_under_the_rooms_assign_is_one_line_and_an_event(tmp_path, monkeypatch):
    root, tid = _real_beads_ws(tmp_path, monkeypatch, fail=True)
    room, _coord = _room(root)
    said = room.assign_task(tid, "backend")
    assert said.startswith("assigned; `bd update ") and "database is locked" in said
    assert "\n" not in said
    assert _status(root, tid) == ("in_progress", "backend")  # the assign stands
    log = (root / ".comm-node" / "events.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in log]
    [failed] = [e for e in events if e["type"] == "tasks.writeback_failed"]
    assert failed["data"] == {"task": tid, "action": "claim"}


def test_the_engines_release_of_a_lost_agents_claim_is_not_written_back(tmp_path, monkeypatch):
    """No CLI command puts a claimed task back to open, so there is no write-back to follow:
    the overlay releases it, bd is not called (coordination/beads_writeback.py says so)."""
    root, tid = _real_beads_ws(tmp_path, monkeypatch)
    agent = _env(tmp_path, tmp_path / "bin")  # the recording bd _real_beads_ws made
    res = run_cli("task", "claim", tid, cwd=root / "backend", env=agent)
    assert res.returncode == 0, res.stderr
    assert len(_calls(tmp_path)) == 1  # the claim was written back
    _actions, coord = _room(root)
    assert coord.unclaim_holder("backend", "was gone") == [tid]  # the watchdog's hand
    assert len(_calls(tmp_path)) == 1
    assert _status(root, tid) == ("open", None)
