"""A room on one machine with a hand on every machine's agents (issue 20): three engines in
three workspaces on one real NATS server; m2 runs agent b in a real tmux pane (the fake
Claude-like agent, which logs every submitted line). m1's World shows b (marked with m2),
m2's events about b reach m1's subscribers, and m1's interventions on b are done by m2's
engine: typed once (also when the request is sent again), refused in one line when m2's
engine is down, and approve answers only the prompt m1's operator read."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from comm_node_tui.cluster.ops import RemoteOps
from comm_node_tui.errors import CommNodeError
from comm_node_tui.operator.actions import OperatorActions
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import run_cli, write_workspace
from tests.natskit import Engines, events, running_server
from tests.waiting import wait_for

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
OWNED = {"m1": "a", "m2": "b", "m3": "c"}
STEP_S = 60.0  # a real engine's step under load: generous, never paid when things work


@pytest.fixture
def nats_server(tmp_path):
    yield from running_server(tmp_path / "nats")


def room_machine(root: Path, url: str, node: str) -> Path:
    """One machine: every domain's folder; b's agent is the fake one (started only on m2);
    each machine its own tmux session, so one machine's engine never reads another's panes
    (the tests share one private tmux server)."""
    cluster = (
        f'[cluster]\nnats = "{url}"\nnode = "{node}"\nlocal = ["{OWNED[node]}"]\n'
        f'timeout_s = 5\n\n[tmux]\nsession = "cn-{node}"\n'
    )
    return write_workspace(
        root,
        domains=("a", "b", "c"),
        extra=cluster,
        domain_extra={"b": f'command = "{AGENT} --log {root / "b.log"}"'},
    )


def submits(root: Path) -> list[str]:
    log = root / "b.log"
    if not log.exists():
        return []
    recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    return [r["text"] for r in recs if r.get("event") == "submit"]


def typed(root: Path) -> list[str]:
    """What the operator had typed into b, in order (m2's engine may also nudge b about the
    operator's message in its inbox, "You have 1 new message": its own doing, left out)."""
    return [t for t in submits(root) if not t.startswith("You have ")]


def permissions(root: Path) -> list[bool]:
    log = root / "b.log"
    if not log.exists():
        return []
    recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    return [r["allowed"] for r in recs if r.get("event") == "permission"]


@pytest.fixture
def cluster(tmp_path, nats_server, engine_for):
    """m2 and m3 as `comm-node serve` processes, b's agent up in m2's pane, and m1's engine
    in this process (as the room runs it), with its events collected."""
    roots = {n: room_machine(tmp_path / n, nats_server.url, n) for n in OWNED}
    eng = Engines(roots)
    for node in ("m2", "m3"):
        eng.start(node)
    up = run_cli("up", "b", cwd=roots["m2"], timeout=STEP_S)
    assert up.returncode == 0, up.stderr
    wait_for(
        lambda: "❯" in run_cli("peek", "b", cwd=roots["m2"]).stdout,
        timeout=STEP_S,
        what="b's prompt on m2",
    )
    m1 = engine_for(roots["m1"])
    seen: list = []
    m1.subscribe(seen.append)
    # an engine publishes its state only once it listens for requests (cluster/relay.py):
    # seen here, m2 and m3 take requests
    wait_for(
        lambda: {"m2", "m3"} <= set(m1.relay.remote_nodes),
        timeout=STEP_S,
        what="m2 and m3 publish their agents",
    )
    yield roots, eng, m1, seen
    eng.stop_all()


def b_row(m1):
    return m1.snapshot().agent("b")


def test_m1s_world_shows_m2s_agent_its_events_and_an_inject_reaches_its_pane_once(cluster):
    roots, _eng, m1, seen = cluster
    # the room on m1 shows b as m2's engine sees it: a pane, a prompt, marked with m2
    wait_for(
        lambda: (
            (row := b_row(m1)) is not None
            and row.node == "m2"
            and row.pane is not None
            and m1.snapshot().agent("c").node == "m3"
        ),
        timeout=STEP_S,
        what="b, from m2, in m1's World",
        show=lambda: b_row(m1),
    )
    world = m1.snapshot().to_json()
    rows = {r["name"]: r for r in world["agents"]}
    assert rows["b"]["node"] == "m2" and "node" not in rows["a"]  # local rows keep their keys
    assert rows["c"]["node"] == "m3"  # no agent runs there, its engine still publishes it

    # the operator's CLI on m1 injects into b: m2's engine types it into b's pane
    res = run_cli("inject", "b", "hello from m1", cwd=roots["m1"], timeout=STEP_S)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("b: typed"), res.stdout
    wait_for(lambda: typed(roots["m2"]) == ["hello from m1"], timeout=STEP_S)
    # m2's events about b reach m1's room, marked, and stay out of m1's own log
    wait_for(
        lambda: any(
            ev.agent == "b" and ev.data.get("node") == "m2" and ev.msg.startswith("m2: ")
            for ev in seen
        ),
        timeout=STEP_S,
        what="an event of m2's about b at m1's subscriber",
    )
    assert not [e for e in events(roots["m1"], "agent.injected")]
    assert events(roots["m2"], "operator.remote")  # the owner logged what it did for whom
    # the message went into b's inbox on m2 (where b reads it), not into m1's copy
    inbox2 = load_workspace(str(roots["m2"])).domains["b"].paths.inbox
    inbox1 = load_workspace(str(roots["m1"])).domains["b"].paths.inbox
    assert len(list(Path(inbox2).glob("*.md"))) == 1
    assert not Path(inbox1).exists() or not list(Path(inbox1).glob("*.md"))

    # a terminal attaches on its own machine: one line naming it, not "no pane" (a peek
    # reads the pane through m2's engine: tests/test_cluster_remote_view.py)
    attach = run_cli("attach", "b", cwd=roots["m1"])
    assert attach.returncode == 1 and "b runs on machine m2" in attach.stderr, attach.stderr
    assert attach.stderr.count("\n") == 1

    # the same request sent again (a lost reply, a retry) is answered, never typed again
    ops = RemoteOps(load_workspace(str(roots["m1"])), m1.emit)
    try:
        first = ops.ask("inject", "b", {"text": "only once"}, request_id="req-1")
        again = ops.ask("inject", "b", {"text": "only once"}, request_id="req-1")
        assert again == first
        ops.ask("inject", "b", {"text": "after"}, request_id="req-2")
    finally:
        ops.close()
    # b takes its input in order: once "after" is in, a second "only once" would be too
    wait_for(lambda: typed(roots["m2"])[-1:] == ["after"], timeout=STEP_S)
    assert typed(roots["m2"]) == ["hello from m1", "only once", "after"]


def test_approve_from_m1_answers_only_the_prompt_m1_read(cluster):
    roots, _eng, m1, _seen = cluster
    ws1 = load_workspace(str(roots["m1"]))
    ops = OperatorActions(ws1, lambda: m1.coord)
    try:
        ops.inject("b", "!perm")  # the fake agent asks for permission
        wait_for(
            lambda: any(n.key.startswith("permission:b:") for n in m1.snapshot().needs),
            timeout=STEP_S,
            what="b's permission prompt among m1's needs",
            show=lambda: b_row(m1),
        )
        need = next(n for n in m1.snapshot().needs if n.key.startswith("permission:b:"))
        with pytest.raises(CommNodeError, match="the prompt changed since you read it"):
            ops.approve("b", seen="permission:b:0000000000")
        assert permissions(roots["m2"]) == []  # the stale answer was not given
        line = ops.approve("b", seen=need.key)
        assert line, line
        wait_for(lambda: permissions(roots["m2"]) == [True], timeout=STEP_S)

        # pause and resume by name: m2's engine writes m2's pause file (b's hooks read it);
        # while paused, the owner's own check refuses to type into b
        from comm_node_tui.coordination.pause import read_pause

        state2 = load_workspace(str(roots["m2"])).paths.state
        assert "m2: paused b" in ops.pause(["b"])
        assert read_pause(state2).covers("b")
        assert not read_pause(ws1.paths.state).any  # m1's own agents are not paused
        with pytest.raises(CommNodeError, match=r"^b is paused: nothing is typed into it"):
            ops.inject("b", "typed into a paused agent")
        assert "m2: resumed b" in ops.resume(["b"])
        assert not read_pause(state2).any
    finally:
        if ops._remote is not None:
            ops._remote.close()


def test_an_owner_that_is_down_is_one_line_and_an_event_and_nothing_is_typed(cluster):
    roots, eng, m1, _seen = cluster
    wait_for(lambda: (row := b_row(m1)) is not None and row.node == "m2", timeout=STEP_S)
    eng.kill("m2")
    # (NATS answers "no responders" at once for a dead engine; the bound covers the other
    # way an owner is silent, a request that times out after 60 s)
    res = run_cli("inject", "b", "while m2 is down", cwd=roots["m1"], timeout=3 * STEP_S)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
    assert "engine m2 (owner of b) does not answer" in res.stderr
    unanswered = events(roots["m1"], "cluster.unanswered")
    assert len(unanswered) == 1 and unanswered[0]["data"]["node"] == "m2"
    # m2's engine back: the refused text was never queued, the next one goes once
    before = m1.relay.remote_nodes["m2"]["ts"]
    eng.start("m2")
    wait_for(  # it publishes again once it listens for requests
        lambda: m1.relay.remote_nodes["m2"]["ts"] > before,
        timeout=STEP_S,
        what="m2's engine back and listening",
    )
    res = run_cli("inject", "b", "m2 is back", cwd=roots["m1"], timeout=STEP_S)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: typed(roots["m2"])[-1:] == ["m2 is back"], timeout=STEP_S)
    assert typed(roots["m2"]) == ["m2 is back"]


