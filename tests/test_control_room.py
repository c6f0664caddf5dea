"""The control room driven with the Pilot: keys pressed, then the engine, the files and the
tmux panes checked. A real workspace, real files, a real private tmux server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.coordination.pause import read_pause
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.panes.processes import kill_tree
from comm_node_tui.protocol.status import update_status
from comm_node_tui.tui.app import ControlRoom
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env
from tests.keys import press, screen_up
from tests.waiting import until, wait_for

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"


def records(root: Path, name: str) -> list[dict]:
    p = root / f"{name}.log"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def events(root: Path) -> list[dict]:
    return [json.loads(x) for x in (root / ".comm-node" / "events.jsonl").read_text().splitlines()]


def interrupted(root: Path) -> set[str]:
    return {e.get("agent") for e in events(root) if e["type"] == "agent.interrupted"}


@pytest.fixture
def room(tmp_path, monkeypatch):
    socket = f"cn-test-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    parts = [
        '[project]\nname = "room"\n[agents]\nbudget_tokens = 1000\n[tasks]\nsource = "native"\n'
    ]
    for name in ("alpha", "beta"):
        (root / name / "src").mkdir(parents=True)
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\nscope = ["src/**"]\n'
            f'command = "{AGENT} --log {root}/{name}.log"\n'
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "first"\n'
        '[[tasks]]\nid = "T2"\ntitle = "second"\n'
        'depends_on = ["T1"]\n'
    )
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    wait_for(
        lambda: all("❯" in ap.peek(n) for n in ("alpha", "beta")),
        what="both agents at their prompt",
        show=lambda: {n: ap.peek(n)[-300:] for n in ("alpha", "beta")},
    )
    yield root, ap
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


async def start(pilot) -> ControlRoom:
    """Until the engine runs (or the room is a viewer of one) and the rows are shown (the
    rows alone come first, from a look at the status files before the engine's start)."""
    app = pilot.app
    await until(
        pilot,
        lambda: (
            (app.bridge.engine is not None or app.bridge.viewer_of is not None)
            and app.query_one("#agents").row_count == 2
        ),
    )
    return app


async def test_inject_interrupt_restart_kill_from_the_keyboard(room):
    root, ap = room
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        await start(pilot)
        await press(pilot, "1", "i")
        await screen_up(pilot, "InjectScreen")
        app.screen.query_one("TextArea").text = "please review\nthe contract;"
        await press(pilot, "ctrl+s")
        await until(
            pilot,
            lambda: any(
                r.get("text") == "please review\nthe contract;" for r in records(root, "alpha")
            ),
        )
        inbox = list((root / "alpha" / ".comm-node" / "inbox").glob("*.md"))
        assert len(inbox) == 1 and "please review" in inbox[0].read_text()
        assert 'from: "operator"' in inbox[0].read_text()
        # interrupt
        app.query_one("#agents").focus()
        await press(pilot, "e")
        await until(
            pilot, lambda: "agent.interrupted" in (root / ".comm-node" / "events.jsonl").read_text()
        )
        # restart asks first: Escape keeps the process, y restarts it
        old = ap.tmux.panes()["alpha"].pid
        await press(pilot, "r")
        await screen_up(pilot, "ConfirmScreen")
        # Pilot.press for a key after which nothing may happen: it waits for the whole
        # process to go idle, so an action a wrong key started would have shown
        # (tests/keys.py press returns before an App binding has run)
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ != "ConfirmScreen")
        await press(pilot, "r")
        await screen_up(pilot, "ConfirmScreen")
        await press(pilot, "y")
        await until(pilot, lambda: ap.tmux.panes()["alpha"].pid != old)
        assert not [e for e in events(root) if e["type"] == "agent.restarted"][1:]
        # kill asks first; n keeps it, x then y kills
        await press(pilot, "x")
        await screen_up(pilot, "ConfirmScreen")
        await pilot.press("n")  # as escape above: nothing may follow
        await until(pilot, lambda: type(app.screen).__name__ != "ConfirmScreen")
        assert "alpha" in ap.tmux.panes()
        await press(pilot, "x")
        await screen_up(pilot, "ConfirmScreen")
        await press(pilot, "y")
        await until(pilot, lambda: "alpha" not in ap.tmux.panes())
    # one restart and one kill: Escape and n did neither, even late
    kinds = [e["type"] for e in events(root)]
    assert kinds.count("agent.restarted") == 1 and kinds.count("agent.killed") == 1, kinds
    log = (root / ".comm-node" / "events.jsonl").read_text()
    for t in (
        "operator.message",
        "agent.injected",
        "agent.interrupted",
        "agent.restarted",
        "agent.killed",
    ):
        assert t in log, t


