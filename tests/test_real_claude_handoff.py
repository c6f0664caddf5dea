"""Hand-offs on the real Claude Code CLI (the pinned build) in a tmux pane, offline against
the scripted model: the text comm-node's SessionStart hook returns (the task the agent holds,
its contract) reaches the model in the agent's next request, at startup and again after a
`/clear` (typed as a command through the delivery path)."""

from __future__ import annotations

import json

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.model.log import LogEntry
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace
from tests.realclaude import wait_screen
from tests.test_real_claude_resume import started
from tests.waiting import wait_for

TASKS = """\
[[tasks]]
id = "HND-7"
title = "the health endpoint"
domain = "api"
done_when = ["GET /health answers 200"]
verify = ["test -f src/health.txt"]
"""


def ask(ap: AgentPanes, rw, text: str) -> LogEntry:
    """Type `text` and wait for the model's request that carries it, and the turn's end."""
    status = rw.dom("api") / ".comm-node" / "status.json"
    ap.inject("api", text)

    def request() -> LogEntry | None:
        return next(
            # after a /clear the prompt also holds Claude Code's record of the command
            (
                e
                for e in rw.model.requests()
                if e.kind == "prompt" and (e.prompt or "").endswith(text)
            ),
            None,
        )

    wait_for(
        lambda: request() is not None,
        what=f"the model to be asked {text!r}",
        show=lambda: [(e.kind, e.prompt, e.reminders[:3]) for e in rw.model.requests()][-4:],
    )
    wait_for(
        lambda: json.loads(status.read_text()).get("hook_event") == "Stop",
        what="api's Stop hook",
    )
    entry = request()
    assert entry is not None
    return entry


def handoffs(entry: LogEntry) -> list[str]:
    """The hand-off texts the request carried (Claude Code 2.1.330 puts a SessionStart
    hook's additionalContext in a system reminder: "SessionStart hook additional context:
    ...")."""
    return [
        r
        for r in entry.reminders
        if "SessionStart hook additional context: comm-node hand-off for api" in r
    ]


def test_the_session_start_hand_off_reaches_the_model_at_startup_and_after_clear(real_ws):
    rw = real_ws(names=("api",))
    toml = rw.root / "comm-node.toml"
    toml.write_text(toml.read_text() + '\n[tasks]\nsource = "native"\n')
    (rw.root / "tasks.toml").write_text(TASKS)
    ws = load_workspace(str(rw.root))
    Coordinator(ws).claim(ws.domains["api"], "HND-7")
    ap = AgentPanes(ws)
    ap.up(["api"])
    wait_screen(ap, "api", started)
    first = ask(ap, rw, "CN_SAY first words")
    [text] = handoffs(first)
    assert "your session started" in text
    assert "HND-7: the health endpoint" in text and "GET /health answers 200" in text
    # /clear: a new session whose SessionStart(clear) hands the same task back
    status = rw.dom("api") / ".comm-node" / "status.json"
    before = json.loads(status.read_text())["session_id"]
    ap.inject("api", "/clear", allow_command=True)
    wait_for(
        lambda: json.loads(status.read_text()).get("session_id") != before,
        what="the new session's SessionStart hook",
    )
    wait_screen(ap, "api", lambda s: "❯\u00a0" in s and "esc to interrupt" not in s)
    after = ask(ap, rw, "CN_SAY after the clear")
    assert "CN_SAY first words" not in after.earlier  # the context really was cleared
    [text] = handoffs(after)
    assert "your context was cleared" in text and "HND-7" in text
