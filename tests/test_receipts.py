"""Delivery receipts (protocol/receipts.py): queued -> typed -> submitted -> started ->
answered, or failed with a reason; "started" only from the agent's own UserPromptSubmit
hook. The file rules here; then the whole path on a private tmux server with the fake agent,
whose `--hooks` run the real `comm-node hook` in a subprocess, as Claude Code does. The
same on real Claude Code: tests/test_real_claude_receipts.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from comm_node_tui.hooks.handler import handle
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.protocol import receipts as rc
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import run_cli, write_workspace
from tests.waiting import wait_for

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"


# ---- the file ---------------------------------------------------------------------------------
def states(path: str, rid: str) -> list[str]:
    return [r["state"] for r in rc.read_records(path) if r["id"] == rid]


def test_a_step_the_hook_proved_is_never_undone_by_the_typist(tmp_path):
    path = str(tmp_path / "receipts.jsonl")
    rid = rc.open_receipt(path, "api", "hello", "operator")
    rc.append(path, rid, "api", "typed")
    rc.append(path, rid, "api", "started")  # the hook is faster than the box check
    rc.append(path, rid, "api", "submitted")
    rc.append(path, rid, "api", rc.FAILED, reason=rc.NOT_STARTED)
    got = rc.find(path, rid)
    assert got is not None and got["state"] == "started" and got["reason"] is None
    assert set(got["times"]) == {"queued", "typed", "started", "submitted", "failed"}
    # without the hook's word, the typist's failure stands, with its reason
    other = rc.open_receipt(path, "api", "again", "nudge")
    rc.append(path, other, "api", "typed")
    rc.append(path, other, "api", "typed")
    rc.append(path, other, "api", rc.FAILED, reason=rc.DIALOG)
    got = rc.find(path, other)
    assert got is not None and (got["state"], got["reason"], got["attempts"]) == (
        "failed",
        "dialog",
        2,
    )
    # a torn line (a writer killed mid-write) is skipped, not fatal
    with open(path, "a") as fh:
        fh.write('{"id": "r-x", "sta')
    assert [r["id"] for r in rc.receipts(path)] == [rid, other]


def test_the_hook_matches_its_prompt_to_the_delivery_and_stop_answers_it(tmp_path):
    path = str(tmp_path / "receipts.jsonl")
    bang = rc.open_receipt(path, "api", "!ls -la\tnow", "operator")
    rc.append(path, bang, "api", "typed")
    mail = rc.open_receipt(path, "web", "You have 1 new message", "nudge")
    rc.append(path, mail, "web", "submitted")
    # the operator's own prompt is no delivery of ours; nor is the same text to another agent
    assert rc.hook_saw(path, "api", "UserPromptSubmit", "something else", False) is None
    assert rc.hook_saw(path, "api", "UserPromptSubmit", "You have 1 new message", False) is None
    # typed after a protecting space, blanks changed by the CLI: still this delivery
    assert rc.hook_saw(path, "api", "UserPromptSubmit", " !ls -la now", False) == bang
    assert rc.find(path, bang)["state"] == "started"
    assert rc.hook_saw(path, "api", "Stop", None, False) == bang
    assert rc.find(path, bang)["state"] == "answered"
    # a long paste reaches the hook wrapped in Claude Code's paste tags (2.1.330)
    long = "long " + "lorem ipsum " * 400
    pasted = rc.open_receipt(path, "api", long, "operator")
    rc.append(path, pasted, "api", "typed")
    wrapped = f'\n\n<pasted_content id="7bce">\n{long}\n</pasted_content id="7bce">\n'
    assert rc.hook_saw(path, "api", "UserPromptSubmit", wrapped, False) == pasted
    lines = "first line\nsecond line\n\nfourth"  # a blank line: wrapped as well
    multi = rc.open_receipt(path, "api", lines, "operator")
    rc.append(path, multi, "api", "typed")
    wrapped = f'\n\n<pasted_content id="9010">\n{lines}\n</pasted_content id="9010">\n'
    assert rc.hook_saw(path, "api", "UserPromptSubmit", wrapped, False) == multi
    # a prompt the hook refuses (the agent is paused) started no turn
    assert rc.hook_saw(path, "web", "UserPromptSubmit", "You have 1 new message", True) == mail
    assert (rc.find(path, mail)["state"], rc.find(path, mail)["reason"]) == ("failed", "blocked")


def test_comm_node_hook_writes_the_receipt(tmp_path):
    root = write_workspace(tmp_path / "ws", domains=("api",))
    ws = load_workspace(str(root))
    path = rc.path_in(ws.paths.state)
    os.makedirs(ws.paths.state, exist_ok=True)
    rid = rc.open_receipt(path, "api", "please build it", "operator")
    rc.append(path, rid, "api", "submitted")
    payload = {
        "hook_event_name": "UserPromptSubmit",
        "session_id": "s1",
        "cwd": str(root / "api"),
        "prompt": "please build it",
    }
    assert handle(payload)[0] == 0
    assert rc.find(path, rid)["state"] == "started"
    assert handle({**payload, "hook_event_name": "Stop"})[0] == 0
    assert rc.find(path, rid)["state"] == "answered"


# ---- through tmux and the fake agent ----------------------------------------------------------
@pytest.fixture
def agents(tmp_path, monkeypatch):
    """Two fake agents in tmux: `hooked` runs the real hook on each prompt and Stop, `mute`
    runs none (as an agent whose hooks are not installed)."""
    socket = f"cn-test-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    parts = ['[project]\nname = "receipts"\n']
    for name, flags in (("hooked", "--hooks"), ("mute", "")):
        (root / name).mkdir(parents=True)
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\n'
            f'command = "{AGENT} {flags} --busy 0.2 --log {root / name}.log"\n'
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    for name in ("hooked", "mute"):
        wait_for(lambda n=name: "❯" in ap.peek(n), show=lambda n=name: ap.peek(n))
    yield ap, root
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def submits(root: Path, name: str) -> list[str]:
    path = root / f"{name}.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [r["text"] for r in map(json.loads, lines) if r["event"] == "submit"]


def events(root: Path, kind: str) -> list[dict]:
    lines = (root / ".comm-node" / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == kind]


def test_inject_wait_returns_once_the_hook_saw_the_turn_and_status_shows_it(agents):
    ap, root = agents
    res = run_cli("inject", "hooked", "build the api", "--wait", "--json", cwd=root)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    receipt = out["receipt"]
    assert out["delivered"] and receipt["state"] in ("started", "answered")
    assert receipt["by"] == "operator" and receipt["attempts"] == 1
    assert receipt["started_s"] is not None and receipt["started_s"] >= 0
    assert submits(root, "hooked") == ["build the api"]
    path = rc.path_in(ap.ws.paths.state)
    # typed once, then the typist's "submitted" and the hook's "started" (and, on a loaded
    # machine, even the hook's "answered") in either order: the hook can be faster than the
    # typist's look at the box (seen in a full run at load 7)
    said = states(path, receipt["id"])
    assert said[:2] == ["queued", "typed"] and "started" in said, said
    assert set(said[2:]) <= {"started", "submitted", "answered"}, said
    # the fake agent's turn ends with a Stop: answered
    wait_for(lambda: rc.find(path, receipt["id"])["state"] == "answered")
    status = run_cli("status", "--json", cwd=root)
    [shown] = [r for r in json.loads(status.stdout)["receipts"] if r["id"] == receipt["id"]]
    assert shown["state"] == "answered" and shown["preview"] == "build the api"
    [line] = events(root, "agent.injected")
    assert receipt["id"] in line["msg"] and line["data"]["receipt"] == receipt["id"]


def test_a_submitted_text_whose_turn_never_starts_is_failed_not_typed_twice(agents):
    ap, root = agents
    res = run_cli("inject", "mute", "anyone there?", "--wait", "--timeout", "1", cwd=root)
    # no hook ever proves the turn: never reported as delivered
    assert res.returncode == 8, (res.returncode, res.stderr)
    assert "no turn start" in res.stderr
    [rec] = rc.receipts(rc.path_in(ap.ws.paths.state), agent="mute")
    assert (rec["state"], rec["reason"], rec["attempts"]) == ("failed", "not_started", 1)
    # An agent whose hooks never reported may well have taken the text: typing it again
    # would deliver it twice (only a text believed lost, its hooks silent since, is retyped).
    assert submits(root, "mute") == ["anyone there?"]
    # without --wait, a failure stays exit 1 as before; with it, each reason has its code
    res = run_cli("inject", "mute", "!perm", cwd=root)  # the fake agent opens a dialog
    assert res.returncode == 0, res.stderr
    wait_for(lambda: "Do you want" in ap.peek("mute") or "1. Yes" in ap.peek("mute"))
    res = run_cli("inject", "mute", "into the dialog?", "--wait", "--timeout", "0.5", cwd=root)
    assert res.returncode == 5 and "dialog" in res.stderr, (res.returncode, res.stderr)
    res = run_cli("inject", "mute", "into the dialog?", "--timeout", "0.5", cwd=root)
    assert res.returncode == 1
    assert "into the dialog?" not in submits(root, "mute")


def test_operator_text_in_the_box_is_never_touched_and_the_delivery_waits(agents):
    ap, root = agents
    pane = ap.tmux.panes()["hooked"].id
    ap.tmux.cmd("send-keys", "-t", pane, "-l", "half a thought")
    wait_for(lambda: "half a thought" in ap.peek("hooked"))
    res = run_cli("inject", "hooked", "from comm-node", "--wait", "--timeout", "0.5", cwd=root)
    assert res.returncode == 6, (res.returncode, res.stderr)
    assert "half a thought" in ap.peek("hooked") and submits(root, "hooked") == []
    [waiting] = events(root, "agent.inject_waiting")
    assert waiting["agent"] == "hooked" and waiting["data"]["reason"] == "operator_typing"
    # a delivery that waits long enough goes through once the operator clears the box
    done: list[dict] = []
    worker = threading.Thread(
        target=lambda: done.append(ap.inject("hooked", "second try", ready_timeout_s=20, wait_s=10))
    )
    worker.start()
    path = rc.path_in(ap.ws.paths.state)

    def queued_for_the_operator() -> bool:
        mine = [r for r in rc.receipts(path, agent="hooked") if r["state"] == "queued"]
        return bool(mine) and mine[-1]["reason"] == "operator_typing"

    wait_for(queued_for_the_operator)
    assert "half a thought" in ap.peek("hooked")
    ap.tmux.cmd("send-keys", "-t", pane, *["BSpace"] * len("half a thought"))
    worker.join(timeout=30)
    assert done and done[0]["receipt"]
    assert rc.find(path, done[0]["receipt"])["state"] in rc.PROVED
    assert submits(root, "hooked") == ["second try"]


def test_a_nudge_that_starts_no_turn_is_tried_again(agents, engine_for, monkeypatch):
    from comm_node_tui.engine import nudges
    from comm_node_tui.protocol.status import update_status

    _ap, root = agents
    monkeypatch.setattr(nudges, "NUDGE_START_S", 0.0)  # judged at once, not after 20 s
    eng = engine_for(root)
    # as if its hooks had reported before (the nudge is retried only for such an agent: one
    # whose hooks never report could never prove a nudge, and would get it every 30 s)
    update_status(eng.ws.domains["mute"].paths.status, "mute", state="idle", updated_by="hook")
    eng.refresh_status("mute")
    res = run_cli("send", "--to", "mute", "hi", cwd=root / "hooked")
    assert res.returncode == 0, res.stderr
    eng.scan()
    eng.screens.apply(eng.screens.read())
    eng.nudger.tick()
    eng.actions.drain()
    nudge = "You have 1 new message: run `comm-node inbox`"
    assert submits(root, "mute") == [nudge]
    eng.nudger.tick()  # its receipt shows no turn: failed, and the agent pending again
    [again] = [e for e in eng.recent if e.type == "agent.nudge_unstarted"]
    [rec] = rc.receipts(rc.path_in(eng.ws.paths.state), agent="mute")
    assert rec["state"] == "failed" and rec["reason"] == "not_started"
    assert rec["id"] in again.msg
    assert "mute" in eng.nudger._pending


def test_the_engine_logs_hook_proved_steps_and_fails_a_forgotten_delivery(agents, engine_for):
    from comm_node_tui.engine import nudges

    ap, root = agents
    eng = engine_for(root)
    eng.nudger.tick()  # the watch starts: earlier receipts are history
    out = ap.inject("hooked", "log my turn", wait_s=10)
    path = rc.path_in(ap.ws.paths.state)
    wait_for(lambda: rc.find(path, out["receipt"])["state"] == "answered")
    eng.nudger.tick()
    started = [e for e in eng.recent if e.type == "agent.turn_started"]
    answered = [e for e in eng.recent if e.type == "agent.answered"]
    assert [e.data["receipt"] for e in started] == [out["receipt"]]
    assert [e.data["receipt"] for e in answered] == [out["receipt"]]
    # a room injection into an agent whose hooks never report: nobody waits on it, so the
    # engine fails it once it is old enough (typed long ago: written as such)
    old = "r-000001-0ld0ld00"
    with open(path, "a") as fh:
        for state in ("queued", "typed", "submitted"):
            line = {"id": old, "t": 1.0, "agent": "mute", "state": state, "by": "operator"}
            fh.write(json.dumps(line) + "\n")
    eng.nudger.tick()
    assert eng.ctx.clock.time() - 1.0 > nudges.UNSTARTED_S
    assert (rc.find(path, old)["state"], rc.find(path, old)["reason"]) == ("failed", "not_started")
    [refused] = [e for e in eng.recent if e.type == "agent.inject_refused"]
    assert old in refused.msg and refused.data["reason"] == "not_started"


def test_a_nudge_is_not_repeated_to_an_agent_whose_hooks_never_report(
    agents, engine_for, monkeypatch
):
    from comm_node_tui.engine import nudges
    from comm_node_tui.protocol.status import update_status

    _ap, root = agents
    monkeypatch.setattr(nudges, "NUDGE_START_S", 0.0)  # judged at once, not after 20 s
    eng = engine_for(root)
    update_status(eng.ws.domains["mute"].paths.status, "mute", state="idle")
    eng.refresh_status("mute")
    assert run_cli("send", "--to", "mute", "hi", cwd=root / "hooked").returncode == 0
    eng.scan()
    eng.screens.apply(eng.screens.read())
    eng.nudger.tick()
    eng.actions.drain()
    assert len(submits(root, "mute")) == 1
    eng.nudger.tick()  # no proof can come: not failed, not pending again
    assert not [e for e in eng.recent if e.type == "agent.nudge_unstarted"]
    assert "mute" not in eng.nudger._pending


def test_a_full_receipts_file_is_rotated_once_by_racing_typists(tmp_path, monkeypatch):
    """Many typists see the full file at once: one rotates, the history is kept whole in
    receipts.1.jsonl and every new delivery's opening line is in the new file."""
    path = rc.path_in(str(tmp_path))
    history = "".join(
        json.dumps({"id": f"old-{i}", "t": 1, "agent": "a", "state": "queued"}) + "\n"
        for i in range(60)
    )
    # full now; the eight new deliveries (~170 bytes each) will not fill it again
    monkeypatch.setattr(rc, "MAX_BYTES", len(history) - 1)
    Path(path).write_text(history)
    ids: list[str] = []
    start = threading.Barrier(8)

    def typist(n: int) -> None:
        start.wait()
        ids.append(rc.open_receipt(path, "a", f"text {n}", "operator"))

    threads = [threading.Thread(target=typist, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert (tmp_path / "receipts.1.jsonl").read_text() == history
    fresh = {json.loads(x)["id"] for x in Path(path).read_text().splitlines()}
    assert fresh == set(ids) and len(ids) == 8