async def test_pause_budget_task_lock_and_artifact(room):
    root, _ap = room
    ws = load_workspace(str(root))
    Coordinator(ws).acquire(ws.domains["beta"], ["src/**"], reason="refactor")
    (root / "alpha" / "src" / "api.yaml").write_text("openapi: 3.1.0\n")
    app = ControlRoom(ws)
    async with app.run_test(size=(160, 48)) as pilot:
        await start(pilot)
        await press(pilot, "1")
        # pause asks which (alpha, the selected agent, first), then asks again for all;
        # Escape at either step leaves everything running
        await press(pilot, "p")
        await screen_up(pilot, "PickScreen")
        await press(pilot, "escape")
        await until(pilot, lambda: type(app.screen).__name__ != "PickScreen")
        await press(pilot, "p")
        await screen_up(pilot, "PickScreen")
        await press(pilot, "down", "enter")
        await screen_up(pilot, "ConfirmScreen")
        await press(pilot, "escape")
        await until(pilot, lambda: type(app.screen).__name__ not in ("ConfirmScreen",))
        assert not (root / ".comm-node" / "guarded" / "paused.json").exists()
        await press(pilot, "p")
        await screen_up(pilot, "PickScreen")
        await press(pilot, "down", "enter")
        await screen_up(pilot, "ConfirmScreen")
        await press(pilot, "y")
        await until(pilot, lambda: (root / ".comm-node" / "guarded" / "paused.json").exists())
        await until(pilot, lambda: {"alpha", "beta"} <= interrupted(root))
        res = subprocess.run(
            [sys.executable, "-m", "comm_node_tui", "task", "claim", "T1", "-d", "alpha"],
            cwd=root,
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=30,
        )
        assert res.returncode == 3 and "paused" in res.stderr
        await until(pilot, lambda: "PAUSED" in app.sub_title)
        await press(pilot, "p")  # all paused: the one choice is the resume
        await screen_up(pilot, "PickScreen")
        await press(pilot, "enter")
        await until(pilot, lambda: not (root / ".comm-node" / "guarded" / "paused.json").exists())
        # the selected agent alone: its row says so, and the header names it
        await press(pilot, "p")
        await screen_up(pilot, "PickScreen")
        await press(pilot, "enter")
        await until(pilot, lambda: "PAUSED: alpha" in app.sub_title)
        assert read_pause(str(root / ".comm-node")).domains == ("alpha",)
        await until(pilot, lambda: "paused" in str(app.query_one("#agents").get_row("alpha")[1]))
        assert "paused" not in str(app.query_one("#agents").get_row("beta")[1])
        await press(pilot, "p")  # alpha selected and paused: its resume comes first
        await screen_up(pilot, "PickScreen")
        await press(pilot, "enter")
        await until(pilot, lambda: not (root / ".comm-node" / "guarded" / "paused.json").exists())
        await until(pilot, lambda: "PAUSED" not in app.sub_title)
        # grant budget to the selected agent (alpha)
        await pilot.press("b")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        await pilot.press(*"5000", "enter")
        grants = root / ".comm-node" / "guarded" / "budget-grants.json"
        await until(pilot, grants.exists)
        g = json.loads(grants.read_text())["grants"][0]
        assert (g["domain"], g["tokens"], g["by"]) == ("alpha", 5000, "operator")
        # assign the ready task T1 to alpha
        await press(pilot, "t")
        await screen_up(pilot, "PickScreen")
        await press(pilot, "enter")
        await until(pilot, lambda: (root / ".comm-node" / "tasks.json").exists())
        over = json.loads((root / ".comm-node" / "tasks.json").read_text())["tasks"]["T1"]
        assert over["assignee"] == "alpha" and over["assigned_by"] == "operator"
        # release beta's lock from the locks panel
        await press(pilot, "3")
        await until(pilot, lambda: app.query_one("#locks").row_count == 1)
        await press(pilot, "l")
        await until(pilot, lambda: Coordinator(ws).locks() == [])
        # publish an artifact for alpha
        await press(pilot, "1", "a")
        await screen_up(pilot, "PromptScreen")
        for ch in "src/api.yaml":
            await press(pilot, ch)
        await press(pilot, "enter")
        await until(
            pilot, lambda: (root / "alpha" / ".comm-node" / "artifacts" / "api.yaml").exists()
        )


