"""Spiral detection: the same failing tool call K times (the real `comm-node hook` fed the
payloads real Claude Code 2.1.330 sends), and busy with no write and no progress for M
minutes (the engine's watchdog on a ManualClock); an alert, and a pause by policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from comm_node_tui.adapters.agent_cli import comm_node_argv
from comm_node_tui.engine.clock import ManualClock
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, write_workspace
from tests.realclaude import scripted_model, wait_screen
from tests.test_engine_monitors import T0, busy_status, events
from tests.waiting import wait_for

# Recorded from Claude Code 2.1.330 (/work/shared/data/claude/2.1.330/hook_payloads.json);
# cwd and paths are set per test.
FAILURE = {
    "session_id": "f04d9f91-70f3-498b-970c-61183871d2f9",
    "prompt_id": "92de3ba7-aad8-416a-84b2-47301b739b74",
    "permission_mode": "default",
    "effort": {"level": "medium"},
    "hook_event_name": "PostToolUseFailure",
    "tool_name": "Bash",
    "tool_input": {"command": "pytest -q tests/test_api.py", "description": "Run the tests"},
    "tool_use_id": "toolu_fake2696520002",
    "error": "Exit code 1\nFAILED tests/test_api.py::test_health - assert 404 == 200",
    "is_interrupt": False,
    "duration_ms": 51,
}
READ = {
    **{k: FAILURE[k] for k in ("session_id", "prompt_id", "permission_mode", "effort")},
    "hook_event_name": "PostToolUse",
    "tool_name": "Read",
    "tool_input": {"file_path": "src/api.py"},
    "tool_response": {"type": "text", "file": {"filePath": "src/api.py", "content": "x\n"}},
    "tool_use_id": "toolu_fake2691900001",
    "duration_ms": 127,
}


def _hook(root: Path, payload: dict, domain: str = "backend") -> subprocess.CompletedProcess:
    res = subprocess.run(
        [*comm_node_argv(), "hook"],
        cwd=root / domain,
        input=json.dumps({**payload, "cwd": str(root / domain)}),
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(COMM_NODE_DOMAIN=domain),
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr
    return res


def _spirals(root: Path) -> list[dict]:
    path = root / ".comm-node" / "events.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [e for e in rows if e["type"] == "agent.spiral"]


def _paused(root: Path) -> list[str]:
    path = root / ".comm-node" / "guarded" / "paused.json"
    return json.loads(path.read_text())["domains"] if path.exists() else []


def test_the_same_failing_call_k_times_is_one_alert(tmp_path):
    root = write_workspace(tmp_path / "ws", agents="spiral_repeats = 3")
    for _ in range(2):
        _hook(root, FAILURE)
        _hook(root, READ)  # a look at the file between tries does not break the run
    other = {**FAILURE, "tool_input": {"command": "pytest -q tests/test_db.py"}}
    _hook(root, other)  # a different failing call is another run
    assert _spirals(root) == []
    _hook(root, FAILURE)
    [alert] = _spirals(root)
    assert alert["agent"] == "backend" and alert["level"] == "warn"
    assert alert["data"]["alert"] is True and alert["data"]["count"] == 3
    assert "the same Bash call failed 3 times" in alert["msg"]
    assert "pytest -q tests/test_api.py" in alert["msg"] and "404 == 200" in alert["msg"]
    assert alert["data"]["paused"] is False and _paused(root) == []  # the default: alert only
    _hook(root, FAILURE)
    assert len(_spirals(root)) == 1  # one alert per run
    # the call passes once: the next run of failures is a new spiral
    _hook(root, {**READ, "tool_name": "Bash", "tool_input": FAILURE["tool_input"]})
    for _ in range(3):
        _hook(root, FAILURE)
    assert len(_spirals(root)) == 2


def test_by_policy_a_spiral_pauses_the_domain_and_its_next_tool_is_denied(tmp_path):
    root = write_workspace(tmp_path / "ws", agents='spiral_repeats = 2\nspiral_policy = "pause"')
    _hook(root, FAILURE)
    _hook(root, FAILURE)
    [alert] = _spirals(root)
    assert alert["data"]["paused"] is True and "comm-node resume backend" in alert["msg"]
    assert _paused(root) == ["backend"]
    pre = {**FAILURE, "hook_event_name": "PreToolUse"}
    out = json.loads(_hook(root, pre).stdout)["hookSpecificOutput"]
    assert (
        out["permissionDecision"] == "deny" and "paused backend" in out["permissionDecisionReason"]
    )
    # another domain is not touched
    assert _hook(root, pre, domain="frontend").stdout == ""


def test_busy_with_no_write_and_no_progress_for_m_minutes(tmp_path, engine_for):
    root = write_workspace(tmp_path / "ws", agents="spiral_minutes = 20")
    (root / "backend" / "src").mkdir()
    old = root / "backend" / "src" / "api.py"
    old.write_text("x\n")
    os.utime(old, (T0 - 3600, T0 - 3600))
    clock = ManualClock(time=T0)
    eng = engine_for(root, clock=clock)

    def busy(**extra) -> None:
        busy_status(root, "backend", heartbeat=clock.time(), **extra)
        eng.refresh_status("backend")
        eng.watchdog.check()

    busy(progress="reading")
    clock.advance(19 * 60)
    busy(progress="reading")  # hooks keep firing: alive, but nothing to show
    assert not events(eng, "agent.spiral")
    # a file written in its folder (as a Bash `sed -i` would) is progress
    os.utime(old, (clock.time() - 60, clock.time() - 60))
    clock.advance(60)
    busy(progress="reading")
    assert not events(eng, "agent.spiral")
    # a new progress line is progress too
    clock.advance(10 * 60)
    busy(progress="writing the handler")
    clock.advance(19 * 60)
    busy(progress="writing the handler")
    assert not events(eng, "agent.spiral")
    clock.advance(60)
    busy(progress="writing the handler")
    [alert] = events(eng, "agent.spiral", "backend")
    assert alert.data["kind"] == "no_progress" and alert.data["minutes"] == 20
    assert "no file written in its folder" in alert.msg and alert.data["alert"] is True
    clock.advance(60)
    busy(progress="writing the handler")
    assert len(events(eng, "agent.spiral")) == 1  # one alert per stretch
    # idle ends the stretch; an edit through its tools (noted by the hook) is progress
    busy_status(root, "backend", heartbeat=clock.time(), state="idle")
    eng.refresh_status("backend")
    eng.watchdog.check()
    busy(progress="again")
    state = root / "backend" / ".comm-node" / "spiral.json"
    clock.advance(19 * 60)
    state.write_text(json.dumps({"last_edit": clock.time()}))
    clock.advance(19 * 60)
    busy(progress="again")
    assert len(events(eng, "agent.spiral")) == 1
    assert _paused(root) == []


def test_no_progress_pauses_by_policy_and_zero_minutes_is_off(tmp_path, engine_for):
    for minutes, policy, paused in ((5, "pause", ["backend"]), (0, "pause", [])):
        root = write_workspace(
            tmp_path / f"ws{minutes}",
            agents=f'spiral_minutes = {minutes}\nspiral_policy = "{policy}"',
        )
        clock = ManualClock(time=T0)
        eng = engine_for(root, clock=clock)
        for _ in range(2):
            busy_status(root, "backend", heartbeat=clock.time())
            eng.refresh_status("backend")
            eng.watchdog.check()
            clock.advance(6 * 60)
        assert _paused(root) == paused
        assert len(events(eng, "agent.spiral")) == len(paused)


def test_noting_a_tool_call_loads_nothing_heavy(tmp_path):
    """The repeat half runs on every tool call: below the threshold it is one small file."""
    from tests.test_layers import _loaded_by

    root = write_workspace(tmp_path / "ws")
    cwd = root / "backend"
    _hook(root, READ)  # builds the config cache (pydantic, once), as the first call does
    payload = json.dumps({**FAILURE, "cwd": str(cwd)})
    assert _loaded_by(["hook"], payload, cwd) == set()
    assert (cwd / ".comm-node" / "spiral.json").exists()


# The real Claude Code: a turn that runs the same failing command again and again (`ls` of a
# missing file runs without a permission prompt in default mode; docs: real-claude-code.md).
LOOK = '{tool = "Bash", input = {command = "ls nonexistent-spiral", description = "Look"}}'
SCRIPT = f"""
[[rules]]
name = "spiral"
match = 'SPIRAL_TRY'
reply = [{LOOK}]
then = [[{LOOK}], [{LOOK}], [{LOOK}], {{reply = [{{text = "Stopping."}}]}}]
"""


# this module's model: the built-in directives and the spiralling turn
model = scripted_model(SCRIPT, "spiral")


def test_real_claude_code_spiralling_is_paused_and_its_next_call_refused(real_ws):
    rw = real_ws(agents='spiral_repeats = 3\nspiral_policy = "pause"')
    ap = AgentPanes(load_workspace(str(rw.root)))
    ap.up(["api"])
    wait_screen(ap, "api", lambda s: "❯\u00a0" in s)
    ap.inject("api", "SPIRAL_TRY")
    [alert] = wait_for(lambda: _spirals(rw.root), timeout=60, every=0.2)
    assert alert["agent"] == "api" and alert["data"]["count"] == 3
    assert "ls nonexistent-spiral" in alert["msg"] and alert["data"]["paused"] is True
    assert _paused(rw.root) == ["api"]

    def denied() -> list[dict]:
        rows = (rw.root / ".comm-node" / "events.jsonl").read_text().splitlines()
        return [e for e in map(json.loads, rows) if e["type"] == "tool.denied"]

    # the fourth try is refused by the agent's own hook, naming the way out
    [ev] = wait_for(denied, timeout=60, every=0.2)
    assert ev["agent"] == "api" and "comm-node resume api" in ev["data"]["reason"]


def test_a_fifo_or_a_symlink_in_place_of_the_file_never_blocks_the_hook(tmp_path):
    """spiral.json sits in the agent's own folder: whatever it put there, the hook reads it
    without blocking or following it (a FIFO once held every tool call)."""
    import threading

    from comm_node_tui.coordination.spiral import note_call, read_spiral

    fifo = tmp_path / "spiral.json"
    os.mkfifo(fifo)
    done: list[dict] = []
    reader = threading.Thread(target=lambda: done.append(read_spiral(str(fifo))), daemon=True)
    reader.start()
    reader.join(10)
    assert done == [{}]
    secret = tmp_path / "secret.json"
    secret.write_text('{"calls": [["x", true]]}')
    link = tmp_path / "other" / "spiral.json"
    link.parent.mkdir()
    link.symlink_to(secret)
    assert read_spiral(str(link)) == {}
    state = str(tmp_path / "ws-state")
    noted = note_call(
        str(link), "Bash", {"command": "ls"}, failed=False, repeats=3, now=1.0, coord_dir=state
    )
    assert noted is None


RACER = """
import os, sys, time
from comm_node_tui.coordination.spiral import note_call
path, state, go, who, n = sys.argv[1:6]
open(go + "." + who, "w").close()  # imports done: ready to race
while not os.path.exists(go):
    time.sleep(0.001)
for i in range(int(n)):
    note_call(path, "Bash", {"command": f"{who}-{i}"}, failed=True, repeats=100, now=0.0,
              coord_dir=state)
"""


def test_two_hooks_writing_at_once_lose_no_call(tmp_path):
    """Parallel tool calls run their hooks at once: each note is a read-change-write of
    spiral.json, so without the coordination lock one hook's rename drops the other's call
    (seen before the lock: 44 of 80 kept). Two real processes, 40 distinct failing calls each."""
    state = tmp_path / "ws" / ".comm-node"
    path = tmp_path / "dom" / ".comm-node" / "spiral.json"
    path.parent.mkdir(parents=True)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), str(state), str(go), who, "40"],
            env=cli_env(),
        )
        for who in ("a", "b")
    ]
    # both interpreters through their imports before the start, else one runs alone
    wait_for(lambda: all((tmp_path / f"go.{who}").exists() for who in ("a", "b")))
    go.write_text("")
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    calls = json.loads(path.read_text())["calls"]
    assert len(calls) == 80
    assert (state / "coord.lock").exists()  # the workspace's lock, the one the CLI takes
