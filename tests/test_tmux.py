"""Agent panes in a real tmux server on a private socket, with a fake Claude-like agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.adapters.tmux import TmuxError
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.panes.inject import NotDelivered
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.panes.processes import alive, descendants, kill_trees
from comm_node_tui.protocol.events import tail
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env
from tests.waiting import wait_for

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"


def records(root: Path, name: str) -> list[dict]:
    path = root / f"{name}.log"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines()]


def submits(root: Path, name: str) -> list[str]:
    return [r["text"] for r in records(root, name) if r["event"] == "submit"]


@pytest.fixture
def socket_name(monkeypatch):
    name = f"cn-test-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", name)
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, timeout=10)


def make_ws(
    root: Path, layout: str = "windows", stubborn: bool = False, busy_s: float | None = None
) -> Path:
    root.mkdir(parents=True)
    parts = [f'[project]\nname = "tmuxtest"\n[tmux]\nlayout = "{layout}"\n']
    for name in ("alpha", "beta"):
        (root / name).mkdir()
        extra = " --ignore-signals" if stubborn and name == "beta" else ""
        extra += "" if busy_s is None else f" --busy {busy_s:g}"
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\n'
            f'command = "{AGENT} --log {root / name}.log{extra}"\n'
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    return root


@pytest.fixture
def panes(tmp_path, socket_name):
    root = make_ws(tmp_path / "ws", stubborn=True)
    return up(root), root


def up(root: Path) -> AgentPanes:
    """The workspace's agents started, each at its prompt."""
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    for name in ("alpha", "beta"):
        wait_for(lambda n=name: "❯" in ap.peek(n))
    return ap


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=10
    ).stdout.strip()


def test_up_creates_session_windows_env_history_and_adopts(panes, socket_name):
    ap, root = panes
    windows = tmux(socket_name, "list-windows", "-t", "=cn-tmuxtest", "-F", "#{window_name}")
    assert windows.split() == ["comm-node", "alpha", "beta"]
    start = records(root, "alpha")[0]
    assert start["domain"] == "alpha" and start["workspace"] == str(root)
    assert start["cwd"] == str(root / "alpha")
    info = tmux(
        socket_name,
        "display",
        "-p",
        "-t",
        "=cn-tmuxtest:=alpha",
        "#{history_limit} #{window_width}x#{window_height} #{remain-on-exit}",
    )
    assert info == "50000 200x50 on"
    again = ap.up()
    assert [r["action"] for r in again] == ["adopted", "adopted"]
    assert len([r for r in records(root, "alpha") if r["event"] == "start"]) == 1


def test_tiled_layout(tmp_path, socket_name):
    root = make_ws(tmp_path / "ws", layout="tiled")
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    windows = tmux(
        socket_name, "list-windows", "-t", "=cn-tmuxtest", "-F", "#{window_name}:#{window_panes}"
    )
    assert windows.split() == ["comm-node:1", "agents:2"]
    assert set(ap.tmux.panes()) == {"alpha", "beta"}


TEXTS = [
    "one line",
    "first line\nsecond line\n\nfourth after a blank",
    "x" * 10_000,
    "-leading dash",
    "ends with a semicolon;",
    "#{pane_id} #(echo hi) $(whoami)",
    "Enter",
    "C-c",
    "unicode: naïve café ✓ 日本語 🚀",
    "tabs\tbetween\twords",
    "; ;",
]


def test_injection_arrives_exactly(tmp_path, socket_name):
    # the agent at rest again as soon as it can be (the fake agent's --busy 0): each text
    # waits for the prompt, and a turn's length is nothing this test looks at
    root = make_ws(tmp_path / "ws", busy_s=0)
    ap = up(root)
    for text in TEXTS:
        result = ap.inject("alpha", text)
        assert result["confirmed"], (text[:40], result)
        wait_for(lambda t=text: submits(root, "alpha")[-1:] == [t], timeout=10)
    assert submits(root, "alpha") == TEXTS
    log = (root / ".comm-node" / "events.jsonl").read_text()
    assert log.count('"agent.injected"') == len(TEXTS)


