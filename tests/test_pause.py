"""The operator's real stop (issue 19): `comm-node pause/resume`, per agent or for everyone,
through the real CLI and the real hook in subprocesses; claims, nudges and injections
refused while paused. Real files, a real private tmux server with the fake agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.adapters.agent_cli import comm_node_argv
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.coordination.pause import read_pause
from comm_node_tui.errors import ConflictError
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, run_cli, wait_for

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"


@pytest.fixture
def ws(tmp_path) -> Path:
    root = tmp_path / "ws"
    for d in ("api", "web"):
        (root / d / "src").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "stop"\n[tasks]\nsource = "native"\n'
        '[[domains]]\nname = "api"\npath = "api"\nscope = ["src/**"]\n'
        '[[domains]]\nname = "web"\npath = "web"\nscope = ["src/**"]\n'
    )
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "first"\n[[tasks]]\nid = "T2"\ntitle = "second"\n'
    )
    return root


def hook(root: Path, domain: str, event: str, **extra) -> dict | None:
    payload = {
        "session_id": "s1",
        "transcript_path": f"/home/u/.claude/projects/x/{domain}.jsonl",
        "cwd": str(root / domain),
        "hook_event_name": event,
        "permission_mode": "default",
        **extra,
    }
    res = subprocess.run(
        [*comm_node_argv(), "hook"],
        cwd=root,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout) if res.stdout.strip() else None


def bash(root: Path, domain: str) -> dict | None:
    out = hook(root, domain, "PreToolUse", tool_name="Bash", tool_input={"command": "ls"})
    return None if out is None else out["hookSpecificOutput"]


def test_pause_one_agent_then_all_refuses_tools_prompts_and_claims(ws):
    res = run_cli("pause", "api", cwd=ws)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("paused api")
    # api: its tools and prompts are refused, in one line naming the pause and the way out
    out = bash(ws, "api")
    assert out is not None and out["permissionDecision"] == "deny"
    reason = out["permissionDecisionReason"]
    assert "paused api" in reason and "comm-node resume api" in reason and "\n" not in reason
    prompt = hook(ws, "api", "UserPromptSubmit", prompt="go on")
    assert prompt is not None and prompt["decision"] == "block"
    assert "comm-node resume api" in prompt["reason"]
    # the Stop hook lets a paused agent stop (it never keeps it working)
    assert hook(ws, "api", "Stop", stop_hook_active=False) is None
    # web runs on
    assert bash(ws, "web") is None
    assert hook(ws, "web", "UserPromptSubmit", prompt="go on") is None
    # claims: refused for api only
    res = run_cli("task", "claim", "T1", "-d", "api", cwd=ws)
    assert res.returncode == 3 and "paused" in res.stderr and "api" in res.stderr
    res = run_cli("task", "claim", "T2", "-d", "web", cwd=ws)
    assert res.returncode == 0, res.stderr
    # locks stay releasable while paused (the operator can free what a stopped agent held)
    assert run_cli("lock", "acquire", "src/**", "-d", "api", cwd=ws).returncode == 0
    res = run_cli("lock", "release", "src/**", "-d", "api", cwd=ws)
    assert res.returncode == 0, res.stderr
    # status says who is paused
    status = json.loads(run_cli("status", "--json", cwd=ws).stdout)
    assert status["paused"]["all"] is False and status["paused"]["domains"] == ["api"]
    # everyone: web too; resuming one agent out of "everyone" is refused with the way out
    res = run_cli("pause", "--all", "--json", cwd=ws)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["all"] is True
    out = bash(ws, "web")
    assert out is not None and "comm-node resume --all" in out["permissionDecisionReason"]
    res = run_cli("resume", "api", cwd=ws)
    assert res.returncode == 3 and "resume --all" in res.stderr
    res = run_cli("resume", "--all", cwd=ws)
    assert res.returncode == 0 and res.stdout.startswith("resumed every agent"), res.stderr
    assert not (ws / ".comm-node" / "guarded" / "paused.json").exists()
    assert bash(ws, "api") is None and bash(ws, "web") is None
    res = run_cli("task", "claim", "T1", "-d", "api", cwd=ws)
    assert res.returncode == 0, res.stderr
    log = (ws / ".comm-node" / "events.jsonl").read_text()
    assert "operator.pause" in log and "operator.resume" in log and "tool.denied" in log


def test_resume_by_name_keeps_the_others_paused_and_the_cli_checks_its_words(ws):
    assert run_cli("pause", "api", "web", cwd=ws).returncode == 0
    res = run_cli("resume", "web", cwd=ws)
    assert res.returncode == 0 and "still paused: api" in res.stdout, res.stdout
    assert read_pause(str(ws / ".comm-node")).domains == ("api",)
    for args in (("pause",), ("pause", "api", "--all"), ("resume",)):
        res = run_cli(*args, cwd=ws)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, (args, res.stderr)
    res = run_cli("pause", "ghost", cwd=ws)
    assert res.returncode != 0 and "unknown domain 'ghost'" in res.stderr
    assert read_pause(str(ws / ".comm-node")).domains == ("api",)


@pytest.mark.parametrize(
    "text, all_",
    [("", True), ("{not json", True), ('{"paused_at": "t"}', True), ('{"all": false}', False)],
)
def test_a_pause_file_that_says_little_or_nothing_stops_everyone(ws, text, all_):
    """A file from before per-domain pause, or one nobody can read: the stop holds (it does
    not fail open); `{"all": false}` with no domains stops no one."""
    state = ws / ".comm-node" / "guarded"
    state.mkdir(parents=True, exist_ok=True)
    (state / "paused.json").write_text(text)
    out = bash(ws, "web")
    if all_:
        assert out is not None and out["permissionDecision"] == "deny"
    else:
        assert out is None


def test_claim_refused_in_process_for_a_paused_domain(ws):
    from comm_node_tui.coordination.operator import pause, resume

    wsp = load_workspace(str(ws))
    coord = Coordinator(wsp)
    pause(coord, ["web"])
    with pytest.raises(ConflictError, match="paused"):
        coord.claim(wsp.domains["web"], "T1")
    assert coord.claim(wsp.domains["api"], "T1")["assignee"] == "api"
    assert resume(coord, ["web"]).any is False


@pytest.fixture
def panes_ws(ws, monkeypatch):
    socket = f"cn-test-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    toml = ws / "comm-node.toml"
    text = toml.read_text()
    for name in ("api", "web"):
        text = text.replace(
            f'name = "{name}"\npath = "{name}"\n',
            f'name = "{name}"\npath = "{name}"\ncommand = "{AGENT} --log {ws}/{name}.log"\n',
        )
    toml.write_text(text)
    from comm_node_tui.panes.manager import AgentPanes

    ap = AgentPanes(load_workspace(str(ws)))
    ap.up()
    deadline = time.monotonic() + 15
    while not all("❯" in ap.peek(n) for n in ("api", "web")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield ws, ap
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def submitted(root: Path, name: str) -> list[str]:
    p = root / f"{name}.log"
    lines = p.read_text().splitlines() if p.exists() else []
    return [r["text"] for r in map(json.loads, lines) if r.get("event") == "submit"]


def test_nothing_is_typed_into_a_paused_agent(panes_ws, engine_for):
    ws, ap = panes_ws
    res = run_cli("pause", "web", cwd=ws)
    assert res.returncode == 0 and "interrupted web" in res.stdout, res.stdout
    # inject: refused in one line; --force types it anyway
    res = run_cli("inject", "web", "hello", cwd=ws)
    assert res.returncode == 3 and "web is paused" in res.stderr and "--force" in res.stderr
    assert submitted(ws, "web") == []
    res = run_cli("inject", "web", "forced", "--force", cwd=ws)
    assert res.returncode == 0, res.stderr
    assert submitted(ws, "web") == ["forced"]
    # back at rest, so below only the pause can hold the nudge back
    wait_for(lambda: "esc to interrupt" not in ap.peek("web") and "❯" in ap.peek("web"))
    # the engine's nudge waits for the resume
    eng = engine_for(ws)
    from comm_node_tui.protocol.status import update_status

    update_status(eng.ws.domains["web"].paths.status, "web", state="idle")
    eng.refresh_status("web")
    res = run_cli("send", "--to", "web", "hi", cwd=ws / "api")
    assert res.returncode == 0, res.stderr
    eng.scan()
    eng.screens.apply(eng.screens.read())
    eng.nudger.tick()
    eng.actions.drain()
    assert submitted(ws, "web") == ["forced"] and eng.nudger.last_nudge("web") is None
    assert run_cli("resume", "web", cwd=ws).returncode == 0
    eng.screens.apply(eng.screens.read())
    eng.nudger.tick()
    eng.actions.drain()
    assert submitted(ws, "web") == ["forced", "You have 1 new message: run `comm-node inbox`"]


def test_an_older_comm_nodes_pause_holds_until_the_next_pause_or_resume_moves_it(ws):
    """Before guarded/ the file was `.comm-node/paused.json`: a pause in force across the
    upgrade still stops its agents, and the operator's next word moves it."""
    from comm_node_tui.coordination.operator import pause, resume

    state = ws / ".comm-node"
    state.mkdir(exist_ok=True)
    (state / "paused.json").write_text('{"all": false, "domains": ["web"], "paused_at": "t"}')
    out = bash(ws, "web")
    assert out is not None and out["permissionDecision"] == "deny"
    assert bash(ws, "api") is None
    coord = Coordinator(load_workspace(str(ws)))
    pause(coord, ["api"])
    assert not (state / "paused.json").exists()
    assert set(read_pause(str(state)).domains) == {"web", "api"}
    resume(coord)
    assert not (state / "paused.json").exists()
    assert not (state / "guarded" / "paused.json").exists()
    assert bash(ws, "web") is None


def test_a_guarded_folder_that_is_a_link_stops_everyone_and_the_next_pause_replaces_it(ws):
    """guarded/ as a link (an agent's, made before the folder existed) is nobody's word on the
    pause: every agent is stopped (a stop never fails open), and the operator's next pause or
    resume writes into a folder of its own, never through the link."""
    from comm_node_tui.coordination.operator import resume

    state = ws / ".comm-node"
    state.mkdir(exist_ok=True)
    elsewhere = ws / "api" / "mine"
    elsewhere.mkdir(parents=True)
    (state / "guarded").symlink_to(elsewhere)
    out = bash(ws, "web")
    assert out is not None and out["permissionDecision"] == "deny"
    resume(Coordinator(load_workspace(str(ws))))
    assert not (state / "guarded").is_symlink() and not list(elsewhere.iterdir())
    assert bash(ws, "web") is None