async def test_the_agents_panel_marks_a_row_another_machine_runs(tmp_path):
    """The World's mark reaches the room: the row of m2's agent names m2; a node's name is
    text from elsewhere (shown as text, never markup)."""
    from textual.app import App

    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.engine.world import on_other_machines, snapshot
    from comm_node_tui.tui.widgets.agents import AgentsPanel

    root = write_workspace(tmp_path / "ws", domains=("a", "b", "c"))
    ws = load_workspace(str(root))
    world = on_other_machines(
        snapshot(ws, Coordinator(ws)), {"b": ("m2", 1.0), "c": ("[bold]m3", 99.0)}
    )
    assert world.agent("a").node is None and world.agent("b").problem is None
    assert world.agent("c").problem == "[bold]m3's engine last published 99 s ago"

    class Room(App):
        def compose(self):
            yield AgentsPanel(id="agents")

    app = Room()
    async with app.run_test() as pilot:
        panel = app.query_one(AgentsPanel)
        panel.show(world, {})
        await pilot.pause()
        names = [str(panel.get_row(key)[0]) for key in ("a", "b", "c")]
    assert names == ["a", "b @m2", "c @[bold]m3"]


def test_a_bad_request_is_one_line_naming_the_field():
    from comm_node_tui.cluster.requests import BadRequest, parse

    good = {"id": "r", "action": "inject", "agent": "b", "from": "m1", "args": {"text": "hi"}}
    assert parse(json.dumps(good).encode())["args"] == {"text": "hi"}
    cases = {
        b"not json": "not JSON",
        json.dumps({**good, "id": ""}).encode(): "field 'id'",
        json.dumps({**good, "action": "rm -rf"}).encode(): "field 'action'",
        json.dumps({**good, "args": {"text": 3}}).encode(): "field 'args.text' must be str",
        json.dumps({**good, "args": {"shell": "x"}}).encode(): "field 'args.shell'",
        json.dumps({**good, "action": "grant_budget", "args": {"tokens": True}}).encode(): (
            "field 'args.tokens' must be int"
        ),
    }
    for data, said in cases.items():
        with pytest.raises(BadRequest, match=said) as info:
            parse(data)
        assert "\n" not in str(info.value)