def test_cli_inject_from_stdin_and_peek(panes, socket_name):
    _ap, root = panes
    env = cli_env(COMM_NODE_TMUX_SOCKET=socket_name)
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "inject", "beta", "-"],
        input="from stdin\nsecond\n",
        text=True,
        capture_output=True,
        cwd=root,
        env=env,
        timeout=30,
    )
    assert res.returncode == 0, res.stderr
    wait_for(lambda: submits(root, "beta") == ["from stdin\nsecond"])
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "peek", "beta"],
        text=True,
        capture_output=True,
        cwd=root,
        env=env,
        timeout=30,
    )
    assert res.returncode == 0 and "fake-claude · beta" in res.stdout
    assert "\x1b" not in res.stdout


def test_interrupt_stops_a_busy_agent(panes):
    ap, root = panes
    ap.inject("alpha", "!busy 30")
    wait_for(lambda: "esc to interrupt" in ap.peek("alpha"))
    ap.interrupt("alpha")
    wait_for(lambda: any(r["event"] == "interrupt" for r in records(root, "alpha")))
    wait_for(lambda: "esc to interrupt" not in ap.peek("alpha"))


def test_kill_reaps_a_process_that_ignores_hup_and_term(panes):
    ap, _root = panes
    ws = ap.ws
    Coordinator(ws).acquire(ws.domains["beta"], ["src/**"])
    pid = ap.tmux.panes()["beta"].pid
    result = ap.kill("beta", grace_s=0.5)
    assert pid in result["killed"]  # TERM was ignored: it took KILL
    assert not alive(pid)
    assert "beta" not in ap.tmux.panes()
    assert Coordinator(ws).locks() == []
    with pytest.raises(Exception, match="comm-node up beta"):
        ap.inject("beta", "hello")


def test_restart_gives_a_new_process(panes):
    ap, root = panes
    old = ap.tmux.panes()["alpha"].pid
    out = ap.restart("alpha")
    assert out["pid"] != old and not alive(old)
    wait_for(lambda: len([r for r in records(root, "alpha") if r["event"] == "start"]) == 2)
    ap.inject("alpha", "after restart")
    wait_for(lambda: submits(root, "alpha")[-1:] == ["after restart"])


def test_an_exited_agent_stays_visible_and_is_reported_dead(panes, engine_for):
    ap, root = panes
    with pytest.raises(NotDelivered, match="exited after Enter"):
        ap.inject("alpha", "!exit 3")
    # tmux sees the pty close before it reaps the exit status (and under load may not
    # reap at all: the adapter then reads the zombie's status from /proc).
    try:
        wait_for(lambda: ap.tmux.panes()["alpha"].dead_status is not None)
    except AssertionError:
        p = ap.tmux.panes()["alpha"]
        stat = Path(f"/proc/{p.pid}/stat")
        raise AssertionError(
            f"dead={p.dead} status={p.dead_status} proc="
            f"{stat.read_text() if stat.exists() else 'gone'}"
        ) from None
    pane = ap.tmux.panes()["alpha"]
    assert pane.dead
    assert pane.dead_status == 3
    with pytest.raises(Exception, match=r"has exited \(status 3"):
        ap.inject("alpha", "x")
    eng = engine_for(root)
    eng.screens.apply(eng.screens.read())
    dead = [e for e in eng.recent if e.type == "agent.dead"]
    assert len(dead) == 1 and dead[0].agent == "alpha" and dead[0].level == "error"
    alpha = eng.snapshot().agent("alpha")
    assert alpha.state == "dead" and alpha.pane.exit_status == 3
    ap.restart("alpha")
    wait_for(lambda: not ap.tmux.panes()["alpha"].dead)


def test_a_killed_tmux_server_is_a_clear_error(panes, socket_name, engine_for):
    ap, root = panes
    tmux(socket_name, "kill-server")
    with pytest.raises(TmuxError, match="not running"):
        ap.peek("alpha")
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "peek", "alpha"],
        text=True,
        capture_output=True,
        cwd=root,
        timeout=30,
        env=cli_env(COMM_NODE_TMUX_SOCKET=socket_name),
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1
    eng = engine_for(root)
    assert eng.screens.read().states is None  # reported, not raised
    # and `up` brings it back
    ap.up()
    wait_for(lambda: "❯" in ap.peek("alpha"))


