"""Work wakes an agent without waiting out the mail pacing (engine/nudges.py): a real engine
in process, a fake agent with hooks in a real tmux pane (its hooks prove each turn started).

bench/ready_to_turn.py found the pacing (one nudge per agent per 30 s) behind a p95 of ~25 s
from "a task became ready" to "the idle agent's turn started" with real Claude Code: an agent
nudged about anything in the last 30 s waited out the rest of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from comm_node_tui.engine.nudges import nudge_text, safe_word
from tests.conftest import cli_env
from tests.waiting import wait_for


def _workspace(root: Path) -> None:
    for d in ("api", "web"):
        (root / d).mkdir(parents=True)
    agent = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
    (root / "comm-node.toml").write_text(
        '[project]\nname = "wake"\n[tasks]\nsource = "native"\n'
        f'[[domains]]\nname = "api"\npath = "api"\ncommand = "{agent} --log {root}/api.log"\n'
        f'[[domains]]\nname = "web"\npath = "web"\n'
        f'command = "{agent} --hooks --log {root}/web.log"\n'
    )
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "API"\ndomain = "api"\n'
        '[[tasks]]\nid = "T2"\ntitle = "Page"\ndomain = "web"\ndepends_on = ["T1"]\n'
    )


def _submits(root: Path) -> list[str]:
    """What the fake agent `web` was given to submit, oldest first (its log)."""
    log = [json.loads(x) for x in (root / "web.log").read_text().splitlines()]
    # an empty Enter (the typist's second press when a loaded screen was slow to show the
    # submit) is no delivery
    return [r["text"] for r in log if r["event"] == "submit" and r["text"]]


def test_a_task_ready_wakes_an_agent_nudged_a_moment_ago_and_mail_stays_paced(
    tmp_path, monkeypatch, engine_for
):
    from comm_node_tui.coordination.operator import message_to_agent
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol import receipts as rc
    from comm_node_tui.protocol.status import update_status
    from comm_node_tui.workspace.discovery import load_workspace

    socket = f"cn-test-{os.getpid()}-workwake"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    _workspace(root)

    def submits() -> list[str]:
        return _submits(root)

    try:
        ap = AgentPanes(load_workspace(str(root)))
        ap.up()
        wait_for(lambda: "❯" in ap.peek("web"), show=lambda: ap.peek("web"))
        eng = engine_for(root)
        assert eng.nudger.every_s == 30.0  # the default pacing, in force throughout
        web = eng.ws.domains["web"]
        receipts = rc.path_in(eng.ws.paths.state)

        def at_rest() -> bool:
            update_status(web.paths.status, "web", state="idle")
            eng.refresh_status("web")
            eng.screens.apply(eng.screens.read())
            return eng.panes["web"]["screen_state"] == "idle"  # what a nudge waits for

        def nudge_once() -> None:
            """One engine pass, as the timer runs it, and the typist's work done."""
            eng.nudger.tick()
            eng.actions.drain()

        wait_for(at_rest, show=lambda: ap.peek("web"))
        # 1. mail: nudged at once (never nudged before)
        message_to_agent(eng.coord, "web", "please look at the login page")
        eng.router.delivered_to.add("web")
        nudge_once()
        wait_for(lambda: submits() == ["You have 1 new message: run `comm-node inbox`"])
        wait_for(lambda: rc.receipts(receipts, "web")[-1]["state"] in rc.PROVED)
        wait_for(at_rest, show=lambda: ap.peek("web"))
        nudge_once()  # the engine learns the nudge's turn started

        # 2. T1 closes a moment later: T2 is ready for web, which is woken now, not in 30 s
        eng.coord.claim(eng.ws.domains["api"], "T1")
        eng.coord.done(eng.ws.domains["api"], "T1", [])
        eng.tasks.tick()
        nudge_once()
        woken = ["You have 2 new messages (task T2 is ready for you): run `comm-node inbox`"]
        wait_for(lambda: submits()[1:] == woken, show=submits)
        wait_for(lambda: rc.receipts(receipts, "web")[-1]["state"] in rc.PROVED)
        wait_for(at_rest, show=lambda: ap.peek("web"))
        nudge_once()
        assert len(submits()) == 2  # nothing new: once

        # 3. plain mail right after is still paced: no third nudge inside the 30 s
        message_to_agent(eng.coord, "web", "and the footer")
        eng.router.delivered_to.add("web")
        nudge_once()
        assert len(submits()) == 2
        events = [e.type for e in eng.recent]
        assert events.count("agent.turn_started") >= 1
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_work_is_not_typed_on_top_of_a_nudge_whose_turn_has_not_started(
    tmp_path, monkeypatch, engine_for
):
    """A nudge submitted but not yet proved (its hook has not fired): a task ready now
    waits, since typing again would start a second turn for the same mail."""
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol.status import update_status
    from comm_node_tui.workspace.discovery import load_workspace

    socket = f"cn-test-{os.getpid()}-workwait"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    _workspace(root)
    # no hooks: no nudge to web is ever proved
    toml = (root / "comm-node.toml").read_text().replace("--hooks ", "")
    (root / "comm-node.toml").write_text(toml)
    try:
        ap = AgentPanes(load_workspace(str(root)))
        ap.up()
        wait_for(lambda: "❯" in ap.peek("web"), show=lambda: ap.peek("web"))
        eng = engine_for(root)
        web = eng.ws.domains["web"]
        update_status(web.paths.status, "web", state="idle")
        eng.refresh_status("web")

        def at_rest() -> bool:
            eng.screens.apply(eng.screens.read())
            return eng.panes["web"]["screen_state"] == "idle"

        wait_for(at_rest, show=lambda: ap.peek("web"))
        subprocess.run(
            [sys.executable, "-m", "comm_node_tui", "send", "--to", "web", "hi"],
            cwd=root / "api",
            env=cli_env(),
            check=True,
            timeout=30,
        )
        eng.scan()
        eng.nudger.tick()
        eng.actions.drain()
        eng.coord.claim(eng.ws.domains["api"], "T1")
        eng.coord.done(eng.ws.domains["api"], "T1", [])
        eng.tasks.tick()
        wait_for(at_rest, show=lambda: ap.peek("web"))
        eng.nudger.tick()
        eng.actions.drain()

        def submits() -> list[str]:
            return _submits(root)

        once = ["You have 1 new message: run `comm-node inbox`"]
        wait_for(lambda: submits() == once, show=submits)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_the_nudge_names_work_with_only_safe_characters():
    assert safe_word("bd-a1b2") == "bd-a1b2"
    # ids and names come from Beads records and agents: nothing a pane or shell would act on
    assert safe_word("T1; rm -rf ~ `x` $(y)\nEnter") == "T1__rm_-rf____x____y__Enter"
    assert safe_word("x" * 100) == "x" * 40 and safe_word(None) == "?"
    work = [f"task T{i} is ready for you" for i in range(5)]
    assert nudge_text(5, work) == (
        "You have 5 new messages (task T0 is ready for you; task T1 is ready for you; "
        "task T2 is ready for you; 2 more): run `comm-node inbox`"
    )
    assert nudge_text(1, []) == "You have 1 new message: run `comm-node inbox`"