def test_the_owner_remembers_requests_across_a_restart(tmp_path):
    """An answered id is answered again from the journal; one begun and never answered (the
    engine died mid-action) is known, so a retry is refused rather than done twice."""
    from comm_node_tui.cluster.requests import RequestMemory

    mem = RequestMemory(str(tmp_path))
    mem.begin("done", {"action": "inject", "agent": "b", "from": "m1"})
    mem.finish("done", {"ok": True, "line": "typed", "exit": 0})
    mem.begin("cut", {"action": "inject", "agent": "b", "from": "m1"})
    with open(tmp_path / "remote-requests.jsonl", "a") as fh:
        fh.write('{"id": "half-writ')  # a line cut short by the crash
    again = RequestMemory(str(tmp_path))
    assert again.seen("done") == (True, {"ok": True, "line": "typed", "exit": 0})
    assert again.seen("cut") == (True, None)
    assert again.seen("new") == (False, None)
    again.begin("next", {"action": "kill", "agent": "b", "from": "m1"})  # after the cut line
    assert RequestMemory(str(tmp_path)).seen("next") == (True, None)


def test_a_review_of_m2s_domain_from_m1_reads_its_changes_there_and_comments_reach_b(cluster):
    """Read-only: m2's engine sends the diff of b's folder (m1's copy of it has none of b's
    work); a comment goes to b through the remote inject; the agent's text stays text."""
    from tests.gitrepos import git

    roots, _eng, m1, _seen = cluster
    folder = roots["m2"] / "b"
    git(folder, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Test"), ("user.email", "t@example.com")):
        git(folder, "config", key, value)
    git(folder, "config", "commit.gpgsign", "false")
    (folder / ".gitignore").write_text(".comm-node/\n")
    (folder / "app.py").write_text("one\n")
    git(folder, "add", ".gitignore", "app.py")
    git(folder, "commit", "-q", "-m", "initial")
    (folder / "app.py").write_text("one\n[bold]two\x1b[31m\n")  # markup and an escape

    ops = OperatorActions(load_workspace(str(roots["m1"])), lambda: m1.coord)
    try:
        work, files, total = ops.review_files("b")
        assert work.domain == "b" and work.mode == "tree" and total == 1
        assert [(f.path, f.status, f.added, f.removed) for f in files] == [("app.py", "M", 1, 0)]
        patch = ops.review_patch(work, files[0])
        assert not patch.note and "+[bold]two\ufffd[31m" in patch.text
        assert "\x1b" not in patch.text  # never to the operator's terminal
        # a file that is not among b's changes there: one line, as the screen shows it
        from comm_node_tui.integration.diff import FileChange

        with pytest.raises(CommNodeError, match="not among its changed files"):
            ops.review_patch(work, FileChange("nope.py", "M", 1, 0))
        line = ops.review_comment("b", "app.py", 2, "@@ -1 +1,2 @@", "+[bold]two", "why bold?")
        assert line.startswith("typed") and "delivered as" in line, line
    finally:
        ops.remote().close()
    inbox = load_workspace(str(roots["m2"])).domains["b"].paths.inbox
    msgs = wait_for(lambda: list(Path(inbox).glob("*.md")), timeout=STEP_S, what="b's mail")
    body = "".join(m.read_text() for m in msgs)
    assert "Review comment on app.py, line 2:" in body and "why bold?" in body
    # reads are neither journaled nor logged there; the comment is (an inject for m1)
    assert [e["data"]["action"] for e in events(roots["m2"], "operator.remote")] == ["inject"]
    assert not events(roots["m1"], "review.comment")


def test_review_data_from_another_machine_of_a_wrong_shape_is_one_line_naming_the_field():
    from comm_node_tui.operator.remote import remote_review_files

    work = {"folder": "/b", "top": "/b", "branch": None, "base": None, "since": "x", "mode": "tree"}
    good = {"work": work, "total": 1, "files": [{"path": "a\x1b]0;t\x07.py", "status": "M",
                                                 "added": 1, "removed": 0}]}  # fmt: skip
    _w, [change], _n = remote_review_files(good, "b")
    assert change.path == "a\ufffd]0;t\ufffd.py"
    for bad, field in (
        ([], "data"),
        ({**good, "work": "x"}, "work"),
        ({**good, "files": {}}, "files"),
        ({**good, "total": True}, "total"),
        ({**good, "work": {**work, "mode": "rm -rf"}}, "work.mode"),
        ({**good, "files": [{"path": 3, "status": "M"}]}, "files[0]"),
    ):
        with pytest.raises(CommNodeError) as err:
            remote_review_files(bad, "b")
        assert f"field '{field}'" in str(err.value) and "\n" not in str(err.value)