def test_missing_tmux_is_a_clear_error(tmp_path):
    root = make_ws(tmp_path / "ws")
    env = cli_env(PATH="/nonexistent")
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "up"],
        text=True,
        capture_output=True,
        cwd=root,
        env=env,
        timeout=30,
    )
    assert res.returncode == 1
    assert "tmux is not installed" in res.stderr and "Traceback" not in res.stderr


def test_down_stops_everything(panes, socket_name):
    ap, _root = panes
    pids = [p.pid for p in ap.tmux.panes().values()]
    out = ap.down()
    assert sorted(out["killed"]) == ["alpha", "beta"]
    assert not any(alive(p) for p in pids)
    assert not ap.tmux.has_session()


def test_down_stops_four_stubborn_agents_together_and_leaves_no_process(tmp_path, socket_name):
    """Agents that ignore HUP and TERM (as Claude Code does HUP) each used to cost the whole
    grace period in turn; now one round of signals covers them all. What is asserted is the
    outcome (docs/benchmarks.md has the time): no process of any tree is left, and only
    then is the session gone."""
    root = tmp_path / "ws"
    root.mkdir()
    names = ["a1", "a2", "a3", "a4"]
    parts = ['[project]\nname = "downtest"\n']
    for name in names:
        (root / name).mkdir()
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\n'
            f'command = "{AGENT} --log {root / name}.log --ignore-signals"\n'
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    for name in names:
        wait_for(lambda n=name: "❯" in ap.peek(n))
    trees = {name: descendants(pane.pid) for name, pane in ap.tmux.panes().items()}
    assert sorted(trees) == names
    for tree in trees.values():  # the stubborn agent itself is in each tree
        assert any(b"fake_agent" in Path(f"/proc/{p}/cmdline").read_bytes() for p in tree)
    out = ap.down()
    assert sorted(out["killed"]) == names
    assert [p for t in trees.values() for p in t if alive(p)] == []
    assert not ap.tmux.has_session()
    ended = tail(ap.ws.paths.events, where=lambda e: e.type == "tmux.down")
    assert ended[-1].level == "info" and "left" not in ended[-1].data


def test_kill_trees_signals_every_tree_in_one_round(tmp_path):
    """Three trees, two that ignore TERM and one that obeys: one shared grace period, the
    obedient one needs no KILL, the stubborn ones and their children all go."""
    stubborn = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    obedient = "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for code in (stubborn, stubborn, obedient)
    ]
    try:
        for p in procs:
            assert p.stdout.readline() == "ready\n"
        wait_for(lambda: all(len(descendants(p.pid)) == 2 for p in procs[:2]))
        out = kill_trees([p.pid for p in procs], grace_s=0.5)
        for p in procs:
            p.wait(timeout=10)  # reap, so they no longer count as alive zombies
        stubborn_trees = [out[p.pid] for p in procs[:2]]
        assert all(len(t["pids"]) == 2 and t["killed"] == t["pids"] for t in stubborn_trees)
        assert out[procs[2].pid]["killed"] == []
        everyone = [pid for r in out.values() for pid in r["pids"]]
        wait_for(lambda: not any(alive(pid) for pid in everyone))
        assert all(r["left"] == [] for r in out.values())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_states_capture_only_panes_with_new_activity(panes):
    ap, _root = panes
    # until the start-up drawing is older than tmux's one-second resolution of activity
    # (a capture in the same second is not trusted)
    wait_for(
        lambda: all(time.time() > p.activity + 1 for p in ap.tmux.panes().values()),
        what="the panes' last activity over a second old",
    )
    ap.states()
    first = ap.captures
    time.sleep(2.2)  # "nothing happens for 2 s" is the behaviour under test
    states = ap.states()
    assert ap.captures == first  # nothing happened: nothing captured
    assert states["alpha"]["screen_state"] == "idle"
    ap.inject("alpha", "!busy 5")
    wait_for(lambda: ap.states()["alpha"]["screen_state"] == "busy")
    assert ap.captures > first


