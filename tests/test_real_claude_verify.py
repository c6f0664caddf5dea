"""The verify gate with the real Claude Code (the pinned build, offline, the scripted model):
an agent's own `comm-node task done` from its Bash tool is refused while the verify command
fails, the agent (the model) is told why, and once the file is fixed the next attempt closes
the task. The loop issue 17 asks for: fail -> reason -> next attempt -> pass."""

from __future__ import annotations

import json
import subprocess
import sys

from comm_node_tui.adapters.claude.screen import read_screen
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env
from tests.realclaude import wait_screen
from tests.waiting import wait_for

VERIFY = "test -f src/fixed.txt || { echo 'src/fixed.txt is missing: write it'; exit 1; }"


def task_show(rw, tid: str) -> dict:
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "task", "show", tid, "--json"],
        cwd=rw.root,
        env=cli_env(COMM_NODE_TMUX_SOCKET=rw.socket),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def tool_results(rw, since: int) -> list[str]:
    return [e.tool_result or "" for e in rw.model.requests()[since:] if e.kind == "tool_result"]


def run_in_agent(rw, ap: AgentPanes, command: str) -> str:
    """The agent runs `command` with its Bash tool; what its tool result handed the model."""
    before = len(rw.model.requests())
    ap.inject("api", f"CN_BASH {command}")
    found: list[str] = []

    def answered() -> bool:
        found[:] = [r for r in tool_results(rw, before) if r.strip()]
        return bool(found)

    wait_for(answered, timeout=60, every=0.2, what=f"the tool result of {command!r}")
    # the turn ends before the next injection (typing into a busy agent would queue it)
    wait_screen(ap, "api", lambda s: read_screen(s).state == "idle", timeout=60)
    return found[-1]


def test_an_agent_is_refused_told_why_and_passes_once_fixed(real_ws):
    rw = real_ws(names=("api",))
    # the domain's verify command (the operator's config), then native tasks
    with (rw.root / "comm-node.toml").open("a") as fh:
        fh.write(f'verify = [{json.dumps(VERIFY)}]\n\n[tasks]\nsource = "native"\n')
    (rw.root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "the fix"\ndomain = "api"\n'
        'done_when = ["src/fixed.txt exists"]\n'
    )
    ap = AgentPanes(load_workspace(str(rw.root)))
    ap.up(["api"])
    wait_screen(ap, "api", lambda s: "❯\u00a0" in s)

    claimed = run_in_agent(rw, ap, "comm-node task claim T1")
    assert "api claimed T1" in claimed and "src/fixed.txt exists" in claimed
    assert "$ test -f src/fixed.txt" in claimed  # the agent is told how done is checked

    refused = run_in_agent(rw, ap, "comm-node task done T1")
    # Claude Code hands the command's exit status and its output to the model
    assert "Exit code 5" in refused, refused
    assert "task T1 not closed: `test -f src/fixed.txt" in refused and "exited 1" in refused
    assert "src/fixed.txt is missing: write it" in refused
    row = task_show(rw, "T1")
    assert row["status"] == "in_progress" and row["last_failure"]["by"] == "api"

    (rw.dom("api") / "src" / "fixed.txt").write_text("fixed\n")
    passed = run_in_agent(rw, ap, "comm-node task done T1")
    assert "T1 done (verified: 1 passed)" in passed, passed
    row = task_show(rw, "T1")
    assert row["status"] == "closed"
    assert [a["result"] for a in row["attempts"]] == ["fail", "pass"]
    assert "Do you want to proceed?" not in ap.peek("api")  # its own commands asked nothing