def test_one_delivery_counted_twice_wakes_the_agent_once(tmp_path, monkeypatch, engine_for):
    """The tasks monitor counts its task_ready message for the nudger, and the watcher then
    reports the same file in the inbox: one wake, not a second "You have 1 new message" once
    the agent is at rest again (bench/ready_to_turn.py: 100 turns started for 90 events)."""
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol import receipts as rc
    from comm_node_tui.protocol.status import update_status
    from comm_node_tui.workspace.discovery import load_workspace

    socket = f"cn-test-{os.getpid()}-workonce"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    _workspace(root)
    try:
        ap = AgentPanes(load_workspace(str(root)))
        ap.up()
        wait_for(lambda: "❯" in ap.peek("web"), show=lambda: ap.peek("web"))
        eng = engine_for(root)
        eng.nudger.every_s = 0.0  # no pacing: it must not be what keeps the second one out
        web = eng.ws.domains["web"]

        def at_rest() -> bool:
            update_status(web.paths.status, "web", state="idle")
            eng.refresh_status("web")
            eng.screens.apply(eng.screens.read())
            return eng.panes["web"]["screen_state"] == "idle"

        def submits() -> list[str]:
            return _submits(root)

        wait_for(at_rest, show=lambda: ap.peek("web"))
        eng.coord.claim(eng.ws.domains["api"], "T1")
        eng.coord.done(eng.ws.domains["api"], "T1", [])
        eng.tasks.tick()  # T2 ready: the message, counted for the nudger
        [ready] = [f for f in os.listdir(web.paths.inbox) if f.endswith(".md")]
        eng.nudger.tick()
        eng.actions.drain()
        woken = ["You have 1 new message (task T2 is ready for you): run `comm-node inbox`"]
        wait_for(lambda: submits() == woken, show=submits)
        # the watcher's report of that same file comes after the nudge
        eng.handle_changes({(1, os.path.join(web.paths.inbox, ready))})
        receipts = rc.path_in(eng.ws.paths.state)
        wait_for(lambda: rc.receipts(receipts, "web")[-1]["state"] in rc.PROVED)
        wait_for(at_rest, show=lambda: ap.peek("web"))
        eng.nudger.tick()
        eng.actions.drain()
        assert len(submits()) == 1
        # new mail after it is told again, with the count of everything unread
        subprocess.run(
            [sys.executable, "-m", "comm_node_tui", "send", "--to", "web", "hi"],
            cwd=root / "api",
            env=cli_env(),
            check=True,
            timeout=30,
        )
        eng.scan()
        wait_for(at_rest, show=lambda: ap.peek("web"))
        eng.nudger.tick()
        eng.actions.drain()
        again = ["You have 2 new messages: run `comm-node inbox`"]
        wait_for(lambda: submits()[1:] == again, show=submits)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_a_tasks_change_wakes_an_idle_agent_without_waiting_for_the_timer(tmp_path, monkeypatch):
    """The engine running as `comm-node serve` runs it, its timer set to an hour: an agent's
    `comm-node task done` writes the task overlay, the file watcher sees it, T2 becomes ready
    and the idle agent it is for is nudged, with no timer pass in between."""
    from comm_node_tui.engine.engine import Engine
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol.status import update_status
    from comm_node_tui.workspace.discovery import load_workspace
    from tests.conftest import run_cli
    from tests.running import running_engine

    socket = f"cn-test-{os.getpid()}-taskwake"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    _workspace(root)
    try:
        ap = AgentPanes(load_workspace(str(root)))
        ap.up()
        wait_for(lambda: "❯" in ap.peek("web"), show=lambda: ap.peek("web"))
        eng = Engine(load_workspace(str(root)))
        eng.tick_s = 3600.0  # the timer's first pass is an hour away
        timer_passes: list[float] = []
        timer_tick = eng.tick
        eng.tick = lambda: (timer_passes.append(1.0), timer_tick())[1]  # type: ignore[method-assign]
        web = eng.ws.domains["web"]

        def web_shown() -> dict:
            return next(a.to_json() for a in eng.snapshot().agents if a.name == "web")

        def submits() -> list[str]:
            return _submits(root)

        with running_engine(eng):
            update_status(web.paths.status, "web", state="idle")  # as its hook says at rest
            # at rest as the nudger sees it: the hooks' word (by the watcher) and the screen
            wait_for(
                lambda: (
                    web_shown()["state"] == "idle"
                    and (web_shown().get("pane") or {}).get("screen_state") == "idle"
                ),
                timeout=60,
                show=web_shown,
            )
            assert submits() == []
            passes = len(timer_passes)  # start()'s own pass, before any timer
            for args in (("task", "claim", "T1"), ("task", "done", "T1")):
                r = run_cli(*args, cwd=root / "api")
                assert r.returncode == 0, r.stderr
            woken = "You have 1 new message (task T2 is ready for you): run `comm-node inbox`"
            wait_for(lambda: woken in submits(), timeout=60, show=submits)
            assert len(timer_passes) == passes  # the watcher did it: the timer never ran
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_the_watcher_sees_the_task_files_and_not_the_engines_own_writing(tmp_path):
    """What wakes the nudger for tasks: the overlay any CLI writes and the native tasks file;
    the engine's own files beside the overlay (events.jsonl on every event) never make a
    batch, or each event would wake the engine to read what it just wrote."""
    from comm_node_tui.engine.watched import sort_changes, state_filter, watch_paths
    from comm_node_tui.workspace.discovery import load_workspace

    root = tmp_path / "ws"
    _workspace(root)
    # a second workspace whose domain is its root: its status.json sits beside the overlay
    (root / "comm-node.toml").write_text(
        (root / "comm-node.toml").read_text() + '[[domains]]\nname = "top"\npath = "."\n'
    )
    ws = load_workspace(str(root))
    os.makedirs(ws.paths.state, exist_ok=True)
    state = ws.paths.state
    assert state in watch_paths(ws)
    overlay = os.path.join(state, "tasks.json")
    assert sort_changes(ws, {(2, overlay)}).tasks
    assert sort_changes(ws, {(2, str(root / "tasks.toml"))}).tasks
    assert not sort_changes(ws, {(2, os.path.join(state, "events.jsonl"))}).tasks
    keep = state_filter(ws)
    assert keep(2, overlay) and not keep(2, os.path.join(state, "events.jsonl"))
    assert not keep(1, os.path.join(state, ".tasks.json.tmp"))  # the write's temporary name
    assert keep(2, ws.domains["top"].paths.status)  # a domain's own file there is kept
    assert keep(2, os.path.join(ws.domains["web"].paths.inbox, "m.md"))  # elsewhere: all