def test_attach_from_a_real_terminal(panes, socket_name, tmp_path):
    """`comm-node attach` run in a terminal (a pane of another tmux server) attaches to the
    agents' session at that agent's window."""
    _ap, root = panes
    outer = socket_name + "-outer"
    cmd = (
        f"cd {root} && env -u TMUX COMM_NODE_TMUX_SOCKET={socket_name} "
        f"{sys.executable} -m comm_node_tui attach beta"
    )
    subprocess.run(
        ["tmux", "-L", outer, "new-session", "-d", "-s", "term", "-x", "120", "-y", "40", cmd],
        check=True,
        timeout=10,
    )
    try:
        clients = wait_for(
            lambda: tmux(socket_name, "list-clients", "-F", "#{client_session}:#{window_name}")
        )
        assert clients == "cn-tmuxtest:beta"
    finally:
        subprocess.run(["tmux", "-L", outer, "kill-server"], capture_output=True, timeout=10)


def test_one_delivery_at_a_time_per_agent_and_never_a_merged_prompt(panes):
    """Two deliveries that both saw an empty box would paste into it together and submit one
    merged prompt (seen with real Claude Code): a typing lock per agent, across processes,
    and Enter only when the box holds exactly this text."""
    from comm_node_tui.panes.manager import typing_lock

    ap, root = panes
    with typing_lock(ap.ws, "alpha", 1.0):
        with pytest.raises(NotDelivered) as held:
            ap.inject("alpha", "second writer", ready_timeout_s=0.3)
        assert held.value.reason == "busy" and not held.value.typed
    # someone typed into the box: our paste would join it, so nothing is submitted
    pane = ap.tmux.panes()["alpha"].id
    ap.tmux.cmd("send-keys", "-t", pane, "-l", "half-typed by the operator")
    wait_for(lambda: "half-typed" in ap.peek("alpha"))
    with pytest.raises(NotDelivered) as occupied:
        ap.inject("alpha", "from comm-node", ready_timeout_s=0.3)
    assert occupied.value.reason == "occupied"
    assert submits(root, "alpha") == []


def control_clients(socket: str) -> list[str]:
    out = tmux(socket, "list-clients", "-F", "#{client_control_mode} #{client_pid}")
    return [line.split()[1] for line in out.splitlines() if line.startswith("1 ")]


def test_the_engine_reads_screens_through_one_quiet_control_client(panes, socket_name, engine_for):
    """One `tmux -C` client (no pane output, no size) carries the engine's reads; when it
    dies the reads go on through tmux processes, and it comes back after CONTROL_RETRY_S;
    the engine's stop detaches it."""
    import signal

    from comm_node_tui.engine.clock import ManualClock
    from comm_node_tui.engine.screens import CONTROL_POLL_S, CONTROL_RETRY_S

    ap, root = panes
    clock = ManualClock()
    eng = engine_for(root, clock=clock)
    first = eng.screens.read()
    assert first.states is not None and set(first.states) == {"alpha", "beta"}

    def failures() -> list[str]:
        return [e.msg for e in list(eng.recent) if e.type == "tmux.control_failed"]

    # the client's attach completes in tmux after the first read: listed a moment later
    wait_for(
        lambda: control_clients(socket_name) or failures(),
        what="a control client, or a tmux.control_failed event saying why not",
    )
    if not control_clients(socket_name):
        # The first attach failed (three times in full runs, never alone; the event says why:
        # the next failure will): the reads went through tmux processes, and the engine
        # attaches again after CONTROL_RETRY_S, which is what a user's engine does
        assert failures(), "no control client, and no tmux.control_failed event saying why"
        clock.advance(CONTROL_RETRY_S)
        assert eng.screens.read().states is not None
    [pid] = wait_for(lambda: control_clients(socket_name), show=failures)
    flags = tmux(socket_name, "list-clients", "-F", "#{client_flags}").split(",")
    assert {"no-output", "ignore-size", "read-only"} <= set(flags), flags
    assert eng.screens.period_s == CONTROL_POLL_S
    # the screen read through the client is the pane's, character for character
    ap.inject("alpha", "echo through the control client")
    wait_for(lambda: "echo through the control client" in ap.peek("alpha"))
    eng.screens.apply(eng.screens.read())
    assert eng.panes["alpha"]["screen_state"] in ("idle", "busy")
    os.kill(int(pid), signal.SIGKILL)
    wait_for(lambda: control_clients(socket_name) == [])
    again = eng.screens.read()  # through a tmux process now: same panes
    assert again.states is not None and set(again.states) == {"alpha", "beta"}
    assert control_clients(socket_name) == []  # not before CONTROL_RETRY_S
    assert eng.screens.period_s == eng.screens.poll_s
    clock.advance(CONTROL_RETRY_S)
    assert eng.screens.read().states is not None
    # attached again: listed a moment after the read, as at the first attach (this assert
    # read the list at once and failed a quiet full run)
    assert len(wait_for(lambda: control_clients(socket_name), show=failures)) == 1
    eng.stop()
    wait_for(lambda: control_clients(socket_name) == [])


