"""Another machine's agents for every reader on this one (issue 20): a viewer room and
`comm-node status` show them with their state (the engine's copy in cluster-agents.json),
`comm-node peek` and the preview read their pane through the owner's engine, the nudger types
only into this machine's agents, and [notify] rings for the agents this engine owns.

Real parts: the NATS server from PyPI on 127.0.0.1, `comm-node serve` per "machine" (two
workspaces), real tmux panes, the real CLI."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

from comm_node_tui.cluster.view import VIEW_FILE
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.engine.world import snapshot
from comm_node_tui.errors import CommNodeError
from comm_node_tui.operator.actions import OperatorActions
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import queue, run_cli, write_workspace
from tests.natskit import Engines, events, running_server
from tests.waiting import wait_for

STEP_S = 60.0  # a real engine's step under load: generous, never paid when things work
AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"


@pytest.fixture
def nats_server(tmp_path):
    yield from running_server(tmp_path / "nats")


def machine(root: Path, url: str, node: str, local: str, extra: str = "", **kwargs) -> Path:
    """One machine of two: both domains' folders, `local` run here, its own tmux session
    (the tests share one private tmux server: a name of its own per test)."""
    session = f"cn-{node}-{uuid.uuid4().hex[:8]}"
    cluster = (
        f'[cluster]\nnats = "{url}"\nnode = "{node}"\nlocal = ["{local}"]\ntimeout_s = 5\n\n'
        f'[tmux]\nsession = "{session}"\n{extra}'
    )
    return write_workspace(root, domains=("a", "b"), extra=cluster, **kwargs)


def one_line_error(res) -> str:
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
    return res.stderr


def test_a_viewer_and_status_on_m1_show_m2s_agent_and_peek_reads_its_pane(tmp_path, nats_server):
    from comm_node_tui.tui.bridge import EngineBridge

    word = f"pane-word-{uuid.uuid4().hex[:10]}"  # only in b's pane on m2
    roots = {
        "m1": machine(tmp_path / "m1", nats_server.url, "m1", "a"),
        "m2": machine(
            tmp_path / "m2",
            nats_server.url,
            "m2",
            "b",
            domain_extra={"b": f"command = \"sh -c 'echo {word}; exec sleep 3600'\""},
        ),
    }
    eng = Engines(roots)
    bridge = None
    try:
        for node in roots:
            eng.start(node)  # both held by `comm-node serve`: every reader here is a viewer
        up = run_cli("up", "b", cwd=roots["m2"], timeout=STEP_S)
        assert up.returncode == 0, up.stderr
        res = run_cli(
            "status", "set", "busy", "--task", "T9", "--progress", "remote [b]progress[/b]",
            cwd=roots["m2"] / "b",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr

        # a viewer room of m1's workspace: b as m2's engine publishes it, marked m2
        ws1 = load_workspace(str(roots["m1"]))
        bridge = EngineBridge(ws1, on_event=lambda _ev: None)
        bridge.start()
        assert bridge.engine is None and bridge.viewer_of  # m1's `serve` holds it

        def b_in_viewer():
            row = bridge.snapshot().agent("b")
            return row if row is not None and row.node == "m2" and row.task == "T9" else None

        row = wait_for(b_in_viewer, timeout=STEP_S, what="m2's b in m1's viewer")
        assert row.progress == "remote [b]progress[/b]" and row.pane is not None
        assert row.problem is None  # fresh: m2 published within 30 s
        assert bridge.snapshot().agent("a").node is None

        # `comm-node status` on m1: the same row, node and state, in JSON and in text
        st = run_cli("status", "--json", cwd=roots["m1"])
        assert st.returncode == 0, st.stderr
        rows = {r["name"]: r for r in json.loads(st.stdout)["agents"]}
        assert rows["b"]["node"] == "m2" and rows["b"]["task"] == "T9"
        # the state its own status says (b's screen, a shell's, cannot tell: the word stands)
        assert rows["b"]["state"] == "busy" == str(bridge.snapshot().agent("b").state)
        assert "node" not in rows["a"]
        text = run_cli("status", cwd=roots["m1"]).stdout
        line = next(x for x in text.splitlines() if x.startswith("b @m2"))
        assert f"{rows['b']['state']}" in line and "on T9" in line, line

        # the pane of m2's agent, read from m1 through m2's engine
        wait_for(
            lambda: word in run_cli("peek", "b", cwd=roots["m1"], timeout=STEP_S).stdout,
            timeout=STEP_S,
            what="b's pane word in a peek from m1",
        )
        # ... and as the room's preview reads it (the operator service, in its worker)
        ops = OperatorActions(ws1, lambda: Coordinator(ws1))
        try:
            assert word in ops.peek("b")
            with pytest.raises(CommNodeError, match=r"^b runs on machine m2: attach to it"):
                ops.attach("b", suspend=contextlib.nullcontext)
        finally:
            ops.remote().close()
        assert not events(roots["m2"], "operator.remote")  # a read is not logged as an act
        # a terminal reaches only its own machine's tmux: one line naming the machine
        err = one_line_error(run_cli("attach", "b", cwd=roots["m1"]))
        assert "b runs on machine m2" in err, err

        # m2's engine gone: the peek is one line, nothing else (no error event either: a
        # viewer's preview asks every second, which made one error event a second)
        eng.kill("m2")
        for _ in range(2):
            err = one_line_error(run_cli("peek", "b", cwd=roots["m1"], timeout=STEP_S))
            assert "engine m2 (owner of b) does not answer" in err, err
        assert not events(roots["m1"], "cluster.unanswered")
    finally:
        if bridge is not None:
            bridge.stop()
        eng.stop_all()
        run_cli("down", cwd=roots["m2"], timeout=STEP_S)


def view_file(root: Path, nodes: dict) -> None:
    guarded = load_workspace(str(root)).paths.guarded
    Path(guarded).mkdir(parents=True, exist_ok=True)
    (Path(guarded) / VIEW_FILE).write_text(json.dumps({"node": "m1", "written": 0, "nodes": nodes}))


def published(ts: float, **status) -> dict:
    return {
        "node": "m2",
        "ts": ts,
        "domains": ["b"],
        "agents": {"b": {"state": "busy", "task": "T9", **status}},
        "panes": {},
        "health": {},
    }


def test_a_readers_rows_go_stale_and_a_bad_copy_is_one_line_naming_the_file(tmp_path):
    """No server needed: what a reader does with the engine's copy, the file written by
    hand as the engine writes it."""
    root = machine(tmp_path / "m1", "nats://127.0.0.1:1", "m1", "a")
    ws = load_workspace(str(root))
    now = time.time()
    view_file(root, {"m2": published(now - 5)})
    row = snapshot(ws, Coordinator(ws), now=now).agent("b")
    assert (row.node, row.task, row.problem) == ("m2", "T9", None)

    view_file(root, {"m2": published(now - 95)})  # m2's engine stopped publishing
    row = snapshot(ws, Coordinator(ws), now=now).agent("b")
    assert row.node == "m2" and row.problem == "m2's engine last published 95 s ago"

    # a node's entry of the wrong shape is dropped, not believed
    view_file(root, {"m2": {**published(now), "node": "m3"}, "m9": "x"})
    row = snapshot(ws, Coordinator(ws), now=now).agent("b")
    assert row.node == "?" and "no engine on another machine publishes" in row.problem

    path = Path(ws.paths.guarded) / VIEW_FILE
    path.write_text('{"node": "m1", "nodes": []}')
    row = snapshot(ws, Coordinator(ws), now=now).agent("b")
    assert row.problem == f"{path}: field 'nodes' must be an object"
    path.write_text("{not json")
    st = run_cli("status", cwd=root)
    assert st.returncode == 0 and "Traceback" not in st.stderr, st.stderr
    line = next(x for x in st.stdout.splitlines() if x.startswith("b @?"))
    assert f"({path}: not valid JSON" in line, line


def test_without_a_cluster_the_copy_is_never_read(tmp_path):
    root = write_workspace(tmp_path / "ws", domains=("a", "b"))
    view_file(root, {"m2": published(time.time())})  # left behind: not this workspace's
    ws = load_workspace(str(root))
    rows = snapshot(ws, Coordinator(ws)).to_json()["agents"]
    assert all("node" not in r for r in rows) and rows[1]["task"] is None


async def test_the_preview_of_a_remote_agent_is_its_text_and_a_silent_owner_one_line():
    """The room's preview reads another machine's pane in its worker (operator.peek, which
    asks the owner); the text is shown as text (an agent's markup stays characters), and an
    owner that does not answer is one line in the panel."""
    from textual.app import App
    from textual.widgets import Static

    from comm_node_tui.cluster.ops import OwnerSilent
    from comm_node_tui.tui.widgets.preview import PreviewPanel

    answers = {
        "b": "[bold red]not markup[/] \x1b[31mred\x1b[0m",
    }

    def peek(name: str) -> str:
        if name not in answers:
            raise OwnerSilent("engine m2 (owner of c) does not answer (no engine listening)")
        return answers[name]

    class Room(App):
        def compose(self):
            yield PreviewPanel(peek=peek, id="preview")

    app = Room()
    async with app.run_test() as pilot:
        panel = app.query_one(PreviewPanel)
        panel.follow("b")
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = str(app.query_one("#pane-text", Static).render())
        assert "[bold red]not markup[/] red" in shown, shown
        panel.follow("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = str(app.query_one("#pane-text", Static).render())
    assert shown.strip() == (
        "(no pane: engine m2 (owner of c) does not answer (no engine listening))"
    ), shown


def submits(log: Path) -> list[str]:
    if not log.exists():
        return []
    recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    return [r["text"] for r in recs if r.get("event") == "submit" and r["text"]]


def test_the_nudger_types_only_into_this_machines_agents(tmp_path, nats_server, engine_for):
    """m1 routes a message to b, which m2 runs: b is not among m1's delivered recipients,
    and even a pane named b in m1's own tmux (one tmux shared by two machines' engines) is
    never nudged by m1, while a, m1's own, is in the same pass."""
    from comm_node_tui.coordination.operator import message_to_agent
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol.status import update_status

    root = machine(
        tmp_path / "m1",
        nats_server.url,
        "m1",
        "a",
        domain_extra={n: f'command = "{AGENT} --log {tmp_path / n}.log"' for n in ("a", "b")},
    )
    ws = load_workspace(str(root))
    ap = AgentPanes(ws)
    try:
        ap.up(["a", "b"])
        for n in ("a", "b"):
            wait_for(lambda n=n: "❯" in ap.peek(n), timeout=STEP_S, show=lambda n=n: ap.peek(n))
        eng = engine_for(root)
        wait_for(lambda: eng.relay.client.up, timeout=STEP_S, what="m1 connected")
        assert eng.router.remote_domains == {"b"}

        def at_rest() -> bool:
            for n in ("a", "b"):
                update_status(ws.domains[n].paths.status, n, state="idle")
                eng.refresh_status(n)
            eng.screens.apply(eng.screens.read())
            return all(eng.panes[n]["screen_state"] == "idle" for n in ("a", "b"))

        wait_for(at_rest, timeout=STEP_S, show=lambda: eng.panes)

        # a's message to b goes to the stream (acked), and b is not a recipient to nudge here
        ident = queue(ws.domains["a"], "b", "for b, on m2")
        eng.router.scan_outbox(ws.domains["a"])
        wait_for(
            lambda: eng.router.settle() >= 0 and eng.router.routed == 1,
            timeout=STEP_S,
            what="the message to b acked by the stream",
        )
        assert "b" not in eng.router.delivered_to, ident

        # a monitor's wake-up for b (as the task monitor adds a ready task's domain), mail
        # in m1's copy of b's inbox, and mail for a: one pass nudges a, never b
        message_to_agent(eng.coord, "b", "in m1's copy of b's inbox")
        message_to_agent(eng.coord, "a", "for a")
        eng.router.delivered_to.update({"a", "b"})
        eng.nudger.tick()
        eng.actions.drain()
        wait_for(lambda: submits(tmp_path / "a.log") != [], timeout=STEP_S, what="a nudged")
        assert submits(tmp_path / "a.log")[0].startswith("You have 1 new message")
        assert submits(tmp_path / "b.log") == []
    finally:
        ap.down()