async def test_filter_open_message_help_and_palette(room):
    root, _ap = room
    subprocess.run(
        [
            sys.executable,
            "-m",
            "comm_node_tui",
            "send",
            "--to",
            "beta",
            "the full text of a message",
        ],
        cwd=root / "alpha",
        env=cli_env(),
        check=True,
        timeout=30,
    )
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        await start(pilot)
        events = app.query_one("#events")
        await until(pilot, lambda: any(e.type == "message.routed" for e in events.events))
        await press(pilot, "slash")
        for ch in "routed":
            await press(pilot, ch)
        await until(pilot, lambda: events.table.row_count == 1)
        await press(pilot, "escape")
        await press(pilot, "o")
        await screen_up(pilot, "MessageScreen")
        assert "the full text of a message" in app.screen.text
        await press(pilot, "escape")
        await press(pilot, "question_mark")
        await screen_up(pilot, "HelpScreen")
        await press(pilot, "escape")
        # every action of the table is in the palette, the help and the bindings
        from comm_node_tui.tui.actions import ACTIONS

        ids = {b.id for b in app.BINDINGS}
        assert {a.id for a in ACTIONS} <= ids
        assert all(b.tooltip and b.description for b in app.BINDINGS)


async def test_alerts_for_a_gone_then_lost_agent_and_a_busy_one_is_not_lost(room):
    root, ap = room
    text = (
        (root / "comm-node.toml")
        .read_text()
        .replace(
            "budget_tokens = 1000\n",
            "budget_tokens = 1000\nheartbeat_stale_s = 0.2\nheartbeat_lost_s = 0.4\n",
        )
    )
    (root / "comm-node.toml").write_text(text)
    ws = load_workspace(str(root))
    for name in ("alpha", "beta"):
        update_status(ws.domains[name].paths.status, name, state="busy")
    app = ControlRoom(ws)
    async with app.run_test(size=(160, 48)) as pilot:
        await start(pilot)
        # beta's process goes away: dead at once, lost after heartbeat_lost_s
        kill_tree(ap.tmux.panes()["beta"].pid)
        await until(pilot, lambda: "beta" in app.query_one("#agents").alerts, timeout=20)
        await until(
            pilot, lambda: any("lost" in str(n.message) for n in app._notifications), timeout=20
        )
        # alpha says busy and nothing more, for longer than both thresholds: its process
        # is alive, so it is never lost (Claude Code is silent while it works)
        alpha = [(e.type, e.msg) for e in app.bridge.engine.recent if e.agent == "alpha"]
        assert "alpha" not in app.query_one("#agents").alerts, alpha
        # seen: selecting the row clears the mark
        await press(pilot, "1", "down")
        await until(pilot, lambda: "beta" not in app.query_one("#agents").alerts)