def test_a_stopped_tmux_server_is_a_one_line_error_not_a_hang(panes, socket_name):
    """A stopped (or hung) server keeps a killed tmux client's pipes open: a reader of those
    pipes waited forever (the room froze). Commands are bounded: a TmuxError after the
    timeout, for plain commands and for those that read standard input."""
    import signal
    import threading

    from comm_node_tui.adapters.tmux import Tmux

    ap, _root = panes
    server = int(tmux(socket_name, "display-message", "-p", "#{pid}"))
    # the client's own bound, short: a stopped server never answers, so all a longer one
    # shows is that the error waits for it (2 x 2 s held a test worker idle)
    quick = Tmux(socket_name, ap.tmux.session, timeout_s=0.5)
    errors: list[BaseException] = []

    def attempt() -> None:
        for call in (
            lambda: quick.cmd("list-panes", "-a"),
            lambda: quick.run_stdin(["load-buffer", "-"], b"text"),
        ):
            try:
                call()
            except TmuxError as exc:
                errors.append(exc)

    os.kill(server, signal.SIGSTOP)
    try:
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(120)  # a hang is the failure; 2 x 0.5 s is the expected time
        assert not worker.is_alive(), "a tmux command hung on a stopped server"
    finally:
        os.kill(server, signal.SIGCONT)
    assert len(errors) == 2 and all("did not answer within 0.5 s" in str(e) for e in errors)
    assert len(str(errors[0]).splitlines()) == 1
    # and the server answers again once it runs
    assert set(ap.tmux.panes()) == {"alpha", "beta"}


def test_a_hook_changing_an_agents_state_makes_the_engine_look_at_once(panes, engine_for):
    """A new state from the hooks pokes the screen monitor: its next look comes at once, not
    after the poll period, then every BURST_S (through the control client) for BURST_FOR_S;
    at a turn's end the hooks lead the screen, and a close look sees the spinner go down."""
    import asyncio
    import contextlib
    import json
    import time

    from comm_node_tui.engine.screens import BURST_S
    from comm_node_tui.protocol.messages import now_iso

    _, root = panes
    eng = engine_for(root)
    screens = eng.screens
    screens.poll_s = screens.control_poll_s = 3600.0  # only a poke can bring a look
    status = root / "alpha" / ".comm-node" / "status.json"

    async def main() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(screens.run(stop))
        await asyncio.sleep(0)  # the monitor now waits out its (hour-long) period
        status.parent.mkdir(parents=True, exist_ok=True)
        status.write_text(json.dumps({"state": "blocked", "last_heartbeat": now_iso()}))
        eng.refresh_status("alpha")  # a state the engine had not seen: a poke
        deadline = time.monotonic() + 30
        while not eng.panes and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        period = screens.period_s
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return period

    period = asyncio.run(main())
    assert set(eng.panes) == {"alpha", "beta"}, "the hook's new state brought no look"
    assert period == BURST_S  # the control client answers: looks come closely now
    wait_for(lambda: screens.period_s == 3600.0, timeout=10)  # ... for a moment only
