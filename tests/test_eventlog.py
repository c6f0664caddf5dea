"""The event log: appends, rotation, the backwards tail reader, follow, and `comm-node log`."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading

from comm_node_tui.protocol.events import Event, EventLog, follow, log_files, tail
from tests.conftest import cli_env
from tests.waiting import wait_for


def test_rotation_keeps_a_bounded_number_of_files(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), max_bytes=2000, keep=3)
    for i in range(500):
        log.append(Event("test.tick", f"tick {i}", agent="a"))
    files = log_files(str(path))
    assert len(files) == 4  # events.jsonl + 3 rotated
    assert all((tmp_path / f).stat().st_size <= 2200 for f in files)
    last = tail(str(path), 5)
    assert [e.msg for e in last] == [f"tick {i}" for i in range(495, 500)]


def test_tail_reads_across_rotated_files_and_filters(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), max_bytes=1500, keep=5)
    for i in range(60):
        log.append(
            Event(
                "message.routed" if i % 2 else "agent.state", f"e{i}", agent="a" if i % 3 else "b"
            )
        )
    got = tail(str(path), 10, lambda e: e.type == "agent.state" and e.agent == "b")
    assert [e.msg for e in got] == [f"e{i}" for i in range(0, 60, 6)][-10:]


def test_torn_and_garbage_lines_are_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path))
    log.append(Event("a.one", "1"))
    with open(path, "ab") as fh:
        fh.write(b'\x00\xffgarbage\n[1,2]\n{"ts": 5}\n')
    log.append(Event("a.two", "2"))
    with open(path, "ab") as fh:
        fh.write(b'{"ts":"2026-01-01T00:00:00Z","type":"torn","ms')  # no newline: a crash
    assert [e.type for e in tail(str(path), 10)] == ["a.one", "a.two"]


def test_tail_of_a_huge_log_reads_only_the_end(tmp_path):
    path = tmp_path / "events.jsonl"
    with open(path, "wb") as fh:
        fh.truncate(4 * 1024**3)  # a sparse 4 GB prefix: reading it all would exhaust the test
        fh.seek(0, 2)
        for i in range(100):
            fh.write((json.dumps(Event("bulk.x", f"n{i}").to_json()) + "\n").encode())
    assert [e.msg for e in tail(str(path), 3)] == ["n97", "n98", "n99"]


def _following(path, stop) -> tuple[threading.Thread, list[str]]:
    """follow() in a thread from the file's end, once it has taken that end as its start;
    the messages it yields, as they come."""
    seen: list[str] = []
    started = threading.Event()

    def asked() -> bool:
        started.set()  # follow() asks first after it has taken the file's end as its start
        return stop()

    def reader():
        for ev in follow(str(path), poll_s=0.01, stop=asked):
            seen.append(ev.msg)

    t = threading.Thread(target=reader, daemon=True)  # a failed test must not hang pytest
    t.start()
    assert started.wait(30), "follow() never started"
    return t, seen


def test_follow_survives_rotation(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), max_bytes=600, keep=2)
    log.append(Event("before.start", "old"))
    done = threading.Event()
    t, seen = _following(path, done.is_set)
    for i in range(30):
        log.append(Event("x.y", f"n{i}"))
        # one rotation at a time: the reader has what the writer wrote before it goes on
        wait_for(lambda i=i: len(seen) > i, timeout=30, show=lambda: seen)
    done.set()
    t.join(timeout=5)
    assert seen == [f"n{i}" for i in range(30)]


def test_follow_reads_the_rotated_files_it_slept_through(tmp_path):
    """A reader starved through several rotations (`log -f` on a loaded machine during a
    burst) reads the files in between, oldest first, while the log keeps them; it used to
    jump to the newest file and lose the events in between."""
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), max_bytes=600, keep=20)
    done, awake = threading.Event(), threading.Event()
    awake.set()

    def stop() -> bool:
        assert awake.wait(60), "the test never woke the reader"
        return done.is_set()

    t, seen = _following(path, stop)
    log.append(Event("x.y", "n0"))
    wait_for(lambda: seen == ["n0"], timeout=30, show=lambda: seen)
    awake.clear()  # the reader stops at its next look, with n0's file open
    for i in range(1, 40):
        log.append(Event("x.y", f"n{i}"))
    rotated = [p for p in tmp_path.iterdir() if p.name != "events.jsonl"]
    assert len(rotated) >= 3, rotated  # several rotations while it slept
    awake.set()
    wait_for(lambda: len(seen) >= 40, timeout=30, show=lambda: seen)
    done.set()
    t.join(timeout=5)
    assert seen == [f"n{i}" for i in range(40)]


def test_log_cli_filters_and_json(ws_root, cli, engine_for):
    eng = engine_for(ws_root)
    cli("send", "--to", "docs", "hello", cwd=ws_root / "backend")
    cli("send", "--to", "ghost-domain-bypass", "x", cwd=ws_root / "backend")  # refused by CLI
    (ws_root / "frontend" / ".comm-node" / "outbox" / "bad.md").write_text("garbage")
    import os

    os.utime(ws_root / "frontend" / ".comm-node" / "outbox" / "bad.md", (1, 1))
    eng.scan()
    res = cli("log", "--json", "--type", "message", cwd=ws_root)
    types = [json.loads(line)["type"] for line in res.stdout.splitlines()]
    assert types == ["message.routed", "message.bounced"]
    res = cli("log", "--agent", "frontend", "--level", "error", cwd=ws_root)
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and "ERROR message.bounced [frontend]" in lines[0]
    res = cli("log", "-n", "1", cwd=ws_root)
    assert len(res.stdout.splitlines()) == 1


def test_log_follow_prints_new_events(ws_root, engine_for):
    eng = engine_for(ws_root)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "comm_node_tui",
            "log",
            "--follow",
            "-n",
            "0",
            "--type",
            "test.ping",
            "-w",
            str(ws_root),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        # It follows from the end once it has started: ping until it prints one.
        def prints_a_ping() -> bool:
            eng.emit(Event("test.ping", "ready?", agent="docs"))
            return bool(select.select([proc.stdout], [], [], 0.2)[0])

        wait_for(prints_a_ping, every=0, what="`log --follow` to print a ping")
        eng.emit(Event("test.ping", "first", agent="docs"))
        eng.emit(Event("test.other", "hidden"))
        eng.emit(Event("test.ping", "second \x1b[31m[red]", agent="docs"))
        lines: list[str] = []
        while len(lines) < 2:
            line = proc.stdout.readline()
            assert line, "`log --follow` ended"
            if "ready?" not in line:
                lines.append(line)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert "test.ping [docs] first" in lines[0]
    # Escape sequences from agents are shown, not interpreted by the terminal.
    assert "second \\x1b[31m[red]" in lines[1]


def test_follow_reads_what_was_written_just_before_a_rotation(tmp_path, monkeypatch):
    """The writer appends and rotates between the reader's empty read and its look at the
    path: the old file's last line is read before the reader moves to the new file (it was
    lost). The look is where the writer is made to run, so the interleaving is exact."""
    from comm_node_tui.protocol import events as events_mod

    path = str(tmp_path / "events.jsonl")
    log = EventLog(path, max_bytes=10**9)
    log.append(Event("x.y", "n0"))
    real_stat = os.stat
    armed = [True]

    def stat(p, *a, **k):
        if armed[0] and p == path:
            armed[0] = False
            log.append(Event("x.y", "n1"))
            log.rotate()
            log.append(Event("x.y", "n2"))
        return real_stat(p, *a, **k)

    monkeypatch.setattr(events_mod.os, "stat", stat)
    seen: list[str] = []
    looks = iter(range(200))  # a bounded number of looks: the lost line never comes

    def stop() -> bool:
        return len(seen) >= 3 or next(looks, None) is None

    for ev in follow(path, from_end=False, poll_s=0.001, stop=stop):
        seen.append(ev.msg)
    assert seen == ["n0", "n1", "n2"]