def test_notify_rings_for_this_machines_agents_unless_remote_is_on(tmp_path):
    """Each engine notifies for the agents it owns: another machine's need (its engine
    rings for it) is in the room's list only; `[notify] remote = true` rings for it too."""
    from comm_node_tui.engine.engine import Engine
    from comm_node_tui.engine.needs import Need, NeedKind
    from tests.test_notify import Receiver

    receiver = Receiver()
    try:
        sent: dict[bool, list[str]] = {}
        for remote in (False, True):
            table = (
                f'\n[notify]\nwebhook = "http://127.0.0.1:{receiver.port}/hook"\n'
                'format = "json"\nmin_interval_s = 0\ndesktop = false\n'
                f"remote = {str(remote).lower()}\n"
            )
            root = machine(tmp_path / f"r{remote}", "nats://127.0.0.1:1", "m1", "a", table)
            eng = Engine(load_workspace(str(root)))  # not started: its notifier alone
            try:
                needs = [
                    Need(NeedKind.PERMISSION, n, f"Bash: deploy {n}", None, f"permission:{n}:1")
                    for n in ("a", "b")
                ]
                assert eng.notifier.observe([]) == []  # the first list is taken as known
                notes = eng.notifier.observe(needs)
                eng.notifier.drain()
                sent[remote] = [n.need.agent for n in notes]
            finally:
                eng.relay.stop()
        assert sent == {False: ["a"], True: ["a", "b"]}
        agents = [json.loads(r["body"])["agent"] for r in receiver.requests]
        assert agents == ["a", "a", "b"]
    finally:
        receiver.close()


