"""Faults: the engine SIGKILLed under load, the tmux server killed under the control room,
a domain directory removed mid-run, a write that fails (file size limit), two control rooms
on one workspace. Nothing is lost, nothing doubled, the state stays consistent."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from comm_node_tui.protocol.messages import split
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, queue, run_cli, start_serve, write_workspace
from tests.waiting import until, wait_for

WORKER = r"""
import json, os, random, sys, time
sys.path.insert(0, {repo!r})
from comm_node_tui.workspace.discovery import load_workspace
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.errors import ConflictError, CommNodeError
from comm_node_tui.protocol.mailbox import write_outbox
from comm_node_tui.protocol.messages import new_message_id, now_iso

ws = load_workspace({root!r})
me = ws.domains[{name!r}]
peers = [d for d in ws.domains if d != me.name]
coord = Coordinator(ws)
rng = random.Random({seed})
sent, held, claimed = [], set(), []
for i in range({n}):
    ident = new_message_id()
    to = [rng.choice(peers)]
    write_outbox(me.paths, {{"id": ident, "from": me.name, "to": to, "type": "info",
                            "created": now_iso()}}, f"{{me.name}} {{i}}")
    sent.append((ident, to))
    pattern = f"src/f{{rng.randrange(6)}}.py"
    try:
        if pattern in held:
            coord.release(me.name, [pattern])
            held.discard(pattern)
        else:
            coord.acquire(me, [pattern])
            held.add(pattern)
    except (ConflictError, CommNodeError):
        pass
    if i % 7 == 0:
        for t in coord.load_tasks()[1].ready:
            try:
                coord.claim(me, t)
                claimed.append(t)
                break
            except (ConflictError, CommNodeError):
                continue
json.dump({{"sent": sent, "held": sorted(held), "claimed": claimed}},
          open({out!r}, "w"))
