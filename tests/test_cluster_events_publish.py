"""The publishing side of the cluster's events (cluster/events.py) against what agents and
operators can do to the log: lines the stream cannot take, a line longer than a read, equal
lines, a log file replaced under the cursor's inode, a cursor file that is not the engine's;
and a server without room for the events stream (cluster/relay.py). Each of these once
stopped this machine's events for good, or lost some (issue 20's review)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from comm_node_tui.cluster import events as ev_mod
from comm_node_tui.cluster.events import CURSOR_FILE, Cursor, event_id, head_of, read_after
from comm_node_tui.cluster.names import Names
from comm_node_tui.cluster.server import server_config
from comm_node_tui.protocol.events import Event, EventLog
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import queue
from tests.natskit import NatsServer, events, inbox_ids, machine, notes, running_server
from tests.waiting import wait_for

STEP_S = 60.0  # an engine's step on a loaded machine: generous, never paid when it works


@pytest.fixture
def nats_server(tmp_path):
    yield from running_server(tmp_path / "nats")


def raw(path, *lines: bytes) -> None:
    """Lines appended as another process does (`printf ... >> events.jsonl`)."""
    with open(path, "ab") as fh:
        for line in lines:
            fh.write(line + b"\n")


def line(msg: str, agent: str = "b", **data) -> bytes:
    rec = {"ts": "2026-11-22T09:00:00.000Z", "type": "test.note", "level": "info"}
    rec |= {"agent": agent, "msg": msg, "data": data}
    return json.dumps(rec, separators=(",", ":")).encode()


def read_all(path: str, pos, limit: int = 256, skipped=None) -> tuple[list[bytes], object]:
    got = []
    while True:
        lines, end = read_after(path, pos, limit, skipped)
        got += [x for _p, x in lines]
        if end == pos:
            return got, pos
        pos = end


# ---- no server ------------------------------------------------------------------------------


def test_a_line_longer_than_a_read_is_stepped_over_once_and_the_next_is_read(tmp_path):
    path = str(tmp_path / "events.jsonl")
    raw(path, line("before"), line("x" * (ev_mod.READ_BYTES + 10)), line("after"))
    skipped: list = []
    got, _ = read_all(path, (os.stat(path).st_ino, "", 0), skipped=skipped)
    assert [json.loads(x)["msg"] for x in got] == ["before", "after"]
    huge = len(line("before")) + 1
    assert skipped == [(path, huge, len(line("x" * (ev_mod.READ_BYTES + 10))) + 1)]


def test_a_file_that_took_the_cursors_inode_is_read_whole_with_every_kept_file(tmp_path):
    """ext4 gives a rotated-away file's inode to a new events.jsonl: the cursor's inode is
    then the newest file's, its head another's; every kept file is newer than the cursor."""
    path = str(tmp_path / "events.jsonl")
    log = EventLog(path, max_bytes=1000)
    i = 0
    while i < 30 or not os.path.exists(path):  # rotated after a write: one more then
        log.append(Event("test.note", f"n{i}", agent="b"))
        i += 1
    log.close()
    ino, head, size = head_of(path)
    assert os.path.exists(path.replace(".jsonl", ".1.jsonl"))
    # the cursor as it was in a file long gone whose inode the newest file has now
    gone = (ino, "0" * 16, size // 2)
    got, _ = read_all(path, gone)
    kept = [x for n in ev_mod.log_files(path) for x in Path(n).read_bytes().splitlines()]
    assert got == kept and len(kept) > size // 100  # all of it, none torn
    assert got[0].startswith(b'{"ts"') and got[-1] == kept[-1]
    # the same file, as the cursor recorded it: from its offset on
    here = read_after(path, (ino, head, size))
    assert here == ([], (ino, head, size))


def test_a_log_truncated_in_place_is_read_from_its_start(tmp_path):
    path = tmp_path / "events.jsonl"
    raw(path, line("old one"), line("old two"))
    ino, head, size = head_of(str(path))
    with open(path, "r+b") as fh:  # truncated, and written again past the old offset
        fh.truncate(0)
    raw(path, line("new, and longer than the old one was"), line("second new"))
    assert os.stat(path).st_ino == ino and os.path.getsize(path) > size
    got, _ = read_all(str(path), (ino, head, size))
    assert [json.loads(x)["msg"] for x in got] == [
        "new, and longer than the old one was",
        "second new",
    ]


def test_equal_lines_have_ids_of_their_own_and_a_line_read_again_the_same(tmp_path):
    path = str(tmp_path / "events.jsonl")
    same = line("again")
    raw(path, same, same)
    (p1, l1), (p2, l2) = read_after(path, (os.stat(path).st_ino, "", 0))[0]
    assert l1 == l2 and event_id("m2", p1, l1) != event_id("m2", p2, l2)
    again = read_after(path, (os.stat(path).st_ino, "", 0))[0]
    assert [event_id("m2", p, x) for p, x in again] == [
        event_id("m2", p1, l1),
        event_id("m2", p2, l2),
    ]


def test_a_cursor_nested_too_deep_is_one_line_and_the_log_end_is_used(tmp_path):
    log = tmp_path / "events.jsonl"
    EventLog(str(log)).append(Event("test.note", "old", agent="b"))
    (tmp_path / CURSOR_FILE).write_text("[" * 100_000 + "]" * 100_000)
    cursor = Cursor(str(tmp_path), str(log))
    assert cursor.problem == f"{tmp_path / CURSOR_FILE}: unreadable (RecursionError)"
    assert cursor.pos == head_of(str(log))
    assert Cursor(str(tmp_path), str(log)).problem == ""  # written anew: said once


# ---- a real server --------------------------------------------------------------------------


def in_stream(url: str, project: str) -> list[dict]:
    """What the events stream holds, oldest first (read with a client of the test's own)."""
    import nats

    async def read() -> list[dict]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            names = Names(project)
            info = await js.stream_info(names.events_stream)
            out: list[dict] = []
            if not info.state.messages:
                return out
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(names.events_stream, seq)
                out.append(json.loads(msg.data))
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


def faults(root) -> list[str]:
    return [e["msg"] for e in events(root, "cluster.fault")]


def test_lines_re_serialising_would_break_go_as_they_are_and_equal_lines_twice(
    tmp_path, nats_server, engine_for
):
    """A line near the 64 KiB limit (json.dumps' spaces made it bigger than the stream's
    message limit), one holding an escaped lone surrogate (not encodable again) and two
    equal lines: all reach the other room, in order, and the cursor passes them."""
    m1_root = machine(tmp_path / "m1", nats_server.url, "m1", ["a"])
    m2_root = machine(tmp_path / "m2", nats_server.url, "m2", ["b"])
    m1, m2 = engine_for(m1_root), engine_for(m2_root)
    wait_for(lambda: m1.relay._ready and m2.relay._ready, timeout=STEP_S, what="set up")
    big = line("big", files=list(range(11_000)))
    assert len(big) <= ev_mod.MAX_LINE < len(json.dumps(json.loads(big)).encode())
    lone = line("LONE").replace(b"LONE", b"\\ud800")  # as `printf` can write it
    twin = line("twin")
    raw(m2_root / ".comm-node" / "events.jsonl", line("first"), big, lone, twin, twin)
    m2.emit(Event("test.note", "last", agent="b"))
    wait_for(lambda: notes(m1)[-1:] == ["m2: last"], timeout=STEP_S, show=lambda: notes(m1))
    assert notes(m1) == ["m2: first", "m2: big", "m2: \ufffd", "m2: twin", "m2: twin", "m2: last"]
    assert not faults(m2_root)
    held = in_stream(nats_server.url, load_workspace(str(m2_root)).project)
    assert held[1]["data"]["files"][-1] == 10_999 and held[1]["node"] == "m2"


def test_a_line_the_stream_refuses_is_skipped_with_one_fault_naming_it(
    tmp_path, nats_server, engine_for
):
    """The events stream made (by an older engine, or by hand) with a smaller message
    limit: a line over it is refused; it is skipped with one fault naming where it is in the
    log, and the lines after it go."""
    import nats
    from nats.js.api import StreamConfig

    m2_root = machine(tmp_path / "m2", nats_server.url, "m2", ["b"])
    names = Names(load_workspace(str(m2_root)).project)

    async def small_stream() -> None:
        nc = await nats.connect(nats_server.url)
        try:
            await nc.jetstream().add_stream(
                StreamConfig(
                    name=names.events_stream, subjects=[names.all_events], max_msg_size=2000
                )
            )
        finally:
            await nc.close()

    asyncio.run(small_stream())
    m2 = engine_for(m2_root)
    wait_for(lambda: m2.relay.events.published >= 0 and m2.relay._events_ready, timeout=STEP_S)
    log = m2_root / ".comm-node" / "events.jsonl"
    too_big = line("too big", pad="x" * 3000)
    raw(log, line("before"))
    at = os.path.getsize(log) + len(too_big) + 1  # where the refused line ends
    raw(log, too_big, line("after"))
    m2.relay.events.wake()
    url, project = nats_server.url, load_workspace(str(m2_root)).project
    wait_for(
        lambda: [e["msg"] for e in in_stream(url, project)][-1:] == ["after"],
        timeout=STEP_S,
        show=lambda: in_stream(url, project),
    )
    assert [e["msg"] for e in in_stream(url, project)] == ["before", "after"]
    said = [f for f in faults(m2_root) if "refused" in f]
    assert len(said) == 1 and f"the line ending at byte {at} " in said[0], said
    wait_for(lambda: m2.relay.events.cursor.pos[2] == os.path.getsize(log), timeout=STEP_S)


def test_a_stream_that_refuses_this_machine_gives_one_fault_and_keeps_the_events(
    tmp_path, nats_server, engine_for
):
    """The events stream takes no subject of this node (made by hand so): every publish is
    refused. One fault however often the publisher tries; nothing skipped; once the stream
    takes the node's subject, every event goes, in order."""
    import nats
    from nats.js.api import StreamConfig

    m2_root = machine(tmp_path / "m2", nats_server.url, "m2", ["b"])
    names = Names(load_workspace(str(m2_root)).project)
    other = StreamConfig(name=names.events_stream, subjects=[names.events("elsewhere")])

    async def stream(config: StreamConfig, update: bool) -> None:
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            await (js.update_stream(config) if update else js.add_stream(config))
        finally:
            await nc.close()

    asyncio.run(stream(other, update=False))
    m2 = engine_for(m2_root)
    m2.emit(Event("test.note", "one", agent="b"))
    m2.emit(Event("test.note", "two", agent="b"))
    pub = m2.relay.events
    wait_for(lambda: pub.refusals >= 3, timeout=STEP_S, what="the publisher tried 3 times")
    said = [f for f in faults(m2_root) if "refused this machine's events" in f]
    assert len(said) == 1, said
    assert pub.published == 0

    other.subjects = [names.all_events]
    asyncio.run(stream(other, update=True))
    url, project = nats_server.url, load_workspace(str(m2_root)).project
    wait_for(lambda: [e["msg"] for e in in_stream(url, project)] == ["one", "two"], timeout=STEP_S)
    assert len([f for f in faults(m2_root) if "refused" in f]) == 1


def test_a_server_without_room_for_the_events_stream_leaves_mail_and_state_working(
    tmp_path, engine_for, monkeypatch
):
    """JetStream storage smaller than the events stream asks: the events are off (one fault
    however often it is tried again), mail between the machines and their state go on, and
    the retries start no task twice."""
    from comm_node_tui.cluster import relay

    # the retry pause (10 s) read at each retry: a second here, what is tried is the same
    monkeypatch.setattr(relay, "EVENTS_RETRY_S", 1.0)
    server = NatsServer(tmp_path / "nats")
    server.config = server_config(
        name="small", port=server.port, store_dir=str(tmp_path / "nats" / "js")
    ).replace("jetstream {", "jetstream { max_file_store: 32MB,")
    server.start()
    try:
        m1_root = machine(tmp_path / "m1", server.url, "m1", ["a"])
        m2_root = machine(tmp_path / "m2", server.url, "m2", ["b"])
        m1, m2 = engine_for(m1_root), engine_for(m2_root)
        wait_for(lambda: m1.relay._ready and m2.relay._ready, timeout=STEP_S, what="set up")
        wait_for(lambda: m2.relay.events_attempts >= 1, timeout=STEP_S)

        async def count() -> int:
            return len(asyncio.all_tasks())

        tasks = m2.relay.client.run(count)
        seen = m2.relay.events_attempts
        # one retry (EVENTS_RETRY_S later) is enough: a second fault or a task left behind
        # would show after it
        wait_for(lambda: m2.relay.events_attempts >= seen + 1, timeout=STEP_S, what="a retry")
        assert m2.relay.client.run(count) <= tasks
        said = [f for f in faults(m2_root) if "events stream could not be set up" in f]
        assert len(said) == 1, faults(m2_root)
        assert not [f for f in faults(m2_root) if f not in said]

        ident = queue(load_workspace(str(m2_root)).domains["b"], "a", "across, events off")

        def arrived() -> bool:
            m2.scan()  # no watcher in this engine: its router runs here
            return ident in inbox_ids(m1_root, "a")

        wait_for(arrived, timeout=STEP_S, what="mail from m2 to a on m1")
        m2.relay.publish_state({"b": {"state": "idle"}})
        wait_for(lambda: "m2" in m1.relay.remote_nodes, timeout=STEP_S, what="m2's state at m1")
        assert not m2.relay._events_ready
    finally:
        server.stop()


def test_local_domains_named_like_the_set_up_steps_leave_every_step_done(
    nats_server, engine_for, tmp_path
):
    """A domain may be called "state", "coord" or "ops": named like the relay's set-up steps,
    they were taken for them, and this machine never watched the other machines' state, its
    coordination mirror or their requests."""
    doms = ("state", "coord", "ops", "b")
    m1_root = machine(tmp_path / "m1", nats_server.url, "m1", ["state", "coord", "ops"], doms)
    m2_root = machine(tmp_path / "m2", nats_server.url, "m2", ["b"], doms)
    m1, m2 = engine_for(m1_root), engine_for(m2_root)
    wait_for(lambda: m1.relay._ready and m2.relay._ready, timeout=STEP_S, what="set up")
    m2.relay.publish_state({"b": {"state": "idle"}})
    wait_for(lambda: "m2" in m1.relay.remote_nodes, timeout=STEP_S, what="m2's state at m1")
    assert {"coord", "state", "ops"} <= m1.relay._begun
    assert {"mail:state", "mail:coord", "mail:ops"} <= m1.relay._begun


def test_another_nodes_event_that_utf8_cannot_hold_is_written_with_a_mark(tmp_path):
    """An escaped lone surrogate in another node's event (our publisher cleans them; an older
    or odd peer may not) stopped the remote log's writer and with it every later event: it is
    shown and written with `?` in its place. A message nested too deep is no event."""
    from comm_node_tui.cluster.events import shown
    from comm_node_tui.cluster.remote_log import RemoteLog, remote_log_path

    data = b'{"ts":"2026-11-22T09:00:00Z","type":"t","agent":"b","msg":"hi \\ud800","data":{},'
    ev = shown(data + b'"node":"m2"}')
    assert ev is not None and ev.msg == "m2: hi ?"
    log = RemoteLog(str(tmp_path))
    assert log.take(ev, 1, False)
    log.close()
    assert "m2: hi ?" in Path(remote_log_path(str(tmp_path))).read_text()
    assert shown(b"[" * 100_000 + b"]" * 100_000) is None
