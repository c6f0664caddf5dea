"""Each domain's last conversation, kept and resumed: the hook keeps the session id in
`.comm-node/sessions.json` (through the real `comm-node hook`), the agent-CLI seam turns it
into `--resume ID`, and `restart` / `up` use it unless told `--fresh` or unless its
transcript is gone. Agents here are the fake agent in a real private tmux server (it takes
`--resume` as Claude Code does); tests/test_real_claude_resume.py runs the real CLI."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from comm_node_tui.adapters.agent_cli import Unsafe, agent_cli_for, comm_node_argv
from comm_node_tui.coordination.sessions import (
    kept_session,
    note_session,
    read_sessions,
    sessions_path,
    valid_session_id,
)
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.protocol.procs import start_time
from comm_node_tui.tui.app import ControlRoom
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env
from tests.waiting import until, wait_for

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"


# ---- the hook keeps it ---------------------------------------------------------------------
@pytest.fixture
def ws(tmp_path) -> Path:
    root = tmp_path / "ws"
    for d in ("api", "web"):
        (root / d).mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "sessions"\n'
        '[[domains]]\nname = "api"\npath = "api"\n'
        '[[domains]]\nname = "web"\npath = "web"\n'
    )
    return root


def hook(root: Path, domain: str, event: str, session: str, *, via: str | None = None) -> None:
    payload = {
        "session_id": session,
        "transcript_path": f"/home/u/.claude/projects/x/{session}.jsonl",
        "cwd": str(root / domain),
        "hook_event_name": event,
    }
    argv = [*comm_node_argv(), "hook"]
    if via:  # run the hook under a process of that name (Claude Code runs hooks under it)
        argv = [via, "-c", shlex.join(argv) + "; true"]
    res = subprocess.run(
        argv,
        cwd=root,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        env={**cli_env(), "PYTHONPATH": os.getcwd()},
    )
    assert res.returncode == 0, res.stderr


def test_the_hook_keeps_each_domains_session_writing_only_when_it_changes_or_a_turn_ends(ws):
    state = str(ws / ".comm-node")
    first, second, other = (str(uuid.uuid4()) for _ in range(3))
    hook(ws, "api", "SessionStart", first)
    kept = kept_session(state, "api")
    assert kept is not None and kept["session_id"] == first
    assert kept["transcript_path"] == f"/home/u/.claude/projects/x/{first}.jsonl"
    assert kept["first_seen"] == kept["last_seen"]
    # the hot path: a tool call of the same session does not rewrite the file
    inode = os.stat(sessions_path(state)).st_ino
    hook(ws, "api", "PreToolUse", first)
    assert os.stat(sessions_path(state)).st_ino == inode
    # a turn's end does: last_seen moves, the session is the same one
    hook(ws, "api", "Stop", first)
    assert os.stat(sessions_path(state)).st_ino != inode
    after = kept_session(state, "api")
    assert after["session_id"] == first and after["first_seen"] == kept["first_seen"]
    assert after["last_seen"] >= kept["last_seen"]
    # a new id (/clear, a fresh start) replaces it; other domains keep theirs
    hook(ws, "web", "SessionStart", other)
    hook(ws, "api", "UserPromptSubmit", second)
    assert {n: s["session_id"] for n, s in read_sessions(state).items()} == {
        "api": second,
        "web": other,
    }
    # an id that is no session id (it would go on a command line) is never kept
    hook(ws, "api", "SessionStart", "x; rm -rf ~")
    assert kept_session(state, "api")["session_id"] == second
    status = json.loads((ws / "api" / ".comm-node" / "status.json").read_text())
    assert status["session_id"] == "x; rm -rf ~"  # status.json still says what came


def test_a_claude_p_run_beside_the_agent_does_not_replace_its_session(ws, tmp_path):
    state = str(ws / ".comm-node")
    agent = str(uuid.uuid4())
    hook(ws, "api", "SessionStart", agent)
    # the domain's agent is a live process (this one), as its hooks recorded it
    status = ws / "api" / ".comm-node" / "status.json"
    data = json.loads(status.read_text())
    data.update(agent_pid=os.getpid(), agent_start=start_time(os.getpid()))
    status.write_text(json.dumps(data))
    claude = tmp_path / "claude"
    claude.symlink_to("/bin/sh")  # another process named `claude`: a `claude -p`
    for event in ("SessionStart", "UserPromptSubmit", "Stop", "SessionEnd"):
        hook(ws, "api", event, str(uuid.uuid5(uuid.NAMESPACE_OID, "side")), via=str(claude))
    assert kept_session(state, "api")["session_id"] == agent


def test_the_sessions_file_is_untrusted(tmp_path):
    state = str(tmp_path)
    good = str(uuid.uuid4())
    assert valid_session_id(good) and valid_session_id(good.upper())
    for bad in ("", "fake-1-2", good + "\n", f"{good} --x", "../" + good, None, 7):
        assert not valid_session_id(bad)
        assert note_session(state, "api", bad, None, 1.0) is False  # type: ignore[arg-type]
    assert read_sessions(state) == {}
    Path(sessions_path(state)).write_text("{not json")
    assert read_sessions(state) == {}
    Path(sessions_path(state)).write_text(
        json.dumps(
            {
                "domains": {
                    "api": {"session_id": good, "transcript_path": 5, "last_seen": "x"},
                    "web": {"session_id": "$(reboot)"},
                    "docs": [],
                }
            }
        )
    )
    assert read_sessions(state) == {
        "api": {"session_id": good, "transcript_path": None, "first_seen": None, "last_seen": None}
    }


# ---- the agent-CLI seam ----------------------------------------------------------------------
def test_claude_codes_command_resumes_with_a_quoted_session_id_only(tmp_path):
    root = tmp_path / "ws"
    for d in ("api", "web", "ops"):
        (root / d).mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "cmd"\n'
        '[[domains]]\nname = "api"\npath = "api"\nmodel = "opus"\n'
        '[[domains]]\nname = "web"\npath = "web"\ncommand = "/opt/my claude.sh --verbose"\n'
        '[[domains]]\nname = "ops"\npath = "ops"\ncommand = "claude --continue"\n'
    )
    ws = load_workspace(str(root))
    cli = agent_cli_for(ws)
    sid = str(uuid.uuid4())
    api, web, ops = (ws.domains[n] for n in ("api", "web", "ops"))
    assert cli.command(api) == f"{api.command} --model opus"
    assert shlex.split(cli.command(api, resume=sid))[-2:] == ["--resume", sid]
    # a wrapper gets it too: the session came from Claude Code's hooks under this command
    assert cli.command(web, resume=sid) == f"/opt/my claude.sh --verbose --resume {sid}"
    assert cli.command(ops, resume=sid) == "claude --continue"  # it chose its session
    with pytest.raises(Unsafe, match="not a Claude Code session id"):
        cli.command(api, resume=f"{sid}; touch /tmp/owned")


def test_claude_code_resumes_only_a_session_whose_transcript_exists(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    (root / "api").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "t"\n[[domains]]\nname = "api"\npath = "api"\n'
    )
    ws = load_workspace(str(root))
    cli, api = agent_cli_for(ws), ws.domains["api"]
    sid = str(uuid.uuid4())
    transcript = tmp_path / f"{sid}.jsonl"
    record = {"session_id": sid, "transcript_path": str(transcript)}
    assert "is gone" in (cli.resume_problem(api, record) or "")
    transcript.write_text("{}\n")
    assert cli.resume_problem(api, record) is None
    # no path from the hooks: Claude Code's projects folder in its config dir
    from comm_node_tui.usage.paths import project_dir_name

    home = tmp_path / "claude-home"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home))
    bare = {"session_id": sid, "transcript_path": None}
    assert "no transcript of it under" in (cli.resume_problem(api, bare) or "")
    folder = home / "projects" / project_dir_name(api.path)
    folder.mkdir(parents=True)
    (folder / f"{sid}.jsonl").write_text("{}\n")
    assert cli.resume_problem(api, bare) is None


# ---- restart and up --------------------------------------------------------------------------
@pytest.fixture
def agents(tmp_path, monkeypatch):
    socket = f"cn-test-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    parts = ['[project]\nname = "resume"\n']
    for name in ("alpha", "beta"):
        (root / name).mkdir(parents=True)
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\n'
            f'command = "{AGENT} --log {root}/{name}.log"\n'
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    for name in ("alpha", "beta"):
        wait_for(lambda n=name: "❯" in ap.peek(n), what=f"{name} at its prompt")
    yield root, ap, socket
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def starts(root: Path, name: str) -> list[dict]:
    p = root / f"{name}.log"
    lines = p.read_text().splitlines() if p.exists() else []
    return [r for r in map(json.loads, lines) if r["event"] == "start"]


def comm_node(root: Path, *args: str) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", *args, "-w", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_restart_resumes_the_kept_session_unless_fresh_or_its_transcript_is_gone(agents):
    root, ap, _socket = agents
    sid = str(uuid.uuid4())
    transcript = root / f"{sid}.jsonl"
    transcript.write_text("{}\n")
    note_session(ap.ws.paths.state, "alpha", sid, str(transcript), 1.0)

    out = comm_node(root, "restart", "alpha")
    assert "alpha: restarted in pane %" in out and f"resuming session {sid[:8]}…" in out
    wait_for(lambda: len(starts(root, "alpha")) == 2)
    assert starts(root, "alpha")[-1]["resume"] == sid

    out = comm_node(root, "restart", "alpha", "--fresh")
    assert out.rstrip().endswith("fresh (fresh conversation asked for)")
    wait_for(lambda: len(starts(root, "alpha")) == 3)
    assert starts(root, "alpha")[-1]["resume"] is None

    transcript.unlink()
    res = ap.restart("alpha")
    assert res["session"] is None
    assert res["fresh"] == (
        f"session {sid[:8]}… cannot be resumed: its transcript {transcript} is gone"
    )
    wait_for(lambda: len(starts(root, "alpha")) == 4)
    assert starts(root, "alpha")[-1]["resume"] is None  # Claude Code would have failed
    events = [
        json.loads(x) for x in (root / ".comm-node" / "events.jsonl").read_text().split("\n") if x
    ]
    restarted = [e for e in events if e["type"] == "agent.restarted"]
    assert [e["data"]["session"] for e in restarted] == [sid, None, None]
    assert "cannot be resumed: its transcript" in restarted[-1]["msg"]


def test_up_after_a_lost_server_resumes_each_kept_session_and_fresh_starts_new(agents):
    root, ap, socket = agents
    sid = str(uuid.uuid4())
    transcript = root / f"{sid}.jsonl"
    transcript.write_text("{}\n")
    note_session(ap.ws.paths.state, "alpha", sid, str(transcript), 1.0)
    pids = [p.pid for p in ap.tmux.panes().values()]
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
    wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids if p))

    out = comm_node(root, "up").splitlines()
    alpha = next(x for x in out if x.startswith("alpha "))
    beta = next(x for x in out if x.startswith("beta "))
    assert alpha.split()[1] == "started" and alpha.endswith(f"resuming session {sid[:8]}…")
    assert beta.split()[1] == "started" and beta.endswith("fresh (no conversation kept)")
    wait_for(lambda: len(starts(root, "alpha")) == 2 and len(starts(root, "beta")) == 2)
    assert starts(root, "alpha")[-1]["resume"] == sid
    assert starts(root, "beta")[-1]["resume"] is None
    # agents already running are adopted, whatever is kept: nothing restarts them
    again = comm_node(root, "up").splitlines()
    assert next(x for x in again if x.startswith("alpha ")).split()[1] == "adopted"
    assert "resuming" not in "\n".join(again)

    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
    rows = json.loads(comm_node(root, "up", "--fresh", "--json"))
    assert {r["domain"]: r["session"] for r in rows} == {"alpha": None, "beta": None}
    wait_for(lambda: len(starts(root, "alpha")) == 3)
    assert starts(root, "alpha")[-1]["resume"] is None


async def test_the_rooms_restart_resumes_and_f_starts_a_fresh_conversation(agents):
    root, ap, _socket = agents
    sid = str(uuid.uuid4())
    transcript = root / f"{sid}.jsonl"
    transcript.write_text("{}\n")
    note_session(ap.ws.paths.state, "alpha", sid, str(transcript), 1.0)
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.query_one("#agents").row_count == 2)
        await pilot.press("1", "r")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: len(starts(root, "alpha")) == 2)
        assert starts(root, "alpha")[-1]["resume"] == sid
        await pilot.press("r")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("f")
        await until(pilot, lambda: len(starts(root, "alpha")) == 3)
        assert starts(root, "alpha")[-1]["resume"] is None


def test_keeping_a_session_loads_nothing_heavy_on_the_hooks_path(tmp_path):
    from tests.conftest import write_workspace
    from tests.test_layers import _loaded_by

    root = write_workspace(tmp_path / "ws")
    cwd = root / "backend"
    sid = str(uuid.uuid4())
    # the first call builds the config cache (pydantic, once); later calls must not
    subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "whoami"], cwd=cwd, capture_output=True, timeout=60
    )
    payload = {"hook_event_name": "SessionStart", "session_id": sid, "cwd": str(cwd)}
    assert _loaded_by(["hook"], json.dumps(payload), cwd) == set()
    assert kept_session(str(root / ".comm-node"), "backend")["session_id"] == sid