"""


def _serve(root: Path, **popen) -> subprocess.Popen:
    return start_serve(root, **popen)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    return err


def _outboxes_empty(root: Path, names) -> bool:
    return all(not list((root / n / ".comm-node" / "outbox").glob("*.md")) for n in names)


def test_sigkill_during_messages_locks_and_claims(tmp_path: Path) -> None:
    names = [f"a{i}" for i in range(4)]
    root = write_workspace(
        tmp_path / "ws",
        domains=names,
        extra='[tasks]\nsource = "native"\n',
        domain_extra={n: 'scope = ["src/**"]' for n in names},
    )
    (root / "tasks.toml").write_text(
        "".join(f'[[tasks]]\nid = "T{i}"\ntitle = "task {i}"\n' for i in range(12))
    )
    repo = str(Path(__file__).resolve().parents[1])
    engine = _serve(root)
    wait_for(lambda: (root / ".comm-node" / "events.jsonl").exists(), timeout=20)
    workers = []
    for i, name in enumerate(names):
        script = WORKER.format(
            repo=repo, root=str(root), name=name, seed=i, n=150, out=str(tmp_path / f"{name}.json")
        )
        workers.append(subprocess.Popen([sys.executable, "-c", script], env=cli_env()))
    kills = 0
    for _ in range(3):  # kill the engine three times while the agents keep going
        time.sleep(0.4)  # the engine works a while between kills: the fault under test
        if engine.poll() is None:
            engine.kill()
            engine.wait(timeout=10)
            kills += 1
        engine = _serve(root)
    for w in workers:
        assert w.wait(timeout=120) == 0
    try:
        wait_for(lambda: _outboxes_empty(root, names), timeout=60)
    finally:
        err = _stop(engine)
    assert "Traceback" not in err, err
    assert kills == 3
    results = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in names}
    # messages: each copy delivered exactly once
    delivered: Counter = Counter()
    for r in names:
        for f in (root / r / ".comm-node" / "inbox").glob("*.md"):
            delivered[(r, split(f.read_text())[0]["id"])] += 1
    expected = Counter(
        (to, ident) for res in results.values() for ident, tos in res["sent"] for to in tos
    )
    assert sum(expected.values()) == 4 * 150
    assert delivered == expected
    # locks: exactly what each agent believes it holds, and the file is whole
    locks = json.loads(run_cli("lock", "list", "--json", cwd=root).stdout)
    held = sorted((lk["holder"], lk["pattern"]) for lk in locks)
    assert held == sorted((n, p) for n, res in results.items() for p in res["held"])
    # claims: every task claimed once at most, by the agent that was told it won
    tasks = json.loads(run_cli("task", "list", "--json", cwd=root).stdout)
    assignees = {t["id"]: t["assignee"] for t in tasks if t["assignee"]}
    claimed = [(t, n) for n, res in results.items() for t in res["claimed"]]
    assert len({t for t, _ in claimed}) == len(claimed)  # no task won twice
    assert dict(claimed) == assignees


def test_a_domain_directory_removed_mid_run(tmp_path: Path, engine_for) -> None:
    import shutil

    root = write_workspace(tmp_path / "ws")
    eng = engine_for(root)
    ws = eng.ws
    be = ws.domains["backend"]
    shutil.rmtree(root / "frontend")
    eng.tick()
    assert any(e.type == "domain.missing" and e.agent == "frontend" for e in eng.recent)
    to_front = queue(be, "frontend", "for frontend")
    to_docs = queue(be, "docs", "for docs")
    eng.scan()
    # docs got its mail; frontend's comes back to the sender with the reason (nothing lost),
    # and frontend's directory is not re-created behind the operator's back
    assert (root / "docs" / ".comm-node" / "inbox" / f"{to_docs}.md").exists()
    assert not (root / "frontend").exists()
    bounce = (root / "backend" / ".comm-node" / "inbox" / f"b-{to_front}.md").read_text()
    assert "has no directory" in bounce and "for frontend" in bounce
    eng.snapshot()  # the world still renders
    # the directory comes back: mail flows again
    (root / "frontend").mkdir()
    eng.tick()
    assert any(e.type == "domain.back" for e in eng.recent)
    again = queue(be, "frontend", "again")
    eng.scan()
    inbox = list((root / "frontend" / ".comm-node" / "inbox").glob("*.md"))
    assert [p.name for p in inbox] == [f"{again}.md"]
    # a domain whose outbox turns into a file, or whose directory becomes unreadable
    outbox = root / "docs" / ".comm-node" / "outbox"
    shutil.rmtree(outbox)
    outbox.write_text("not a directory")
    os.chmod(root / "docs", 0)
    try:
        eng.scan()
        eng.tick()
        eng.snapshot()
        if os.geteuid() != 0:  # root reads through mode 0; everyone else does not
            assert any(e.type == "domain.missing" and e.agent == "docs" for e in eng.recent)
    finally:
        os.chmod(root / "docs", 0o755)
    # and routing between the others goes on
    ident = queue(be, "frontend", "still routing")
    eng.scan()
    assert (root / "frontend" / ".comm-node" / "inbox" / f"{ident}.md").exists()


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_write_that_fails_loses_and_corrupts_nothing(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", extra="[router]\nmax_message_bytes = 1048576\n")
    ws = load_workspace(str(root))
    be = ws.domains["backend"]
    # history that must survive: a delivered message and a ledger
    engine = _serve(root)
    first = queue(be, "frontend", "first")
    inbox = root / "frontend" / ".comm-node" / "inbox"
    wait_for(lambda: (inbox / f"{first}.md").exists(), timeout=20)
    _stop(engine)
    before = {p: p.read_bytes() for p in (root / ".comm-node").rglob("*") if p.is_file()}
    before_inbox = (inbox / f"{first}.md").read_bytes()
    # the engine again, now unable to write any file over 64 KB: a 200 KB message fails
    big = queue(be, "frontend", "x" * 200_000)
    small = queue(be, "docs", "small")
    engine = _serve(root, preexec_fn=_limit_file_size(64 * 1024))
    try:
        wait_for(
            lambda: (root / "docs" / ".comm-node" / "inbox" / f"{small}.md").exists(), timeout=20
        )
        events = root / ".comm-node" / "events.jsonl"
        wait_for(lambda: "message.deferred" in events.read_text(), timeout=20)
        assert engine.poll() is None  # still running
    finally:
        err = _stop(engine)
    assert "Traceback" not in err, err
    assert not (inbox / f"{big}.md").exists()
    assert not [p for p in inbox.iterdir() if p.name.startswith(".")]  # no torn temp files
    assert (inbox / f"{first}.md").read_bytes() == before_inbox
    for line in Path(ws.paths.ledger).read_text().splitlines():  # every line still parses
        json.loads(line)
    for p in before:
        if p.exists() and p.suffix == ".json" and p.parent == Path(ws.paths.state):
            json.loads(p.read_text())  # rewritten maybe, never torn
    # the disk has room again: the big message goes through, once
    engine = _serve(root)
    try:
        wait_for(lambda: (inbox / f"{big}.md").exists(), timeout=20)
        wait_for(lambda: _outboxes_empty(root, ["backend"]), timeout=20)
    finally:
        _stop(engine)
    assert len(split((inbox / f"{big}.md").read_text())[1]) >= 200_000
    assert sorted(p.name for p in inbox.glob("*.md")) == sorted([f"{first}.md", f"{big}.md"])


async def test_tmux_server_killed_under_the_control_room(tmp_path: Path, monkeypatch) -> None:
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.tui.app import ControlRoom

    socket = f"cn-fault-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = write_workspace(
        tmp_path / "ws",
        domains=("alpha", "beta"),
        agents=f'command = "{sys.executable} -m comm_node_tui.demo.fake_agent"',
    )
    ws = load_workspace(str(root))
    AgentPanes(ws).up()
    app = ControlRoom(ws)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.bridge.engine and app.bridge.engine.panes, every=0.1)
            app_engine = app.bridge.engine
            app_engine.screens.poll_s = 0.3
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
            await until(
                pilot,
                lambda: any(e.type == "tmux.session_lost" for e in app_engine.recent),
                every=0.1,
                show=lambda: [e.type for e in app_engine.recent],
            )
            # the room still works: keys, refreshes, the preview says there is no pane
            await pilot.press("2", "1", "v", "escape")
            before = app.world
            app.request_refresh()
            await until(pilot, lambda: app.world is not before, what="a world read after it")
            assert app.is_running and app.query_one("#agents").row_count == 2

            def all_dead() -> bool:
                if {a.state for a in (app.world.agents if app.world else ())} == {"dead"}:
                    return True
                app.request_refresh()
                return False

            await until(pilot, all_dead, every=0.2, show=lambda: app.world)
            # `comm-node up` brings the agents back, and the room sees them
            r = run_cli("up", cwd=root, env=cli_env(COMM_NODE_TMUX_SOCKET=socket))
            assert r.returncode == 0, r.stderr
            await until(
                pilot,
                lambda: any(e.type == "tmux.session_back" for e in app_engine.recent),
                every=0.1,
                show=lambda: [e.type for e in app_engine.recent],
            )
            await until(
                pilot,
                lambda: (
                    len(app_engine.panes) == 2
                    and all(not p.get("dead") for p in app_engine.panes.values())
                ),
                every=0.1,
                show=lambda: app_engine.panes,
            )
            assert app.is_running
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_two_control_rooms_on_one_workspace(tmp_path: Path) -> None:
    """Two real `comm-node` control rooms in two terminals (tmux panes of a private
    server): the first runs the engine, the second watches it; mail is routed once."""
    socket = f"cn-rooms-{os.getpid()}-{os.urandom(3).hex()}"
    root = write_workspace(tmp_path / "ws")
    env = cli_env(COMM_NODE_TMUX_SOCKET=socket + "-agents")
    cmd = f"{sys.executable} -m comm_node_tui --workspace {root}"
    envs = " ".join(f"{k}={v}" for k, v in env.items() if k.startswith("COMM_NODE"))
    tm = ["tmux", "-L", socket]
    try:
        subprocess.run(
            [*tm, "new-session", "-d", "-x", "160", "-y", "45", "-s", "one", f"env {envs} {cmd}"],
            check=True,
            timeout=10,
        )
        events = root / ".comm-node" / "events.jsonl"
        wait_for(lambda: events.exists() and "engine.started" in events.read_text(), timeout=30)
        subprocess.run(
            [*tm, "new-session", "-d", "-x", "160", "-y", "45", "-s", "two", f"env {envs} {cmd}"],
            check=True,
            timeout=10,
        )

        def screen(s: str) -> str:
            return subprocess.run(
                [*tm, "capture-pane", "-p", "-t", f"={s}:"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout

        wait_for(lambda: "viewer of" in screen("two"), timeout=30)
        # one holds the engine (its header says so once its start is through)
        wait_for(lambda: "· engine" in screen("one"), timeout=30)
        assert "viewer of" not in screen("one")
        ws = load_workspace(str(root))
        ids = [queue(ws.domains["backend"], "frontend", f"hello {i}") for i in range(20)]
        inbox = root / "frontend" / ".comm-node" / "inbox"
        wait_for(lambda: len(list(inbox.glob("*.md"))) == 20, timeout=30)
        # the viewer shows the routing it did not do
        wait_for(lambda: "message.routed" in screen("two"), timeout=30)
        assert sorted(p.stem for p in inbox.glob("*.md")) == sorted(ids)
        assert events.read_text().count('"engine.started"') == 1
        # both rooms leave cleanly
        for s in ("two", "one"):
            subprocess.run([*tm, "send-keys", "-t", f"={s}:", "q"], timeout=10)
        wait_for(lambda: "engine.stopped" in events.read_text(), timeout=30)
    finally:
        subprocess.run([*tm, "kill-server"], capture_output=True, timeout=10)
