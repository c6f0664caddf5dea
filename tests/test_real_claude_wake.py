"""Work wakes an idle agent, end to end with the real Claude Code (the pinned build, offline,
the scripted model) and the real engine (`comm-node serve` in its own process): another
domain closes the task web's task waits on, the engine sees it ready, tells web (a task_ready
message) and nudges it at rest; web's own UserPromptSubmit hook proves the turn started, and
the prompt the model gets names the task. Issue 17 item 4; bench/ready_to_turn.py times it."""

from __future__ import annotations

import json
import signal

from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.protocol import receipts as rc
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, run_cli, start_serve
from tests.realclaude import prompts, wait_screen
from tests.waiting import wait_for


def _events(root) -> list[dict]:
    path = root / ".comm-node" / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_closed_dependency_wakes_the_idle_real_agent_with_a_prompt_naming_its_task(real_ws):
    rw = real_ws(names=("api", "web"))  # only web runs an agent: api closes from the CLI
    with (rw.root / "comm-node.toml").open("a") as fh:
        fh.write('\n[tasks]\nsource = "native"\n')
    (rw.root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "the API"\ndomain = "api"\n'
        '[[tasks]]\nid = "T2"\ntitle = "the page"\ndomain = "web"\ndepends_on = ["T1"]\n'
    )
    ap = AgentPanes(load_workspace(str(rw.root)))
    ap.up(["web"])
    wait_screen(ap, "web", lambda s: "❯\u00a0" in s)
    serve = start_serve(rw.root)
    try:
        wait_for(
            lambda: any(e["type"] == "engine.started" for e in _events(rw.root)),
            timeout=60,
            what="the engine to start",
            show=lambda: serve.stderr.read() if serve.poll() is not None else "(running)",
        )
        api = cli_env(COMM_NODE_DOMAIN="api")
        assert run_cli("task", "claim", "T1", cwd=rw.dom("api"), env=api).returncode == 0
        done = run_cli("task", "done", "T1", cwd=rw.dom("api"), env=api)
        assert done.returncode == 0, done.stderr

        def woken() -> list[str]:
            return [p for p in prompts(rw.model) if "T2" in p]

        [prompt] = wait_for(woken, timeout=90, every=0.1, what="web's turn about T2")
        assert prompt == "You have 1 new message (task T2 is ready for you): run `comm-node inbox`"
        receipts = rc.path_in(str(rw.root / ".comm-node"))

        def answered() -> list[dict]:
            return [
                r
                for r in rc.receipts(receipts, "web")
                if r["by"] == "nudge" and r["state"] == "answered"
            ]

        # the hook proved it (started, then its Stop answered it), and only one was typed
        [nudge] = wait_for(answered, timeout=60, what="the nudge's turn to end")
        assert nudge["times"]["started"] >= nudge["times"]["typed"]
        assert [r["by"] for r in rc.receipts(receipts, "web")] == ["nudge"]
        # the engine logged both steps (its receipt watch reads the hook's record on its tick)
        wait_for(lambda: "agent.turn_started" in [e["type"] for e in _events(rw.root)])
        assert "task.ready" in [e["type"] for e in _events(rw.root)]
        assert woken() == [prompt]  # once
        assert "Do you want" not in ap.peek("web")  # never into a dialog
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
