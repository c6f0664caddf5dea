"""Events about an agent reach every machine's room also after a cut-off or a restart
(issue 20, cluster/events.py): two engines on one real NATS server, m2 behind a proxy that
cuts it off. What m2 logs about its agent b while cut off (also a line another process
appends, as a hook does) reaches m1 once the link is back, exactly once and in order; m1's
engine restarted gets what it missed and nothing it had shown; m2's engine restarted after
the stream acked lines its cursor had not recorded yet publishes none of them twice.
`comm-node cluster status` says what waits for a stopped engine (its mail and events)."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from comm_node_tui.cluster.state import cluster_state
from comm_node_tui.protocol.events import Event, EventLog
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import queue, run_cli
from tests.natskit import Proxy, events, inbox_ids, machine, notes, running_server
from tests.waiting import wait_for

STEP_S = 60.0  # an engine's step on a loaded machine: generous, never paid when it works


@pytest.fixture
def nats_server(tmp_path):
    yield from running_server(tmp_path / "nats")


def ready(*engines) -> bool:
    return all(e.relay._ready for e in engines)


def status_json(root) -> dict[str, dict]:
    res = run_cli("cluster", "status", "--json", cwd=root)
    assert res.returncode == 0, res.stderr
    return {n["node"]: n for n in json.loads(res.stdout)}


def note(engine, text: str, agent: str = "b") -> None:
    engine.emit(Event("test.note", text, agent=agent))


def test_events_logged_while_cut_off_reach_the_other_room_exactly_once(
    tmp_path, nats_server, engine_for
):
    proxy = Proxy(nats_server.port).heal()
    try:
        m1_root = machine(tmp_path / "m1", nats_server.url, "m1", ["a"])
        m2_root = machine(tmp_path / "m2", proxy.url, "m2", ["b"])
        m1, m2 = engine_for(m1_root), engine_for(m2_root)
        wait_for(lambda: ready(m1, m2), timeout=STEP_S, what="both engines set up")
        note(m2, "live")
        wait_for(lambda: notes(m1) == ["m2: live"], timeout=STEP_S, show=lambda: notes(m1))

        proxy.cut()
        wait_for(lambda: events(m2_root, "cluster.down"), timeout=STEP_S, what="m2 cut off")
        published = m2.relay.events.published
        note(m2, "while cut off")
        note(m2, "about a, not m2's agent", agent="a")  # never m2's to publish
        # a line another process appends about b (a hook does so), not through the engine
        EventLog(str(m2_root / ".comm-node" / "events.jsonl"), max_bytes=1 << 62).append(
            Event("test.note", "from a hook", agent="b")
        )
        # m2 cannot publish while cut off: its link is down and the stream acked nothing
        # more (the catch-up below, in order and once, shows the rest)
        assert not m2.relay.client.up and m2.relay.events.published == published

        proxy.heal()
        wait_for(
            lambda: "m2: from a hook" in notes(m1),
            timeout=STEP_S,
            what="m2's events of the cut-off at m1",
            show=lambda: notes(m1),
        )
        # a last one after the catch-up: once it is in, a doubled one would be too
        note(m2, "after")
        wait_for(lambda: notes(m1)[-1:] == ["m2: after"], timeout=STEP_S, show=lambda: notes(m1))
        assert notes(m1) == ["m2: live", "m2: while cut off", "m2: from a hook", "m2: after"]
        shown = [e for e in m1.recent if e.type == "test.note"]
        assert all(e.data.get("node") == "m2" and e.agent == "b" for e in shown)
        assert not events(m1_root, "test.note")  # never in m1's own log
        assert len(events(m2_root, "cluster.down")) == 1
    finally:
        proxy.cut()


def test_restarted_engines_catch_up_without_doubling(tmp_path, nats_server, engine_for):
    m1_root = machine(tmp_path / "m1", nats_server.url, "m1", ["a"])
    m2_root = machine(tmp_path / "m2", nats_server.url, "m2", ["b"])
    m1, m2 = engine_for(m1_root), engine_for(m2_root)
    cursor = m2_root / ".comm-node" / "guarded" / "cluster-events.json"
    first = json.loads(cursor.read_text())  # written at m2's first start, before any note
    wait_for(lambda: ready(m1, m2), timeout=STEP_S, what="both engines set up")
    note(m2, "shown before")
    wait_for(lambda: notes(m1) == ["m2: shown before"], timeout=STEP_S, show=lambda: notes(m1))

    # m1's engine stopped: what m2 logs meanwhile waits in m1's durable consumer
    m1.stop()
    missed = [f"missed {i}" for i in range(20)]
    for text in missed:
        note(m2, text)
    mail = load_workspace(str(m2_root)).domains["b"]
    ids = {queue(mail, "a", f"for a {i}") for i in range(3)}

    # `cluster status` on m2 says what waits for m1's stopped engine in the streams
    def m1_waits() -> dict | None:
        m2.scan()  # this engine runs no watcher: its router (and its rescan) is called here
        m1_row = status_json(m2_root).get("m1") or {}
        enough = (m1_row.get("events_waiting") or 0) >= 20
        return m1_row if enough and m1_row.get("mail_waiting") == {"a": 3} else None

    row = wait_for(m1_waits, timeout=STEP_S, what="m1's lag in cluster status")
    assert row["domains"] == ["a"] and isinstance(row["age_s"], float)  # published at start
    # alive just after it published (whatever this machine's load made of the wall clock)
    ws2 = load_workspace(str(m2_root))
    assert {n["node"]: n for n in cluster_state(ws2, row["ts"] + 1)}["m1"]["alive"] is True
    # m2's engine reads its consumer as it goes (its own events too, skipped): nothing stays
    wait_for(lambda: status_json(m2_root)["m2"]["events_waiting"] == 0, timeout=STEP_S)
    text = run_cli("cluster", "status", cwd=m2_root)
    assert text.returncode == 0, text.stderr
    assert re.search(r"^m1: a \((alive|SILENT): published \d+ s ago\)$", text.stdout, re.M), (
        text.stdout
    )
    assert re.search(r"^  waiting: mail a 3; events (\d+)$", text.stdout, re.M), text.stdout
    # a node that has not published for STALE_S is silent
    later = {n["node"]: n for n in cluster_state(load_workspace(str(m2_root)), time.time() + 60)}
    assert later["m1"]["alive"] is False and later["m1"]["age_s"] >= 60

    m1 = engine_for(m1_root)
    wait_for(
        lambda: len(notes(m1)) >= len(missed),
        timeout=STEP_S,
        what="what m1 missed, after its restart",
        show=lambda: notes(m1),
    )
    note(m2, "after m1's restart")
    wait_for(lambda: notes(m1)[-1:] == ["m2: after m1's restart"], timeout=STEP_S)
    # what it had shown before the stop (and acked) is not shown again
    assert notes(m1) == [f"m2: {t}" for t in missed] + ["m2: after m1's restart"]
    wait_for(lambda: ids <= set(inbox_ids(m1_root, "a")), timeout=STEP_S, what="a's mail")
    wait_for(
        lambda: status_json(m2_root)["m1"]["mail_waiting"] == {"a": 0},
        timeout=STEP_S,
        what="m1's lag gone",
    )

    # m2's engine stopped as if it died between the stream's ack and its cursor's write
    # (the cursor set back before every note): its restart publishes none of them again
    m2.stop()
    assert json.loads(cursor.read_text())["offset"] > first["offset"]
    cursor.write_text(json.dumps(first))
    # and while m2's engine is down, a hook logs about b: the restart publishes that
    EventLog(str(m2_root / ".comm-node" / "events.jsonl"), max_bytes=1 << 62).append(
        Event("test.note", "while m2's engine was down", agent="b")
    )
    m2 = engine_for(m2_root)
    wait_for(
        lambda: notes(m1)[-1:] == ["m2: while m2's engine was down"],
        timeout=STEP_S,
        show=lambda: notes(m1),
    )
    # the stream's own de-duplication would hide a re-sent line from m1 for minutes; the
    # restarted publisher did not even send one: it skipped to the last line the stream held
    published = m2.relay.events.published
    log = (m2_root / ".comm-node" / "events.jsonl").read_text().splitlines()
    at = next(i for i, x in enumerate(log) if "while m2's engine was down" in x)
    since = [x for x in log[at + 1 :] if json.loads(x).get("agent") == "b"]
    assert published <= 1 + len(since), (published, since)  # without the skip: 23 or more
    note(m2, "last")
    wait_for(lambda: notes(m1)[-1:] == ["m2: last"], timeout=STEP_S, show=lambda: notes(m1))
    assert notes(m1) == [f"m2: {t}" for t in missed] + [
        "m2: after m1's restart",
        "m2: while m2's engine was down",
        "m2: last",
    ]


def test_the_publisher_reads_its_log_across_rotations_in_order_from_its_cursor(tmp_path):
    """No server: the log rotates (several times) while the publisher is behind; it reads
    every line once, oldest first, from where it was, and a cursor past the newest line
    finds nothing."""
    from comm_node_tui.cluster.events import read_after

    path = str(tmp_path / "events.jsonl")
    log = EventLog(path, max_bytes=1000)  # about ten lines a file: 4 rotations, 5 kept
    log.append(Event("test.note", "n0", agent="b"))
    log.close()
    start = (os.stat(path).st_ino, "", 0)  # its head not known: the inode says
    for i in range(1, 40):
        log.append(Event("test.note", f"n{i}", agent="b"))
    log.close()
    assert os.path.exists(path.replace(".jsonl", ".3.jsonl"))  # rotated several times
    got, pos = [], start
    while True:
        lines, end = read_after(path, pos, limit=7)
        got += [json.loads(line)["msg"] for _p, line in lines]
        if end == pos:
            break
        pos = end
    assert got == [f"n{i}" for i in range(40)]
    assert read_after(path, pos) == ([], pos)


def test_an_older_comm_nodes_cursor_is_gone_on_from_and_its_next_save_moves_it(tmp_path):
    """Before guarded/ the cursor was `.comm-node/cluster-events.json`: the engine goes on
    from it after the upgrade, saves into guarded/, and a cursor put at the old place later
    (an agent skipping its own events) is not read."""
    from comm_node_tui.cluster.events import CURSOR_FILE, Cursor, head_of

    log = tmp_path / "events.jsonl"
    EventLog(str(log)).append(Event("test.note", "shared", agent="b"))
    first = os.path.getsize(log)
    EventLog(str(log)).append(Event("test.note", "not yet", agent="b"))
    ino, head = os.stat(log).st_ino, head_of(str(log))[1]
    (tmp_path / CURSOR_FILE).write_text(json.dumps({"ino": ino, "head": head, "offset": first}))
    cursor = Cursor(str(tmp_path), str(log))
    assert (cursor.pos, cursor.problem) == ((ino, head, first), "")
    cursor.pos = (ino, head, first + 1)
    cursor.save()
    assert not (tmp_path / CURSOR_FILE).exists()
    assert json.loads((tmp_path / "guarded" / CURSOR_FILE).read_text())["offset"] == first + 1
    end = os.path.getsize(log)
    (tmp_path / CURSOR_FILE).write_text(json.dumps({"ino": ino, "head": head, "offset": end}))
    assert Cursor(str(tmp_path), str(log)).pos == (ino, head, first + 1)


def test_a_bad_cursor_is_one_line_naming_the_field_and_the_log_end_is_used(tmp_path):
    from comm_node_tui.cluster.events import CURSOR_FILE, Cursor, head_of, shareable

    log = tmp_path / "events.jsonl"
    EventLog(str(log)).append(Event("test.note", "old", agent="b"))
    (tmp_path / CURSOR_FILE).write_text('{"ino": "x", "offset": 3}')
    cursor = Cursor(str(tmp_path), str(log))
    assert cursor.problem == f"{tmp_path / CURSOR_FILE}: field 'ino' must be a whole number"
    assert cursor.pos == (os.stat(log).st_ino, head_of(str(log))[1], os.path.getsize(log))
    # written anew in guarded/, where no agent can move it; the bad one at the old place gone
    assert json.loads((tmp_path / "guarded" / CURSOR_FILE).read_text())["offset"] == cursor.pos[2]
    assert not (tmp_path / CURSOR_FILE).exists()
    assert Cursor(str(tmp_path), str(log)).problem == ""  # written anew: said once

    # what goes out: events about this machine's agents, never one from elsewhere
    def line(**rec) -> bytes:
        ev = {"ts": "2026-11-22T08:00:00.000Z", "type": "x", "msg": "", "data": {}} | rec
        return json.dumps(ev, separators=(",", ":")).encode()

    local = frozenset({"b"})
    assert shareable(line(agent="b"), local, "m2") is not None
    assert shareable(line(agent="b", data={"node": "m2"}), local, "m2") is not None
    assert shareable(line(agent="b", data={"node": "m1"}), local, "m2") is None
    assert shareable(line(agent="a"), local, "m2") is None
    assert shareable(line(agent=None), local, "m2") is None
    assert shareable(b'{"agent":"b","ts":', local, "m2") is None  # cut short
