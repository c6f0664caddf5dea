"""The other machines' events for every reader on this one (issue 20, cluster/remote_log.py):
two engines on one real NATS server. m1's engine writes what m2 logs about b into a log of
its own (never m1's events.jsonl), so a viewer room of m1, `comm-node log` and `log -f` show
it, each event once, also after m1's engine restarted; m2's room never gets its own events
back. Without [cluster] nothing of it exists."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from comm_node_tui.cluster.remote_log import REMOTE_LOG, Follower, RemoteLog
from comm_node_tui.protocol.events import Event
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, run_cli, write_workspace
from tests.natskit import events, machine, notes, running_server
from tests.waiting import wait_for

STEP_S = 60.0  # an engine's step on a loaded machine: generous, never paid when it works


@pytest.fixture
def nats_server(tmp_path):
    yield from running_server(tmp_path / "nats")


def note(engine, text: str, agent: str = "b") -> None:
    engine.emit(Event("test.note", text, agent=agent))


def remote_notes(root) -> list[dict]:
    """The test's events in a machine's log of the other machines' events."""
    path = root / ".comm-node" / REMOTE_LOG
    recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [r for r in recs if r["type"] == "test.note"]


def log_json(root) -> list[dict]:
    res = run_cli("log", "--json", "-n", "1000", cwd=root)
    assert res.returncode == 0, res.stderr
    return [json.loads(x) for x in res.stdout.splitlines() if x.strip()]


def test_a_viewer_and_log_on_m1_show_m2s_events_once_also_after_a_restart(
    tmp_path, nats_server, engine_for
):
    from comm_node_tui.tui.bridge import EngineBridge

    m1_root = machine(tmp_path / "m1", nats_server.url, "m1", ["a"])
    m2_root = machine(tmp_path / "m2", nats_server.url, "m2", ["b"])
    m1, m2 = engine_for(m1_root), engine_for(m2_root)
    wait_for(lambda: m1.relay._ready and m2.relay._ready, timeout=STEP_S, what="set up")
    note(m2, "before the viewer")
    wait_for(lambda: notes(m1) == ["m2: before the viewer"], timeout=STEP_S)

    # a viewer room of m1 (m1's engine holds the workspace): the history, then what comes
    got: list[Event] = []
    bridge = EngineBridge(load_workspace(str(m1_root)), on_event=got.append)
    bridge.start()
    try:
        assert bridge.engine is None and bridge.viewer_of
        wait_for(lambda: getattr(bridge, "remote_follower", None), what="following m2's")
        history = [e.msg for e in bridge.recent_events() if e.type == "test.note"]
        assert history == ["m2: before the viewer"]
        note(m2, "while viewing [bold]x[/bold]")
        note(m2, "last")

        def seen() -> list[str]:
            return [e.msg for e in list(got) if e.type == "test.note"]

        wait_for(lambda: seen()[-1:] == ["m2: last"], timeout=STEP_S, show=seen)
        assert seen() == ["m2: while viewing [bold]x[/bold]", "m2: last"]
        assert all(e.data["node"] == "m2" and e.agent == "b" for e in got if e.type == "test.note")
    finally:
        bridge.stop()

    # m1's log is its own; `comm-node log` shows both, m2's marked with the node
    assert not events(m1_root, "test.note")
    shown = [r for r in log_json(m1_root) if r["type"] == "test.note"]
    assert [r["msg"] for r in shown] == [
        "m2: before the viewer",
        "m2: while viewing [bold]x[/bold]",
        "m2: last",
    ]
    assert {r["node"] for r in shown} == {"m2"}
    text = run_cli("log", "-n", "1000", "--type", "test.note", cwd=m1_root)
    assert text.returncode == 0 and text.stdout.count("m2: last") == 1, text

    # m1's events go the other way; m2's room never gets its own back
    note(m1, "from m1", agent="a")
    wait_for(lambda: "m1: from m1" in notes(m2), timeout=STEP_S, show=lambda: notes(m2))
    assert notes(m2) == ["before the viewer", "while viewing [bold]x[/bold]", "last", "m1: from m1"]
    assert [r["data"]["node"] for r in remote_notes(m2_root)] == ["m1"]

    # m1's engine restarted: what it missed once, nothing it had written again
    m1.stop()
    note(m2, "while m1 was stopped")
    m1 = engine_for(m1_root)
    note(m2, "after m1's restart")
    want = [
        "m2: before the viewer",
        "m2: while viewing [bold]x[/bold]",
        "m2: last",
        "m2: while m1 was stopped",
        "m2: after m1's restart",
    ]
    wait_for(
        lambda: [r["msg"] for r in remote_notes(m1_root)] == want,
        timeout=STEP_S,
        show=lambda: remote_notes(m1_root),
    )
    note(m2, "the end")  # once it is in, a doubled one would be too
    wait_for(lambda: remote_notes(m1_root)[-1]["msg"] == "m2: the end", timeout=STEP_S)
    assert [r["msg"] for r in remote_notes(m1_root)] == [*want, "m2: the end"]
    seqs = [r["data"]["stream_seq"] for r in remote_notes(m1_root)]
    assert seqs == sorted(set(seqs))
    assert [e["msg"] for e in events(m1_root, "test.note")] == ["from m1"]  # its own only