async def test_viewer_when_serve_holds_the_workspace(room):
    root, _ap = room
    proc = subprocess.Popen(
        [sys.executable, "-m", "comm_node_tui", "serve", "-q", "-w", str(root)],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        events = root / ".comm-node" / "events.jsonl"
        wait_for(lambda: events.exists() and "engine.started" in events.read_text())
        app = ControlRoom(load_workspace(str(root)))
        async with app.run_test(size=(160, 48)) as pilot:
            await start(pilot)
            await until(pilot, lambda: f"viewer of pid {proc.pid}" in app.sub_title)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "comm_node_tui",
                    "send",
                    "--to",
                    "beta",
                    "seen by the viewer",
                ],
                cwd=root / "alpha",
                env=cli_env(),
                check=True,
                timeout=30,
            )
            panel = app.query_one("#events")
            await until(pilot, lambda: any(e.type == "message.routed" for e in panel.events))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_hostile_agent_text_is_shown_as_text(room):
    root, _ap = room
    ws = load_workspace(str(root))
    hostile = "[bold red]x[/] \x1b[31mred\x1b[0m " + "界🚀" * 20 + "y" * 5000
    update_status(
        ws.domains["alpha"].paths.status,
        "alpha",
        state="busy",
        task="[b]T2[/]",
        progress=hostile,
    )
    app = ControlRoom(ws)
    async with app.run_test(size=(160, 48)) as pilot:
        await start(pilot)
        table = app.query_one("#agents")
        await until(pilot, lambda: "[bold red]" in str(table.get_cell("alpha", "Progress")))
        cell = table.get_cell("alpha", "Progress")
        assert "\x1b" not in str(cell) and len(str(cell)) <= 40
        assert str(table.get_cell("alpha", "Task")) == "[b]T2[/]"


async def test_keymap_rebinds_and_git_column(room):
    root, _ap = room
    import git

    repo = git.Repo.init(root / "alpha")
    (root / "alpha" / "README.md").write_text("x\n")
    repo.index.add(["README.md"])
    repo.index.commit("first")
    (root / "alpha" / "dirty.txt").write_text("y\n")
    toml = root / "comm-node.toml"
    toml.write_text(toml.read_text() + '\n[keymap]\ninterrupt = "z"\n')
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        await start(pilot)
        table = app.query_one("#agents")
        branch = repo.active_branch.name
        # (held by the row; a table this wide gives Git's width to the progress line)
        await until(pilot, lambda: str(table.cell("alpha", "Git")) == f"{branch}*")
        await press(pilot, "1", "z")
        await until(
            pilot, lambda: "agent.interrupted" in (root / ".comm-node" / "events.jsonl").read_text()
        )