def test_the_engine_writes_its_copy_only_when_a_node_published_something(tmp_path):
    """The relay swaps its map of the other nodes whole on each change and the engine's
    timers hand it over every tick: the same map is not written again."""
    from comm_node_tui.cluster.view import ViewWriter, read_view

    writer = ViewWriter(str(tmp_path), "m1")
    nodes = {"m2": published(100.0)}
    assert writer.write(nodes, 1.0) is True
    path = tmp_path / "guarded" / VIEW_FILE
    first = path.stat()
    assert writer.write(nodes, 2.0) is False  # the same map: no write
    assert path.stat().st_ino == first.st_ino and path.stat().st_mtime_ns == first.st_mtime_ns
    newer = {**nodes, "m2": published(110.0)}
    assert writer.write(newer, 3.0) is True
    doc = json.loads(path.read_text())
    assert (doc["node"], doc["written"]) == ("m1", 3.0)
    assert read_view(str(tmp_path))["m2"]["ts"] == 110.0


def test_a_peek_reply_stays_under_the_message_limit_of_nats():
    """A screen of escapes (an ANSI capture) is 6 bytes a character in JSON: the reply is
    bounded in bytes, its newest part kept (over 1 MB NATS refuses it, and the asker waited
    10 s for nothing)."""
    from comm_node_tui.cluster.requests import PEEK_MAX_REPLY_BYTES
    from comm_node_tui.operator.remote import reply_bounded

    text = reply_bounded("\x1b[2m─\x1b[0m" * 100_000 + "THE NEWEST LINE")
    reply = json.dumps({"ok": True, "line": text, "exit": 0}, ensure_ascii=False).encode()
    assert len(reply) <= PEEK_MAX_REPLY_BYTES + 100
    assert text.endswith("THE NEWEST LINE") and len(text) > 10_000
