"""Conversations that survive a restart, on the real Claude Code CLI (the pinned build) in a
tmux pane, offline against the scripted model: `comm-node restart` resumes the agent's
session (its next request to the model carries what was said before, under the same session
id), `--fresh` starts a new one, and `comm-node up` after the tmux server is gone resumes the
last one. One agent, one test: every start of Claude Code costs seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from comm_node_tui.coordination.sessions import kept_session, valid_session_id
from comm_node_tui.model.log import LogEntry
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env
from tests.realclaude import stop_agents, wait_screen
from tests.test_real_claude_print import run_p
from tests.waiting import wait_for

PROMPT_MARK = "❯\u00a0"  # the input box of 2.1.330: the agent is at its prompt


def started(screen: str) -> bool:
    """At its prompt, with its footer's start-up hint drawn: a resumed session draws its
    input box a moment before it takes a paste (on a loaded machine, a paste typed right
    at the box's appearance was lost), and the hint comes last."""
    return PROMPT_MARK in screen and "? for shortcuts" in screen


def ask(ap: AgentPanes, rw, text: str) -> LogEntry:
    """Type `text` into api's Claude Code and wait for its turn to end; the model's request
    that carried it."""
    status = rw.dom("api") / ".comm-node" / "status.json"
    ap.inject("api", text)

    def request() -> LogEntry | None:
        return next(
            (e for e in rw.model.requests() if e.kind == "prompt" and e.prompt == text), None
        )

    wait_for(lambda: request() is not None, what=f"the model to be asked {text!r}")
    # the turn's end (the Stop hook) is when the transcript holds the reply
    wait_for(
        lambda: json.loads(status.read_text()).get("hook_event") == "Stop",
        what="api's Stop hook",
    )
    entry = request()
    assert entry is not None
    return entry


def comm_node(rw, *args: str) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", *args, "-w", str(rw.root)],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(COMM_NODE_TMUX_SOCKET=rw.socket),
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_restart_resumes_fresh_starts_new_and_up_after_a_lost_server_resumes(real_ws):
    rw = real_ws(names=("api",))
    ws = load_workspace(str(rw.root))
    ap = AgentPanes(ws)
    ap.up()
    wait_screen(ap, "api", started)
    word = f"zebra{os.urandom(3).hex()}"
    first = ask(ap, rw, f"remember the word {word}")
    sid = first.session_id
    assert valid_session_id(sid)
    kept = kept_session(ws.paths.state, "api")
    assert kept is not None and kept["session_id"] == sid
    assert kept["transcript_path"] and os.path.isfile(kept["transcript_path"])
    # a `claude -p` run in the folder beside the agent is another session: not the domain's
    res = run_p(rw, "api", "CN_SAY a side errand")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["session_id"] != sid
    assert kept_session(ws.paths.state, "api")["session_id"] == sid

    # restart (the CLI): the same conversation, under the same session id
    out = comm_node(rw, "restart", "api")
    assert f"resuming session {sid[:8]}" in out
    wait_screen(ap, "api", started)
    second = ask(ap, rw, "which word was it")
    assert any(word in text for text in second.earlier), second.earlier
    assert second.session_id == sid
    assert kept_session(ws.paths.state, "api")["session_id"] == sid

    # --fresh: a new conversation that knows nothing of the word
    out = comm_node(rw, "restart", "api", "--fresh")
    assert "fresh (fresh conversation asked for)" in out
    wait_screen(ap, "api", started)
    third = ask(ap, rw, "a new start")
    assert third.session_id != sid and valid_session_id(third.session_id)
    assert not any(word in text for text in third.earlier), third.earlier
    assert kept_session(ws.paths.state, "api")["session_id"] == third.session_id

    # the tmux server and every agent gone (a reboot): `up` resumes the last conversation
    stop_agents(rw.socket)
    out = comm_node(rw, "up")
    line = next(x for x in out.splitlines() if x.startswith("api "))
    assert line.split()[1] == "started", out
    assert f"resuming session {third.session_id[:8]}" in line
    wait_screen(ap, "api", started)
    fourth = ask(ap, rw, "still there")
    assert "a new start" in fourth.earlier and fourth.session_id == third.session_id
    events = [json.loads(x) for x in Path(ws.paths.events).read_text().splitlines()]
    last_start = [e for e in events if e["type"] == "agent.started"][-1]
    assert last_start["data"]["session"] == third.session_id
    assert f"resuming session {third.session_id[:8]}" in last_start["msg"]