def test_enter_attaches_and_the_room_comes_back_after_detach(room):
    """The room in a real terminal (a pane of a second tmux server): Enter suspends it and
    attaches to the agent's pane; detaching brings the room back."""
    root, _ap = room
    socket = os.environ["COMM_NODE_TMUX_SOCKET"]
    outer = socket + "-outer"

    def outer_screen() -> str:
        return subprocess.run(
            ["tmux", "-L", outer, "capture-pane", "-p", "-t", "term"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout

    cmd = (
        f"cd {root} && env -u TMUX COMM_NODE_TMUX_SOCKET={socket} {sys.executable} -m comm_node_tui"
    )
    subprocess.run(
        ["tmux", "-L", outer, "new-session", "-d", "-s", "term", "-x", "160", "-y", "48", cmd],
        check=True,
        timeout=10,
    )
    try:
        # the agents' rows are there (Enter attaches the selected one; before its rows
        # exist the room only says "select an agent first")
        wait_for(
            lambda: all(w in outer_screen() for w in ("1 Agents", "alpha", "beta")),
            every=0.1,
            show=outer_screen,
        )

        def clients() -> str:
            """Terminal clients only: the engine's own control-mode client is attached too."""
            out = subprocess.run(
                [
                    "tmux",
                    "-L",
                    socket,
                    "list-clients",
                    "-F",
                    "#{client_control_mode} #{client_session}:#{window_name}",
                ],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
            return "\n".join(x[2:] for x in out.splitlines() if x.startswith("0 "))

        pressed = [0.0]

        def attached() -> bool:
            if clients() == "cn-room:alpha":
                return True
            if time.monotonic() - pressed[0] > 5:  # a busy machine may drop the first one
                subprocess.run(
                    ["tmux", "-L", outer, "send-keys", "-t", "term", "Enter"], timeout=10
                )
                pressed[0] = time.monotonic()
            return False

        wait_for(attached, every=0.1, show=lambda: (clients(), outer_screen()))
        # detach the inner client (its prefix, then d); the room must come back
        subprocess.run(["tmux", "-L", outer, "send-keys", "-t", "term", "C-b", "d"], timeout=10)
        wait_for(
            lambda: not clients() and "1 Agents" in outer_screen(), every=0.1, show=outer_screen
        )
    finally:
        subprocess.run(["tmux", "-L", outer, "kill-server"], capture_output=True, timeout=10)


async def test_a_domain_removed_from_the_config_leaves_the_panels(room):
    root, _ap = room
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        await start(pilot)
        agents, burn = app.query_one("#agents"), app.query_one("BurnPanel")
        await until(pilot, lambda: set(burn.rows) == {"alpha", "beta"})
        agents.alerts.add("beta")
        config = root / "comm-node.toml"
        text = config.read_text()
        beta = text.index("[[domains]]", text.index('name = "alpha"'))
        config.write_text(text[:beta])
        await until(pilot, lambda: agents.row_count == 1, timeout=20)
        await until(pilot, lambda: set(burn.rows) == {"alpha"})
        assert [r.value for r in agents.rows] == ["alpha"] and "beta" not in agents.alerts
        await until(pilot, lambda: burn.virtual_size.height == 1)  # one line drawn, not two


def test_operator_actions_answer_in_one_line(room):
    """The service the room calls, on its own: a one-line result, or one line of error."""
    from comm_node_tui.errors import CommNodeError
    from comm_node_tui.operator.actions import OperatorActions, answers_in_one_line

    root, _ap = room
    ws = load_workspace(str(root))
    coord = Coordinator(ws)
    ops = OperatorActions(ws, lambda: coord)
    done = ops.inject("alpha", "one\ntwo")
    assert done.startswith("typed (") and "delivered as m-" in done and "\n" not in done
    wait_for(lambda: any(r.get("text") == "one\ntwo" for r in records(root, "alpha")))
    assert ops.interrupt("beta") == "Escape sent"
    with pytest.raises(CommNodeError, match=r"^alpha is not waiting for a permission answer"):
        ops.approve("alpha")
    with pytest.raises(CommNodeError, match="holds no lock"):
        ops.release_lock("beta", "src/**")
    with pytest.raises(CommNodeError, match="no such file"):
        ops.publish_artifact("alpha", "src/missing.yaml")
    assert ops.grant_budget("alpha", 5000) == "+5,000 tokens"
    assert ops.assign_task("T1", "alpha") == "assigned"
    assert ops.assign_task("T1", "beta") == "assigned (taken from alpha)"
    assert ops.pause() == "paused every agent; interrupted alpha, beta"
    assert ops.pause_state().all
    with pytest.raises(CommNodeError, match=r"^alpha is paused: nothing is typed into it"):
        ops.inject("alpha", "not now")
    assert ops.resume() == "resumed every agent"
    assert ops.pause(["beta"]) == "paused beta; interrupted beta"
    assert ops.resume(["beta"]) == "resumed beta" and not ops.pause_state().any

    @answers_in_one_line
    def broken() -> str:
        raise ValueError("first line\nsecond line")

    with pytest.raises(CommNodeError) as caught:
        broken()
    assert str(caught.value) == "first line…"
    ops.failed("approve alpha", caught.value)
    log = (root / ".comm-node" / "events.jsonl").read_text()
    assert '"operator.failed"' in log and "approve alpha: first line" in log


async def test_a_failed_action_is_a_notice_and_an_event(room):
    root, _ap = room
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        await start(pilot)
        await press(pilot, "1", "y")  # alpha sits at its prompt: nothing to approve
        events = root / ".comm-node" / "events.jsonl"
        await until(pilot, lambda: '"operator.failed"' in events.read_text())
        notice = next(n for n in app._notifications if "approve alpha" in str(n.message))
        assert notice.severity == "error" and "not waiting" in str(notice.message)
        failed = [json.loads(x) for x in events.read_text().splitlines() if "operator.failed" in x]
        assert failed[0]["data"]["action"] == "approve alpha"
        assert app.is_running
