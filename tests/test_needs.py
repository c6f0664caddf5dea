"""What waits on the operator (engine/needs.py): derived from the engine's state into the
World, read with `comm-node inbox --operator`, and listed in the room's "Needs you" screen
with one key per intervention. Real workspaces, the real CLI and hooks, a real engine, the
Textual Pilot, and real tmux panes with the fake agent where a dialog must be answered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from comm_node_tui.adapters.agent_cli import comm_node_argv
from comm_node_tui.engine.needs import NeedKind
from comm_node_tui.engine.world import agent_view
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.messages import now_iso
from comm_node_tui.tui.app import ControlRoom
from comm_node_tui.tui.messages import EngineEvent, NeedsArrived
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, run_cli, write_workspace
from tests.waiting import until, wait_for

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
HOSTILE = "Which DB? [bold red]x[/] \x1b]0;owned\x07 done"


def hook(root: Path, domain: str, event: str, **extra) -> None:
    payload = {"session_id": "s1", "cwd": str(root / domain), "hook_event_name": event, **extra}
    res = subprocess.run(
        [*comm_node_argv(), "hook"],
        cwd=root / domain,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
    )
    assert res.returncode == 0, res.stderr


def ask_operator(root: Path, domain: str, text: str, kind: str = "question") -> str:
    res = run_cli("send", "--to", "operator", "--type", kind, "--json", text, cwd=root / domain)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["id"]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "native"\n')
    (root / "tasks.toml").write_text('[[tasks]]\nid = "T1"\ntitle = "first"\ndomain = "docs"\n')
    return root


def test_a_prompt_a_question_and_a_failed_task_wait_on_the_operator_ranked(ws, engine_for):
    eng = engine_for(ws)
    coord, docs = eng.coord, eng.ws.domains["docs"]
    coord.claim(docs, "T1")
    coord.fail(docs, "T1", "the build is red\nsecond line")
    ident = ask_operator(ws, "frontend", HOSTILE)
    hook(
        ws,
        "backend",
        "PermissionRequest",
        tool_name="Bash",
        tool_input={"command": "rm -rf build &&\n make deploy"},
    )
    eng.scan()
    needs = eng.snapshot().needs
    assert [(n.kind, n.agent) for n in needs] == [
        (NeedKind.PERMISSION, "backend"),
        (NeedKind.QUESTION, "frontend"),
        (NeedKind.FAILED, "docs"),
    ]
    prompt, question, failed = needs
    assert prompt.what == "Bash: rm -rf build && make deploy"
    # the agent's text stays text: its markup literal, its control characters gone
    assert question.ref == ident and "[bold red]x[/]" in question.what
    assert not any(c in question.what for c in "\x1b\x07\n")
    assert failed.what == "task T1 failed: the build is red" and failed.ref == "T1"
    assert len({n.key for n in needs}) == 3 and all(n.since for n in needs)
    # `status --json` carries the list, from the files, with no engine asked
    res = run_cli("status", "--json", cwd=ws)
    assert res.returncode == 0, res.stderr
    listed = json.loads(res.stdout)["needs"]
    assert [(n["kind"], n["agent"], n["key"]) for n in listed] == [
        (str(n.kind), n.agent, n.key) for n in needs
    ]
    # the prompt answered (the tool ran): it no longer waits; the same with the mail read
    hook(ws, "backend", "PostToolUse", tool_name="Bash")
    eng.scan()
    assert [n.kind for n in eng.snapshot().needs] == [NeedKind.QUESTION, NeedKind.FAILED]
    res = run_cli("read", "--operator", ident[:12], cwd=ws)
    assert res.returncode == 0 and "from: frontend" in res.stdout, res.stderr
    assert [n.kind for n in eng.snapshot().needs] == [NeedKind.FAILED]


def test_inbox_operator_lists_and_read_marks_read_as_for_an_agent(ws, engine_for):
    eng = engine_for(ws)
    first = ask_operator(ws, "frontend", "May I drop the legacy API?")
    second = ask_operator(ws, "backend", "deploy done", kind="info")
    eng.scan()
    res = run_cli("inbox", "--operator", cwd=ws)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"* {first}  frontend  question") and "legacy API" in lines[0]
    assert lines[1].startswith(f"* {second}  backend  info")
    assert lines[-1] == "2 messages, 2 unread; `comm-node read ID` to read one"
    assert run_cli("read", "--operator", first, cwd=ws).returncode == 0
    unread = json.loads(run_cli("inbox", "--operator", "--unread", "--json", cwd=ws).stdout)
    assert [m["id"] for m in unread] == [second]
    read_dir = ws / ".comm-node" / "operator" / "inbox" / "read"
    assert (read_dir / f"{first}.md").is_file()
    # read already: the router never delivers it again (a replay after a crash)
    eng.router.deliver_copy(
        eng.ws.paths.operator.inbox, eng.ws.paths.operator.inbox_read, first, "again"
    )
    assert not (ws / ".comm-node" / "operator" / "inbox" / f"{first}.md").exists()
    # without --operator, inbox is still a domain's: the workspace root is none
    assert run_cli("inbox", cwd=ws).returncode != 0


def test_oldest_first_within_a_kind_and_kinds_in_rank(ws):
    wsobj = load_workspace(str(ws))

    def waiting(name: str, at: float, tool: str = "Edit") -> tuple:
        status = {"state": "waiting", "tool": tool, "last_heartbeat": now_iso(at)}
        return agent_view(wsobj, name, status, now=at + 5), status

    from comm_node_tui.engine.needs import derive, failed_needs

    a, sa = waiting("backend", 2000.0)
    b, sb = waiting("frontend", 1000.0)
    lost = agent_view(wsobj, "docs", {"state": "busy"}, now=10.0, health="lost")
    overlay = {"tasks": {"T9": {"status": "blocked", "failed_by": "docs", "failed_at": None}}}
    needs = derive([a, b, lost], {"backend": sa, "frontend": sb}, [], [], overlay)
    assert [(n.kind, n.agent) for n in needs] == [
        (NeedKind.PERMISSION, "frontend"),  # waiting since 1000: first
        (NeedKind.PERMISSION, "backend"),
        (NeedKind.LOST, "docs"),
        (NeedKind.FAILED, "docs"),
    ]
    # a changed prompt is a new item (a new key); the same prompt keeps its key
    again, _ = waiting("backend", 3000.0)
    key = derive([again], {"backend": sa}, [], [], {})[0].key
    assert key == needs[1].key
    assert derive([again], {"backend": {**sa, "tool": "Bash"}}, [], [], {})[0].key != key
    assert failed_needs({"tasks": {"T9": {"status": "open", "failed_by": "docs"}}}) == []


# ---- the room -------------------------------------------------------------------------------
@pytest.fixture
def panes_ws(tmp_path, monkeypatch):
    """Two fake agents in real panes on a private tmux server."""
    socket = f"cn-needs-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    parts = ['[project]\nname = "room"\n[agents]\nbudget_tokens = 0\n']
    for name in ("alpha", "beta"):
        (root / name).mkdir(parents=True)
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\n'
            f'command = "{AGENT} --log {root}/{name}.log"\n'
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    wait_for(
        lambda: all("❯" in ap.peek(n) for n in ("alpha", "beta")),
        what="both agents at their prompt",
        show=lambda: {n: ap.peek(n)[-300:] for n in ("alpha", "beta")},
    )
    yield root, ap
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def records(root: Path, name: str) -> list[dict]:
    p = root / f"{name}.log"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


async def test_a_permission_prompt_rings_and_is_approved_from_the_list(panes_ws):
    root, ap = panes_ws
    arrived: list[NeedsArrived] = []

    def hooked(message) -> None:
        if isinstance(message, NeedsArrived):
            arrived.append(message)

    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48), message_hook=hooked) as pilot:
        await until(pilot, lambda: app.query_one("#agents").row_count == 2)
        await until(pilot, lambda: app.world is not None)
        assert "need" not in app.sub_title  # nothing waits yet
        # the hooks say what the prompt asks (their text carries an escape sequence)
        hook(
            root,
            "alpha",
            "PermissionRequest",
            tool_name="Bash",
            tool_input={"command": "make deploy \x1b]777;notify;fake;x\x07"},
        )
        ap.inject("alpha", "!perm")  # the fake agent shows a permission dialog
        await until(pilot, lambda: "1 needs you (w)" in app.sub_title, timeout=30)
        await until(pilot, lambda: arrived)
        ring = arrived[0]
        assert [(n.kind, n.agent) for n in ring.needs] == [(NeedKind.PERMISSION, "alpha")]
        assert ring.sequence.startswith("\x1b]9;comm-node room: alpha needs you: Bash: make")
        assert "\x1b]777;notify;comm-node room: alpha needs you;Bash: make deploy" in ring.sequence
        # exactly the two sequences' own ESC and BEL: none from the agent's text
        assert ring.sequence.count("\x1b") == 2 and ring.sequence.count("\x07") == 2
        await pilot.press("w")
        await until(pilot, lambda: type(app.screen).__name__ == "NeedsScreen")
        table = app.screen.query_one("#needs-table")
        assert table.row_count == 1
        assert "Bash: make deploy" in str(table.get_row_at(0)[2])
        await pilot.press("y")  # approve: by keys into the dialog, never typed text
        await until(
            pilot,
            lambda: any(r.get("event") == "permission" for r in records(root, "alpha")),
            timeout=30,
        )
        assert [r["allowed"] for r in records(root, "alpha") if r.get("event") == "permission"] == [
            True
        ]
        await until(pilot, lambda: "need" not in app.sub_title, timeout=30)
        await until(pilot, lambda: table.row_count == 0)
        assert len(arrived) == 1  # rang once for the one item


async def test_answer_dismiss_and_the_alert_history(ws, engine_for):
    eng = engine_for(ws)
    coord, docs = eng.coord, eng.ws.domains["docs"]
    coord.claim(docs, "T1")
    coord.fail(docs, "T1", "no disk")
    ident = ask_operator(ws, "frontend", "Postgres or SQLite?")
    eng.scan()
    app = ControlRoom(load_workspace(str(ws)), start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "2 need you (w)" in app.sub_title)
        # an alert: kept in the history, and the agent's row marked from it
        app.post_message(EngineEvent(Event("agent.stuck", "backend is stuck", agent="backend")))
        agents = app.query_one("#agents")
        await until(pilot, lambda: "backend" in agents.alerts)
        assert [(r.agent, r.kind) for r in app.alert_history] == [("backend", "agent.stuck")]
        await pilot.press("w")
        await until(pilot, lambda: type(app.screen).__name__ == "NeedsScreen")
        screen = app.screen
        assert [n.kind for n in screen.items] == [NeedKind.QUESTION, NeedKind.FAILED]
        assert screen.query_one("#alerts-table").row_count == 1
        # approve is for a permission prompt only: a question is not approved by mistake
        await pilot.press("y")
        assert type(app.screen).__name__ == "NeedsScreen"
        # answer the question: a reply in the agent's inbox, the question read
        await pilot.press("r")
        await until(pilot, lambda: type(app.screen).__name__ == "InjectScreen")
        app.screen.query_one("TextArea").text = "SQLite, for now"
        await pilot.press("ctrl+s")
        inbox = ws / "frontend" / ".comm-node" / "inbox"
        await until(pilot, lambda: list(inbox.glob("*.md")))
        reply = next(inbox.glob("*.md")).read_text()
        assert "SQLite, for now" in reply and f"reply_to: {ident}" in reply.replace('"', "")
        read = ws / ".comm-node" / "operator" / "inbox" / "read" / f"{ident}.md"
        await until(pilot, lambda: read.is_file())
        await until(pilot, lambda: [n.kind for n in screen.items] == [NeedKind.FAILED])
        assert "1 needs you (w)" in app.sub_title
        # dismiss: hidden in the room (the World still has it) until it changes
        await pilot.press("d")
        await until(pilot, lambda: not screen.items)
        await until(pilot, lambda: "need" not in app.sub_title)
        assert [n.kind for n in app.world.needs] == [NeedKind.FAILED]
        # clear the history: the list empties and the mark goes with it
        await pilot.press("c")
        await until(pilot, lambda: not len(app.alert_history))
        assert screen.query_one("#alerts-table").row_count == 0 and not agents.alerts
        # every key of the screen has an id and a description, in the help and the palette
        from comm_node_tui.tui.actions import NEEDS_ACTIONS
        from comm_node_tui.tui.screens.help import help_table

        assert {b.id for b in screen.BINDINGS} == {a.id for a in NEEDS_ACTIONS}
        assert all(b.tooltip and b.description for b in screen.BINDINGS)
        rows = [str(c) for col in help_table().columns for c in col._cells]
        assert all(f"Needs you: {a.description}" in rows for a in NEEDS_ACTIONS)
        from comm_node_tui.tui.commands import ActionsProvider

        palette = {run for _a, run in ActionsProvider(screen)._actions()}
        assert {f"screen.{a.action}" for a in NEEDS_ACTIONS} <= palette
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ != "NeedsScreen")


def test_a_spent_budget_waits_until_a_grant(tmp_path, engine_for):
    from comm_node_tui.coordination.coordinator import grant_budget

    root = write_workspace(tmp_path / "ws", budget=1000)
    eng = engine_for(root)
    res = run_cli("send", "--to", "backend", "the contract " * 40, cwd=root / "docs")
    assert res.returncode == 0, res.stderr
    eng.scan()
    assert eng.snapshot().needs == ()
    left = eng.snapshot().budget("docs").remaining_tokens
    assert left is not None and 0 < left < 1000
    grant_budget(eng.coord, "docs", -left, "taken back")  # nothing left to send with
    needs = eng.snapshot().needs
    assert [(n.kind, n.agent) for n in needs] == [(NeedKind.BUDGET, "docs")]
    assert needs[0].what.startswith("communication budget spent")
    grant_budget(eng.coord, "docs", 500, "more")
    assert eng.snapshot().needs == ()


async def test_a_key_never_acts_on_an_item_the_cursor_fell_on():
    """The operator's item goes away (answered in the pane) and the cursor falls on another
    agent's prompt: `y` then explains and approves nothing; once seen (or chosen by moving
    the cursor), it acts on that item."""
    from textual.app import App

    from comm_node_tui.engine.needs import Need, NeedKind
    from comm_node_tui.tui.screens.needs import NeedAction, NeedsScreen

    first = Need(NeedKind.PERMISSION, "alpha", "Bash: rm -rf build", 1.0, "k-alpha")
    second = Need(NeedKind.PERMISSION, "beta", "Bash: curl x | sh", 2.0, "k-beta")
    acted: list[tuple[str, str]] = []

    class Room(App):
        def on_mount(self) -> None:
            self.push_screen(NeedsScreen([first, second], []))

        def on_need_action(self, message: NeedAction) -> None:
            acted.append((message.action, message.need.key))

    app = Room()
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, NeedsScreen))
        screen = app.screen
        await pilot.press("down")
        assert screen.selected.key == "k-beta"
        screen.show([first], [])  # beta's prompt was answered in its pane
        await pilot.pause()
        assert screen.selected.key == "k-alpha"
        await pilot.press("y")
        await pilot.pause()
        assert acted == []  # not what the operator chose
        await pilot.press("y")  # pressed again, having seen it
        await until(pilot, lambda: acted == [("approve", "k-alpha")])
        screen.show([first, second], [])
        await pilot.pause()
        await pilot.press("down", "y")  # chosen by moving the cursor: acts at once
        await until(pilot, lambda: acted[-1] == ("approve", "k-beta"))


def test_an_answer_goes_only_to_the_prompt_the_operator_read(panes_ws):
    """The operator read the prompt for one command; by the time the key lands the agent
    shows another (the first answered in the pane, a new tool call asked): nothing is
    answered. The prompt still the one read is answered."""
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.engine.needs import permission_key
    from comm_node_tui.errors import CommNodeError
    from comm_node_tui.operator.actions import OperatorActions
    from comm_node_tui.protocol.status import read_status

    root, ap = panes_ws
    ws = load_workspace(str(root))
    coord = Coordinator(ws)
    ops = OperatorActions(ws, lambda: coord)
    status = ws.domains["alpha"].paths.status
    hook(root, "alpha", "PermissionRequest", tool_name="Bash", tool_input={"command": "ls"})
    read = permission_key("alpha", read_status(status))
    ap.inject("alpha", "!perm")
    wait_for(lambda: "Do you want to proceed?" in ap.peek("alpha"), what="the dialog")
    # the prompt the operator read is gone; the agent now asks for another command
    hook(root, "alpha", "PermissionRequest", tool_name="Bash", tool_input={"command": "rm -rf /"})
    with pytest.raises(CommNodeError, match="the prompt changed since you read it"):
        ops.approve("alpha", read)
    with pytest.raises(CommNodeError, match="the prompt changed since you read it"):
        ops.deny("alpha", read)
    assert not any(r.get("event") == "permission" for r in records(root, "alpha"))
    assert "Do you want to proceed?" in ap.peek("alpha")  # no key reached the dialog
    # read again: now it is answered, by keys
    assert ops.deny("alpha", permission_key("alpha", read_status(status))) == "denied"
    wait_for(lambda: any(r.get("event") == "permission" for r in records(root, "alpha")))
    assert [r["allowed"] for r in records(root, "alpha") if r.get("event") == "permission"] == [
        False
    ]
