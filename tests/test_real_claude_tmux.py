"""The real Claude Code CLI (the pinned build) in tmux panes started by comm-node, offline
against the scripted model: state, liveness, dialogs and typing, as a user runs it.

Each claim docs/claude-code.md and docs/tmux.md make about Claude Code's screens and
hooks is checked here on the real program.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.adapters.claude.screen import read_screen
from comm_node_tui.panes.inject import NotDelivered
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace
from tests import waiting
from tests.conftest import cli_env
from tests.realclaude import claude_binary, prompts, wait_screen
from tests.waiting import describe, wait_for

FAST = "heartbeat_stale_s = 1\nheartbeat_lost_s = 2\nstuck_after_s = 600\n"


def start(rw, engine_for, *names, ready: bool = True):
    """Agents up in their panes, an engine on the workspace; both ready (the agents at
    their prompts, unless `ready` is False)."""
    ws = load_workspace(str(rw.root))
    ap = AgentPanes(ws)
    ap.up(list(names) or None)
    eng = engine_for(rw.root)
    for name in names or rw.names:
        if ready and name in rw.trusted:
            wait_screen(ap, name, lambda s: "❯\u00a0" in s)
    return ap, eng


def pump(eng) -> None:
    """One round of what the engine's loops do: statuses, screens, timers."""
    eng.scan()
    seen = eng.screens.read()
    if seen.states is not None:
        eng.screens.apply(seen)
    eng.tick()


def shown(eng, name: str) -> dict:
    pump(eng)
    return next(a.to_json() for a in eng.snapshot().agents if a.name == name)


def until(eng, name: str, check, timeout: float = 30) -> dict:
    """Pump the engine until `name`'s view passes `check`; the view."""
    seen: list[dict] = [{}]

    def view_matches() -> bool:
        seen[0] = shown(eng, name)
        return check(seen[0])

    wait_for(
        view_matches,
        timeout=timeout,
        every=0.2,
        what=f"{name}'s view to match {describe(check)}",
        show=lambda: f"last view: {seen[0]}",
    )
    return seen[0]


def test_idle_and_streaming_agents_are_never_lost_and_keep_their_locks(real_ws, engine_for):
    rw = real_ws(agents=FAST)
    ap, eng = start(rw, engine_for, "api")
    dom = eng.ws.domains["api"]
    until(eng, "api", lambda a: a["hook_state"] == "idle")  # SessionStart came
    status = json.loads((rw.dom("api") / ".comm-node" / "status.json").read_text())
    assert status["agent_pid"] > 1 and status["agent_start"] > 0  # its claude process
    eng.coord.acquire(dom, ["src/**"])
    # One long reply: no hook fires while it streams.
    ap.inject("api", "CN_SLOW 8")
    until(eng, "api", lambda a: a["state"] == "busy")
    # The behaviour under test is "nothing goes wrong for 5 s" (past heartbeat_stale_s and
    # heartbeat_lost_s): these loops watch for that long, they wait for nothing.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        view = shown(eng, "api")
        assert view["state"] == "busy" and view["health"] == "ok", view
        time.sleep(0.5)
    until(eng, "api", lambda a: a["state"] == "idle" and a["hook_state"] == "idle")
    # Idle and silent, well past the thresholds: healthy.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        view = shown(eng, "api")
        assert view["health"] == "ok" and not view["lost"], view
        time.sleep(0.5)
    kinds = [e.type for e in eng.recent]
    assert not {"agent.lost", "agent.stale", "agent.stuck", "lock.released"} & set(kinds)
    assert [lk.holder for lk in eng.coord.locks()] == ["api"]


def test_escape_ends_a_turn_without_stop_and_the_screen_says_idle(real_ws, engine_for):
    rw = real_ws(agents=FAST)
    ap, eng = start(rw, engine_for, "api")
    ap.inject("api", "CN_SLOW 30")
    until(eng, "api", lambda a: a["state"] == "busy" and a["hook_state"] == "busy")
    ap.interrupt("api")
    # Escape shows "Interrupted · What should Claude do instead?", or, before the reply's
    # first words, puts the prompt back into the input box: the agent is at rest either way.
    wait_screen(ap, "api", lambda s: read_screen(s).state == "idle")
    view = until(eng, "api", lambda a: a["state"] == "idle", timeout=15)
    assert view["hook_state"] == "busy"  # no Stop hook: the screen corrected it


