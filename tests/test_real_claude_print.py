"""The real Claude Code CLI in print mode (`claude -p`) with comm-node's hooks installed:
the hook lifecycle, the edit guard and mail as Claude Code itself delivers them."""

from __future__ import annotations

import json
import subprocess

from comm_node_tui.hooks.handler import STOP_BLOCK_LIMIT
from tests.conftest import queue
from tests.realclaude import claude_binary


def run_p(rw, domain: str, text: str, *extra: str) -> subprocess.CompletedProcess:
    env = dict(rw.env)
    env["TMPDIR"] = str(rw.home)  # claude keeps task output under $TMPDIR/claude-UID
    return subprocess.run(
        [claude_binary(), "-p", text, "--output-format", "json", *extra],
        cwd=rw.dom(domain),
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def status(rw, domain: str) -> dict:
    return json.loads((rw.dom(domain) / ".comm-node" / "status.json").read_text())


def test_the_hook_lifecycle_reaches_status(real_ws):
    rw = real_ws()
    target = rw.dom("api") / "src" / "made.txt"
    res = run_p(rw, "api", f"CN_BASH touch {target}", "--allowed-tools", "Bash")
    assert res.returncode == 0, res.stderr
    assert target.exists()
    out = json.loads(res.stdout)
    st = status(rw, "api")
    # the last event of a print run is SessionEnd; the session and transcript are recorded
    assert st["hook_event"] == "SessionEnd" and st["state"] == "ended"
    assert st["session_id"] == out["session_id"]
    assert st["transcript_path"].endswith(f"{out['session_id']}.jsonl")
    assert st["updated_by"] == "hook" and st["tool"] == ""


def test_the_edit_guard_refuses_a_write_outside_the_scope(real_ws):
    rw = real_ws()
    outside = rw.dom("web") / "src" / "x.ts"
    before = len(rw.model.requests())
    res = run_p(rw, "api", f"CN_WRITE {outside} export const x = 1", "--allowed-tools", "Write")
    assert res.returncode == 0, res.stderr
    assert not outside.exists()
    results = [e.tool_result or "" for e in rw.model.requests()[before:] if e.kind == "tool_result"]
    # Claude Code hands the guard's reason to the model as the tool's error
    assert any("PreToolUse:Write hook error" in r and "web" in r for r in results), results
    log = (rw.root / ".comm-node" / "events.jsonl").read_text()
    assert '"edit.denied"' in log


def test_urgent_unread_mail_keeps_the_agent_working_a_bounded_number_of_times(real_ws):
    rw = real_ws()
    from comm_node_tui.workspace.discovery import load_workspace

    ws = load_workspace(str(rw.root))
    ident = queue(ws.domains["web"], "api", "the login contract changed")
    # route it the way the engine does (one scan), as urgent
    from comm_node_tui.engine.engine import Engine

    path = next((rw.dom("web") / ".comm-node" / "outbox").glob("*.md"))
    path.write_text(path.read_text().replace('type: "info"', 'type: "info"\npriority: "urgent"'))
    eng = Engine(ws)
    eng.start()
    try:
        assert list((rw.dom("api") / ".comm-node" / "inbox").glob(f"{ident}*"))
    finally:
        eng.stop()
    before = len(rw.model.requests())
    res = run_p(rw, "api", "hello")
    assert res.returncode == 0, res.stderr
    asked = [e.prompt or "" for e in rw.model.requests()[before:] if e.kind == "prompt"]
    # Stop is blocked while the urgent message is unread: Claude Code sends the reason back
    # to the model as "Stop hook feedback", then comm-node gives up after STOP_BLOCK_LIMIT
    # blocks so the agent never loops forever.
    feedback = [p for p in asked if p.startswith("Stop hook feedback:") and ident in p]
    assert asked[0] == "hello"
    assert len(feedback) == STOP_BLOCK_LIMIT, asked
