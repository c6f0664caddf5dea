"""Delivery receipts on the real Claude Code CLI (the pinned build, offline against the
scripted model): `comm-node inject --wait` returns 0 only once the agent's own
UserPromptSubmit hook carried the text (and the model was asked it); into an open permission
dialog nothing is typed and the exit code says so; text the operator is typing in the box is
never touched, and the delivery waits for it.

One Claude Code start serves the whole module (it is the slow part); the cases run in order
and each leaves the agent at rest at its prompt.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from comm_node_tui.adapters.claude.screen import read_screen
from comm_node_tui.model import ScriptedModel
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.protocol import receipts as rc
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env
from tests.realclaude import RealWorkspace, prompts, stop_agents, wait_screen, write_real_workspace
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    with ScriptedModel() as m:
        yield m


@pytest.fixture(scope="module")
def agent(tmp_path_factory, model) -> Iterator[RealWorkspace]:
    """One real Claude Code agent, "api", at its prompt, in classic permission mode."""
    rw = write_real_workspace(tmp_path_factory.mktemp("receipts") / "ws", model, names=("api",))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("COMM_NODE_TMUX_SOCKET", rw.socket)
            ap = AgentPanes(load_workspace(str(rw.root)))
            ap.up()
            wait_screen(ap, "api", lambda s: "❯\u00a0" in s)
        yield rw
    finally:
        stop_agents(rw.socket)


@pytest.fixture
def ap(agent, monkeypatch) -> AgentPanes:
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", agent.socket)
    panes = AgentPanes(load_workspace(str(agent.root)))
    # at rest with an empty box: what the case before left behind
    wait_screen(panes, "api", lambda s: at_rest(s) and not (read_screen(s).input or "").strip())
    return panes


def at_rest(screen: str) -> bool:
    return read_screen(screen).state == "idle"


def inject(rw: RealWorkspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "inject", "api", *args],
        cwd=rw.root,
        env=cli_env(COMM_NODE_TMUX_SOCKET=rw.socket),
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


def test_inject_wait_returns_when_the_turn_started_and_the_model_got_it(agent, ap):
    text = "CN_SAY receipts work; plus a !bang and #{pane_id} kept literally"
    res = inject(agent, text, "--wait", "--json", "--timeout", "30")
    assert res.returncode == 0, res.stderr
    receipt = json.loads(res.stdout)["receipt"]
    assert receipt["state"] in ("started", "answered") and receipt["attempts"] == 1
    assert receipt["started_s"] is not None
    # proved by the agent's hook, and the scripted model was asked exactly this
    wait_for(lambda: text in prompts(agent.model), timeout=30)
    path = rc.path_in(ap.ws.paths.state)
    wait_for(lambda: rc.find(path, receipt["id"])["state"] == "answered", timeout=30)
    # a paste Claude Code hands its hook wrapped in <pasted_content id="...">: still proved
    wait_screen(ap, "api", at_rest)
    res = inject(agent, "first line\nsecond line\n\nfourth", "--wait", "--json", "--timeout", "30")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["receipt"]["attempts"] == 1


def test_into_an_open_permission_dialog_nothing_is_typed(agent, ap):
    target = agent.dom("api") / "src" / "approved.txt"
    res = inject(agent, f"CN_BASH touch {target}", "--wait", "--timeout", "30")
    assert res.returncode == 0, res.stderr  # that turn started: it asks for a tool
    wait_screen(ap, "api", lambda s: "Do you want to proceed?" in s)
    asked = len(prompts(agent.model))
    res = inject(agent, "please also update the docs", "--wait", "--json", "--timeout", "2")
    assert res.returncode == 5, (res.returncode, res.stderr)
    out = json.loads(res.stdout)
    assert out["receipt"]["state"] == "failed" and out["receipt"]["reason"] == "dialog"
    # the dialog is still open, unanswered; the tool did not run; nothing reached the model
    screen = ap.peek("api")
    assert "Do you want to proceed?" in screen and "please also update" not in screen
    assert not target.exists()
    assert len(prompts(agent.model)) == asked
    ap.answer("api", allow=False)  # leave the agent at rest for the next case
    wait_screen(ap, "api", at_rest)
    assert not target.exists()


def test_operator_text_in_the_box_is_never_touched_then_the_delivery_goes(agent, ap):
    pane = ap.tmux.panes()["api"].id
    draft = "half-typed by the operator"
    ap.tmux.cmd("send-keys", "-t", pane, "-l", draft)
    wait_screen(ap, "api", lambda s: read_screen(s).input == draft)
    res = inject(agent, "CN_SAY from comm-node", "--wait", "--json", "--timeout", "2")
    assert res.returncode == 6, (res.returncode, res.stderr)
    out = json.loads(res.stdout)
    assert (out["receipt"]["state"], out["receipt"]["reason"]) == ("failed", "operator_typing")
    # the operator's text is exactly as typed: not erased, not submitted, not mixed with ours
    assert read_screen(ap.peek("api")).input == draft
    assert not any("from comm-node" in p or draft in p for p in prompts(agent.model))
    events = (agent.root / ".comm-node" / "events.jsonl").read_text().splitlines()
    assert any('"agent.inject_waiting"' in line for line in events)
    # the operator clears the box: the delivery goes through
    ap.tmux.cmd("send-keys", "-t", pane, *["BSpace"] * len(draft))
    wait_screen(ap, "api", lambda s: not (read_screen(s).input or "").strip())
    res = inject(agent, "CN_SAY from comm-node", "--wait", "--timeout", "30")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: "CN_SAY from comm-node" in prompts(agent.model), timeout=30)
    assert not any(draft in p for p in prompts(agent.model))