def test_permission_prompt_is_waiting_typing_never_approves_and_approve_does(real_ws, engine_for):
    rw = real_ws(agents=FAST)
    ap, eng = start(rw, engine_for, "api")
    target = rw.dom("api") / "src" / "made.txt"
    ap.inject("api", f"CN_BASH touch {target}")
    wait_screen(ap, "api", lambda s: "Do you want to proceed?" in s)
    # PermissionRequest fires as the dialog appears: "waiting" from the hook and the screen.
    view = until(
        eng, "api", lambda a: a["state"] == "waiting" and a["hook_state"] == "waiting", timeout=10
    )
    assert view["dialog"] == "permission"
    # Typed text never lands in the dialog (Enter there would pick "1. Yes").
    with pytest.raises(NotDelivered) as refused:
        ap.inject("api", "please also update the docs", ready_timeout_s=1)
    assert refused.value.reason == "dialog" and not refused.value.typed
    assert not target.exists()
    assert "Do you want to proceed?" in ap.peek("api")
    log = (rw.root / ".comm-node" / "events.jsonl").read_text().splitlines()
    refusals = [json.loads(x) for x in log if '"agent.inject_refused"' in x]
    assert refusals and refusals[-1]["data"]["reason"] == "dialog"
    # The operator answers deliberately.
    res = cli(rw, "approve", "api")
    assert res.returncode == 0, res.stderr
    wait_for(target.exists, timeout=15)
    until(eng, "api", lambda a: a["state"] == "idle", timeout=15)


def test_deny_refuses_the_tool_and_the_agent_is_idle_again(real_ws, engine_for):
    rw = real_ws(agents=FAST)
    ap, eng = start(rw, engine_for, "api")
    target = rw.dom("api") / "src" / "denied.txt"
    ap.inject("api", f"CN_BASH touch {target}")
    wait_screen(ap, "api", lambda s: "Do you want to proceed?" in s)
    # the hooks' own report of the prompt (its hook may run after the dialog shows; a
    # loaded machine made it land after the answer)
    until(eng, "api", lambda a: a["hook_state"] == "waiting", timeout=15)
    ap.answer("api", allow=False)
    # "No" fires no Stop hook: the screen says idle, and the state follows.
    view = until(eng, "api", lambda a: a["state"] == "idle", timeout=15)
    assert view["hook_state"] == "waiting"
    assert not target.exists()


def test_a_leading_bang_is_text_and_a_leading_slash_is_refused(real_ws, engine_for):
    rw = real_ws()
    ap, _eng = start(rw, engine_for, "api")
    bang = rw.dom("api") / "bang.txt"
    before = len(prompts(rw.model))
    out = ap.inject("api", f"!touch {bang}")
    assert out["protected"]
    wait_for(lambda: len(prompts(rw.model)) > before, timeout=20)
    # Claude Code drops the leading space: the model reads exactly what was meant.
    assert prompts(rw.model)[-1] == f"!touch {bang}"
    wait_screen(ap, "api", lambda s: f"ECHO: !touch {bang}" in s)
    assert not bang.exists()  # not run as a shell command
    # No prefix keeps Claude Code from running a slash command (it strips blanks and
    # zero-width characters): refused, and nothing typed.
    before = len(prompts(rw.model))
    with pytest.raises(NotDelivered) as refused:
        ap.inject("api", "/clear the cache next")
    assert refused.value.reason == "slash_command" and not refused.value.typed
    assert read_screen(ap.peek("api")).input == "" and len(prompts(rw.model)) == before
    # Asked for explicitly, it is a command: /clear ends the conversation (no model call),
    # and a leading space does not stop it (so no prefix can make such text safe).
    ap.inject("api", " /clear", allow_command=True)
    wait_screen(ap, "api", lambda s: f"ECHO: !touch {bang}" not in s)
    assert len(prompts(rw.model)) == before


def test_the_trust_dialog_needs_the_operator_and_is_never_answered(real_ws, engine_for):
    rw = real_ws(trusted=("web",))  # api's folder is new to Claude Code
    ap, eng = start(rw, engine_for, "api")
    wait_screen(ap, "api", lambda s: "trust" in s.lower())
    view = until(eng, "api", lambda a: a["state"] == "waiting")
    assert view["dialog"] == "trust"
    with pytest.raises(NotDelivered) as refused:
        ap.inject("api", "start working", ready_timeout_s=0.5)
    assert refused.value.reason == "dialog"
    with pytest.raises(Exception, match="trust dialog"):
        ap.answer("api", allow=True)
    time.sleep(1)  # Claude Code would have exited had anything been typed
    assert not ap.tmux.panes()["api"].dead
    assert "trust" in ap.peek("api").lower()


