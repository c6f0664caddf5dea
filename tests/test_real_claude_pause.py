"""The operator's pause on the real Claude Code CLI (the pinned build) in a tmux pane, offline
against the scripted model: a tool call the agent makes after the pause is refused by its
hook and never runs, and a prompt typed while paused never reaches the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.coordination.operator import pause
from comm_node_tui.model import ScriptedModel
from comm_node_tui.panes.inject import NotDelivered
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import wait_for
from tests.realclaude import prompts, wait_screen

# The tool call is held at a gate file until the test has paused the agent: the prompt goes
# through the hook before the pause and the tool call comes after it, whatever the load.
SCRIPT = """
[[rules]]
name = "late-tool"
match = 'LATE_TOOL (?P<file>\\S+)'
reply = [{{tool = "Bash", input = {{command = "touch {{file}}"}}}}]
stream = {{gate = '{gate}'}}
"""


@pytest.fixture(scope="module")
def gate(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gate") / "go"


@pytest.fixture(scope="module")
def model(tmp_path_factory, gate) -> Iterator[ScriptedModel]:
    """This module's model: the built-in directives and the gated tool call."""
    path = tmp_path_factory.mktemp("script") / "pause.toml"
    path.write_text(SCRIPT.format(gate=gate))
    with ScriptedModel(script=path) as m:
        yield m


def denied(root: Path) -> list[dict]:
    events = root / ".comm-node" / "events.jsonl"
    lines = events.read_text().splitlines() if events.exists() else []
    return [e for e in map(json.loads, lines) if e["type"] == "tool.denied"]


def test_a_paused_agents_tool_call_and_prompt_are_refused(real_ws, gate):
    rw = real_ws()
    ws = load_workspace(str(rw.root))
    ap = AgentPanes(ws)
    ap.up(["api"])
    wait_screen(ap, "api", lambda s: "❯\u00a0" in s)
    target = rw.dom("api") / "src" / "late.txt"
    ap.inject("api", f"LATE_TOOL {target}")
    wait_for(lambda: rw.model.holding(gate), timeout=60, every=0.1)
    pause(Coordinator(ws), ["api"])  # no Escape: the turn goes on, and calls its tool
    gate.touch()
    [ev] = wait_for(lambda: denied(rw.root), timeout=30, every=0.2)
    assert ev["agent"] == "api" and ev["data"]["tool"] == "Bash"
    assert "comm-node resume api" in ev["data"]["reason"]
    screen = wait_screen(ap, "api", lambda s: "comm-node resume api" in s)
    assert "Do you want to proceed?" not in screen
    assert not target.exists()
    # a new prompt while paused: blocked by the hook, never sent to the model
    wait_screen(ap, "api", lambda s: "❯\u00a0" in s and "esc to interrupt" not in s)
    asked = len(prompts(rw.model))
    try:
        ap.inject("api", "CN_SAY should not arrive")
    except NotDelivered as exc:
        # On a loaded machine the typist can find the blocked prompt in the input box after
        # its Enters (seen in a run beside two CPU hogs): typed and submitted all the same,
        # which the hook's refusals on the screen below must show
        assert exc.typed and "still in the input box" in str(exc), exc
    wait_screen(ap, "api", lambda s: s.count("comm-node resume api") >= 2)
    assert len(prompts(rw.model)) == asked
    assert not any("should not arrive" in p for p in prompts(rw.model))