def test_log_follow_on_m1_prints_m2s_event_that_arrives_while_it_follows(
    tmp_path, nats_server, engine_for
):
    from comm_node_tui.adapters.agent_cli import comm_node_argv

    m1_root = machine(tmp_path / "m1", nats_server.url, "m1", ["a"])
    m2_root = machine(tmp_path / "m2", nats_server.url, "m2", ["b"])
    m1, m2 = engine_for(m1_root), engine_for(m2_root)
    wait_for(lambda: m1.relay._ready and m2.relay._ready, timeout=STEP_S, what="set up")
    note(m1, "the last one before", agent="a")  # what `-n 1` prints first
    proc = subprocess.Popen(
        [*comm_node_argv(), "log", "-f", "--json", "-n", "1"],
        cwd=m1_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    lines: list[dict] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # its first line printed: it follows from before what m2 logs next
        wait_for(lambda: lines, timeout=STEP_S, what="log -f's first line")
        assert lines[0]["msg"] == "the last one before" and "node" not in lines[0]
        # a damaged line in the log of m2's events is skipped, as in the local log
        with open(m1_root / ".comm-node" / REMOTE_LOG, "a") as fh:
            fh.write('{"ts": "2026-11-22T08:00:00.000Z", "type": \n')
        note(m2, "while following")
        note(m2, "then")

        def followed() -> list[str]:
            return [r["msg"] for r in list(lines) if r["type"] == "test.note"]

        wait_for(lambda: followed()[-1:] == ["m2: then"], timeout=STEP_S, show=followed)
        assert followed() == ["the last one before", "m2: while following", "m2: then"]
        assert [r.get("node") for r in lines if r["type"] == "test.note"] == [None, "m2", "m2"]
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert proc.returncode is not None


def test_a_redelivery_is_written_once_also_across_a_restart(tmp_path):
    """No server: the consumer writes before it acks; an event delivered again (an ack lost,
    the engine stopped between the write and the ack) whose sequence was written is dropped;
    a stream made anew (its sequences start again) is written."""
    log = RemoteLog(str(tmp_path))
    assert (tmp_path / REMOTE_LOG).exists()  # at once: the sandbox denies what exists
    follower = Follower(str(tmp_path))
    assert log.take(Event("x", "m2: one", data={"node": "m2"}), 1, False)
    assert log.take(Event("x", "m2: two", data={"node": "m2"}), 2, False)
    log.close()
    again = RemoteLog(str(tmp_path))  # the engine restarted
    assert again.last_seq == 2
    assert not again.take(Event("x", "m2: two", data={"node": "m2"}), 2, True)
    assert again.take(Event("x", "m2: three", data={"node": "m2"}), 3, True)
    assert again.take(Event("x", "m2: anew", data={"node": "m2"}), 1, False)  # a new stream
    again.log.rotate()  # the follower reads on across a rotation
    assert again.take(Event("x", "m2: rotated", data={"node": "m2"}), 2, False)
    again.close()
    stop = threading.Event()
    deadline = time.monotonic() + STEP_S  # a missing event fails the test, never hangs it
    got = []
    for ev in follower.events(lambda: stop.is_set() or time.monotonic() > deadline, 0.01):
        got.append(ev.msg)
        if len(got) == 5:
            stop.set()
    assert got == ["m2: one", "m2: two", "m2: three", "m2: anew", "m2: rotated"]


def test_without_a_cluster_a_viewer_reads_no_other_log(tmp_path, engine_for):
    from comm_node_tui.tui.bridge import EngineBridge

    root = write_workspace(tmp_path / "ws")
    eng = engine_for(root)
    got: list[Event] = []
    bridge = EngineBridge(load_workspace(str(root)), on_event=got.append)
    threads_before = set(threading.enumerate())  # a follower an earlier test left is not ours
    bridge.start()
    try:
        assert bridge.viewer_of
        # the viewer follows the local log only (one follower thread, no second one)
        # it reads the log from where it was when its thread began (a moment after start):
        # an event each poll until one arrives shows that thread is past its start

        def followed() -> bool:
            eng.emit(Event("test.note", "from the engine"))
            return any(e.msg == "from the engine" for e in list(got))

        wait_for(followed, timeout=STEP_S, every=0.2, what="the viewer following the log")
        names = {t.name for t in set(threading.enumerate()) - threads_before}
        assert "cn-follow-remote" not in names and not hasattr(bridge, "remote_follower")
    finally:
        bridge.stop()
    assert not (root / ".comm-node" / REMOTE_LOG).exists()


def test_a_sandboxed_agent_cannot_write_the_other_machines_events(tmp_path):
    """Forged there, a viewer would show events from m2 that m2 never logged."""
    from comm_node_tui.adapters.claude.sandbox import sandbox_block

    root = machine(tmp_path / "m1", "nats://127.0.0.1:9", "m1", ["a"])
    ws = load_workspace(str(root))
    RemoteLog(ws.paths.state).close()  # as the engine's relay makes it at its start
    deny = sandbox_block(ws, ws.domains["a"])["filesystem"]["denyWrite"]
    # the folder: the log's rotated files and a file made later are covered too
    assert str(root / ".comm-node" / "remote.d") in deny