def cli(rw, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The real comm-node CLI in the workspace, on the workspace's tmux server."""
    return subprocess.run(
        [sys.executable, "-m", "comm_node_tui", *args],
        cwd=rw.root,
        env=cli_env(COMM_NODE_TMUX_SOCKET=rw.socket, **env),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_agents_run_comm_node_from_their_pane_without_a_permission_prompt(real_ws, engine_for):
    """The pane finds the comm-node that started it (not on PATH here: a venv), and the
    domain's settings allow it, so Claude Code's default mode asks nothing."""
    rw = real_ws()
    ap, eng = start(rw, engine_for, "api", "web")
    ap.inject("api", 'CN_BASH comm-node send --to web "contract is ready"')
    inbox = rw.dom("web") / ".comm-node" / "inbox"

    def arrived() -> bool:
        pump(eng)
        return any("contract is ready" in p.read_text() for p in inbox.glob("*.md"))

    wait_for(arrived, timeout=30, every=0.3)
    assert "Do you want to proceed?" not in ap.peek("api")
    # Only the agent protocol is allowed: an operator command from an agent still asks (it
    # could otherwise kill a peer, or approve a peer's tool, unseen).
    wait_screen(ap, "api", lambda s: read_screen(s).state == "idle")
    ap.inject("api", "CN_BASH comm-node kill web")
    wait_screen(ap, "api", lambda s: "Do you want to proceed?" in s)
    assert not ap.tmux.panes()["web"].dead
    ap.answer("api", allow=False)


def test_status_cli_shows_what_the_room_shows(real_ws, engine_for):
    rw = real_ws(agents=FAST)
    ap, eng = start(rw, engine_for, "api")
    ap.inject("api", "CN_SLOW 30")
    until(eng, "api", lambda a: a["state"] == "busy")
    ap.interrupt("api")
    room = until(eng, "api", lambda a: a["state"] == "idle" and a["hook_state"] == "busy")
    eng.screens.publish()
    res = cli(rw, "status", "--json")
    assert res.returncode == 0, res.stderr
    cli_view = next(a for a in json.loads(res.stdout)["agents"] if a["name"] == "api")
    assert cli_view["state"] == room["state"] == "idle"
    assert cli_view["health"] == room["health"]


def test_an_api_error_ends_the_turn_and_the_agent_is_idle(real_ws, engine_for):
    rw = real_ws(agents=FAST)
    ap, eng = start(rw, engine_for, "api")
    ap.inject("api", "CN_ERROR 400")
    wait_screen(ap, "api", lambda s: "API Error" in s)
    view = until(eng, "api", lambda a: a["state"] == "idle" and a["hook_state"] == "idle")
    status = json.loads((rw.dom("api") / ".comm-node" / "status.json").read_text())
    assert status["hook_event"] == "StopFailure"
    assert view["health"] == "ok"


def test_a_claude_p_run_in_the_folder_does_not_take_over_the_domain(real_ws, engine_for):
    rw = real_ws(agents=FAST)
    _ap, eng = start(rw, engine_for, "api")
    until(eng, "api", lambda a: a["hook_state"] == "idle")
    path = rw.dom("api") / ".comm-node" / "status.json"
    agent = json.loads(path.read_text())
    res = subprocess.run(
        [claude_binary(), "-p", "hello from the side"],
        cwd=rw.dom("api"),
        env=rw.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    after = json.loads(path.read_text())
    assert after["agent_pid"] == agent["agent_pid"]
    assert after["session_id"] == agent["session_id"]
    assert after["state"] == "idle"
    log = (rw.root / ".comm-node" / "events.jsonl").read_text()
    assert '"agent.other_session"' in log


async def test_the_room_shows_waiting_and_y_approves_the_tool(real_ws):
    from comm_node_tui.tui.app import ControlRoom

    rw = real_ws(names=("web", "api"))  # api not on the first row (highlighted = seen)
    ws = load_workspace(str(rw.root))
    ap = AgentPanes(ws)
    ap.up(["api"])
    wait_screen(ap, "api", lambda s: "❯\u00a0" in s)
    target = rw.dom("api") / "src" / "approved.txt"
    ap.inject("api", f"CN_BASH touch {target}")
    wait_screen(ap, "api", lambda s: "Do you want to proceed?" in s)
    app = ControlRoom(ws)
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.query_one("#agents")

        await waiting.until(pilot, lambda: panel.row_count == 2)
        await waiting.until(
            pilot, lambda: app.world is not None and app.world.agent("api").state == "waiting"
        )
        assert "api" in panel.alerts  # what needs the human is marked
        panel.focus()
        panel.move_cursor(row=[r.value for r in panel.rows].index("api"))
        await pilot.press("y")
        await waiting.until(pilot, target.exists)
    assert '"agent.approved"' in (rw.root / ".comm-node" / "events.jsonl").read_text()


def test_kickoff_reports_the_trust_dialog_and_trust_with_consent_clears_it(real_ws):
    from comm_node_tui.kickoff.meeting import Meeting

    rw = real_ws(trusted=("web",))
    ws = load_workspace(str(rw.root))
    result = Meeting(ws, timeout_s=20, retries=1).run()
    assert result["registered"] == ["web"]
    assert "comm-node trust api" in result["failed"]["api"]
    ap = AgentPanes(ws)
    assert "trust" in ap.peek("api").lower()  # still asking: nothing was typed into it
    config_dir = {"CLAUDE_CONFIG_DIR": rw.env["CLAUDE_CONFIG_DIR"]}
    refused = cli(rw, "trust", "api", **config_dir)  # no terminal, no --yes: nothing recorded
    assert refused.returncode == 1 and "--yes" in refused.stderr
    ok = cli(rw, "trust", "api", "--yes", **config_dir)
    assert ok.returncode == 0, ok.stderr
    # the agent that waited in the dialog was stopped first (it would write its own copy of
    # the file back on exit), then started again: now at its prompt
    assert "restarted" in ok.stdout and "api" in ok.stdout
    wait_screen(ap, "api", lambda s: read_screen(s).state == "idle")
    config = json.loads((rw.home / ".claude" / ".claude.json").read_text())
    assert config["projects"][str(rw.dom("api"))]["hasTrustDialogAccepted"] is True
    assert config["hasCompletedOnboarding"] is True  # the rest of the file kept


def test_the_api_key_dialog_is_waiting_and_left_to_the_operator(real_ws, engine_for):
    rw = real_ws()
    config = rw.home / ".claude" / ".claude.json"
    data = json.loads(config.read_text())
    data["customApiKeyResponses"]["approved"] = []  # this key was never answered
    config.write_text(json.dumps(data))
    ap, eng = start(rw, engine_for, "web", ready=False)
    wait_screen(ap, "web", lambda s: "Do you want to use this API key?" in s)
    view = until(eng, "web", lambda a: a["state"] == "waiting")
    assert view["dialog"] == "api_key"
    with pytest.raises(NotDelivered):
        ap.inject("web", "hello", ready_timeout_s=0.5)
    with pytest.raises(Exception, match="api_key dialog"):
        ap.answer("web", allow=True)
    assert "Do you want to use this API key?" in ap.peek("web")


def test_long_and_multi_line_text_arrives_whole(real_ws, engine_for):
    rw = real_ws()
    ap, _eng = start(rw, engine_for, "api")
    lines = [f"line {i}: #{{pane_id}} $HOME C-c Enter ;" for i in range(7)]
    for text in ("\n".join(lines), "x" * 3000 + " end", "three\nshort\nlines"):
        before = len(prompts(rw.model))
        out = ap.inject("api", text)
        assert out["confirmed"]
        wait_for(lambda b=before: len(prompts(rw.model)) > b, timeout=30)
        # The whole text, as Claude Code itself recorded the prompt (the model's log keeps
        # only the first 500 characters); 5+ lines or a long paste reach the model wrapped
        # in <pasted_content> tags.
        status = json.loads((rw.dom("api") / ".comm-node" / "status.json").read_text())
        transcript = Path(status["transcript_path"])
        want = [json.dumps(line)[1:-1] for line in text.split("\n")]

        def recorded(t=transcript, w=want) -> bool:
            body = t.read_text() if t.exists() else ""
            return all(x in body for x in w)

        wait_for(recorded, timeout=30, every=0.2)
        wait_screen(ap, "api", lambda s: read_screen(s).state == "idle")


def test_in_a_git_repository_trust_covers_its_top_too(real_ws, engine_for):
    """Claude Code asks again ("This folder pre-approves N tool permissions") for a trusted
    domain folder inside an untrusted git repository; `comm-node trust` records both."""
    rw = real_ws()
    subprocess.run(["git", "init", "-q", str(rw.root)], check=True, timeout=30)
    ap, eng = start(rw, engine_for, "api", ready=False)
    wait_screen(ap, "api", lambda s: "pre-approves" in s)
    view = until(eng, "api", lambda a: a["state"] == "waiting")
    assert view["dialog"] == "trust"
    ok = cli(rw, "trust", "api", "--yes", CLAUDE_CONFIG_DIR=rw.env["CLAUDE_CONFIG_DIR"])
    assert ok.returncode == 0, ok.stderr
    config = json.loads((rw.home / ".claude" / ".claude.json").read_text())
    assert config["projects"][str(rw.root)]["hasTrustDialogAccepted"] is True
    wait_screen(ap, "api", lambda s: read_screen(s).state == "idle")
