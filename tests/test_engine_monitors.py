"""The engine's monitors: time-based judgements driven by a ManualClock (no sleeping), and the
threading rule (a worker thread's result is applied, and its events emitted, on the engine's
event-loop thread)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from comm_node_tui.engine.agent_state import Health
from comm_node_tui.engine.clock import ManualClock
from comm_node_tui.engine.engine import Engine
from comm_node_tui.engine.screens import ScreenRead
from comm_node_tui.protocol.messages import now_iso
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import write_workspace
from tests.running import running_engine
from tests.test_boundaries import config, files, git_repo
from tests.test_claude_screen import BUSY, IDLE
from tests.waiting import wait_for

T0 = 1_800_000_000.0  # the manual clock's wall time at the start (a whole second)


def busy_status(root: Path, name: str, heartbeat: float, **extra) -> None:
    path = root / name / ".comm-node" / "status.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"state": "busy", "last_heartbeat": now_iso(heartbeat), **extra}))


def events(eng: Engine, kind: str, agent: str | None = None) -> list:
    return [e for e in eng.recent if e.type == kind and (agent is None or e.agent == agent)]


def test_manual_clock_moves_only_forward() -> None:
    clock = ManualClock(time=T0, monotonic=5.0)
    clock.advance(2.5)
    assert (clock.time(), clock.monotonic()) == (T0 + 2.5, 7.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_a_still_busy_screen_is_stuck_after_stuck_after_s(tmp_path, engine_for) -> None:
    """Busy by the hooks and by the screen, no hook and nothing new on screen for
    stuck_after_s: stuck, to the second; a screen that moves again is recovered."""
    root = write_workspace(tmp_path / "ws", agents="stuck_after_s = 600")
    clock = ManualClock(time=T0)
    eng = engine_for(root, clock=clock)
    busy_status(root, "backend", heartbeat=T0 - 5)
    eng.refresh_status("backend")
    pane = {"pane": "%1", "pid": 1, "dead": False, "exit_status": None}
    eng.screens.apply(ScreenRead({"backend": {**pane, "screen": BUSY}}))
    eng.watchdog.check()
    assert eng.panes["backend"]["screen_state"] == "busy"
    assert eng.watchdog.health.get("backend", Health.OK) == Health.OK

    # The spinner's clock turns (digits are not progress): the screen is still still.
    clock.advance(599)
    eng.screens.apply(ScreenRead({"backend": {**pane, "screen": BUSY.replace("4s", "603s")}}))
    eng.watchdog.check()
    assert eng.screens.still_s("backend") == 599
    assert not events(eng, "agent.stuck")

    clock.advance(1)
    eng.watchdog.check()
    [stuck] = events(eng, "agent.stuck", "backend")
    assert stuck.data["age_s"] == 605 and eng.watchdog.health["backend"] == Health.STUCK
    published = json.loads((root / ".comm-node" / "agents.json").read_text())
    assert published["health"]["backend"] == "stuck" and published["updated"] == T0 + 600

    # New text on screen: progress, even with no hook.
    clock.advance(1)
    eng.screens.apply(ScreenRead({"backend": {**pane, "screen": IDLE}}))
    eng.screens.apply(ScreenRead({"backend": {**pane, "screen": BUSY}}))
    eng.watchdog.check()
    assert eng.screens.still_s("backend") == 0
    assert [e.agent for e in events(eng, "agent.recovered")] == ["backend"]


def test_an_unseen_busy_agent_is_stuck_by_the_clock_alone(
    tmp_path, engine_for, monkeypatch
) -> None:
    """No pane, but its recorded process is alive (this one): the hooks' silence alone
    decides, measured on the engine's clock."""
    import os

    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-home"))  # tick() polls
    root = write_workspace(tmp_path / "ws", agents="stuck_after_s = 120")
    clock = ManualClock(time=T0)
    eng = engine_for(root, clock=clock)
    busy_status(root, "docs", heartbeat=T0, agent_pid=os.getpid())
    eng.refresh_status("docs")
    clock.advance(119.5)
    eng.tick()
    assert not events(eng, "agent.stuck")
    clock.advance(0.5)
    eng.tick()
    assert [e.agent for e in events(eng, "agent.stuck")] == ["docs"]


def test_usage_is_polled_every_poll_s_of_the_engine_clock(
    tmp_path, engine_for, monkeypatch
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-home"))
    root = write_workspace(tmp_path / "ws")
    clock = ManualClock(time=T0)
    eng = engine_for(root, clock=clock)  # start() polls once
    usage_json = root / ".comm-node" / "usage.json"
    assert json.loads(usage_json.read_text())["updated"] == now_iso(T0)
    clock.advance(4.5)  # poll_s is 5 s
    assert eng.refresh_usage() is None  # not due yet
    clock.advance(0.5)
    summary = eng.refresh_usage()
    assert summary is not None and eng.usage_summary is summary
    assert json.loads(usage_json.read_text())["updated"] == now_iso(T0 + 5)
    assert eng.refresh_usage(force=True) is not None  # force ignores the period


def boundary_ws(root: Path) -> Path:
    """A repository where web imports api, which it may not."""
    files(
        root,
        {
            "api/__init__.py": "",
            "api/routes.py": "R = 1\n",
            "web/__init__.py": "",
            "web/views.py": "from api import routes\n",
        },
    )
    config(
        root,
        [
            {"name": "api", "path": ".", "scope": ["api/**"]},
            {"name": "web", "path": ".", "scope": ["web/**"], "forbidden_imports": ["api"]},
        ],
    )
    toml = root / "comm-node.toml"
    toml.write_text(toml.read_text().replace("check_interval_s = 0", "check_interval_s = 30"))
    git_repo(root)
    return root


def test_boundary_results_are_applied_on_the_engine_loop_thread(tmp_path) -> None:
    """The check runs in a worker thread; its events, the change signal and the data come
    from the loop thread."""
    root = boundary_ws(tmp_path / "mono")
    eng = Engine(load_workspace(str(root)))
    seen: list[tuple[str, int]] = []
    change_threads: set[int] = set()
    eng.subscribe(lambda ev: seen.append((ev.type, threading.get_ident())))
    eng.on_change(lambda: change_threads.add(threading.get_ident()))
    with running_engine(eng) as running:
        wait_for(lambda: any(kind == "boundary.violation" for kind, _ in seen), timeout=30)
    boundary_threads = {ident for kind, ident in seen if kind.startswith("boundary")}
    assert boundary_threads == {running["thread"]}
    assert change_threads == {running["thread"]}
    assert [v["file"] for v in eng.boundaries["violations"]] == ["web/views.py"]


def test_after_comm_nodes_escape_an_idle_screen_is_believed_at_once(tmp_path, engine_for):
    """Every other idle capture after busy waits out the debounce (a busy agent's screen
    flickers idle between steps); after comm-node's own Escape nothing runs any more, so
    the first idle capture is the state (the real soak's largest remaining lag)."""
    root = write_workspace(tmp_path / "ws")
    clock = ManualClock(time=T0)
    eng = engine_for(root, clock=clock)
    pane = {"pid": 1, "dead": False, "exit_status": None}
    frontend = {**pane, "pane": "%2"}
    backend = {**pane, "pane": "%1"}
    eng.screens.apply(
        ScreenRead(
            {"backend": {**backend, "screen": BUSY}, "frontend": {**frontend, "screen": BUSY}}
        )
    )
    clock.advance(0.2)
    escaped = {"acted": T0 + 0.1, "acted_kind": "interrupt"}
    typed = {"acted": T0 + 0.1, "acted_kind": "typed"}
    eng.screens.apply(
        ScreenRead(
            {
                "backend": {**backend, **escaped, "screen": IDLE},
                "frontend": {**frontend, **typed, "screen": IDLE},
            }
        )
    )
    assert eng.panes["backend"]["screen_state"] == "idle"
    assert eng.panes["frontend"]["screen_state"] == "busy"  # debounced: may be a flicker
    # an Escape long ago proves nothing about this idle frame
    clock.advance(30)
    eng.screens.apply(ScreenRead({"backend": {**backend, "screen": BUSY}}))
    eng.screens.apply(ScreenRead({"backend": {**backend, **escaped, "screen": IDLE}}))
    assert eng.panes["backend"]["screen_state"] == "busy"


@pytest.mark.parametrize(("screen", "shown"), [("busy", "busy"), ("idle", "idle")])
def test_a_hook_waiting_with_no_dialog_on_screen_gives_way_at_once(screen, shown):
    """PermissionRequest fires before Claude Code draws the dialog, and nothing fires when it
    closes: a fresh "waiting" from the hooks with no dialog on screen is the screen's state."""
    from comm_node_tui.engine.agent_state import shown_state

    now = T0
    status = {"state": "waiting"}
    pane = {"screen_state": screen, "screen_raw": screen, "screen_since": now - 0.1}
    assert shown_state(status, pane, 0.1, now) == shown
    dialog = {"screen_state": "waiting", "screen_raw": "waiting", "screen_since": now}
    assert shown_state(status, dialog, 0.1, now) == "waiting"
    assert shown_state(status, {"screen_state": "unknown"}, 0.1, now) == "waiting"


def test_a_look_after_the_hooks_idle_that_still_shows_the_spinner_wins(tmp_path, engine_for):
    """Stop fires before Claude Code takes its spinner down (the real soak's largest
    remaining mismatch: shown idle, screen busy). The newer observation wins: a look taken
    before the hook's "idle" loses to it, a look taken after it that still shows the spinner
    wins, and the first idle look agrees with the hook at once."""
    root = write_workspace(tmp_path / "ws")
    clock = ManualClock(time=T0)
    eng = engine_for(root, clock=clock)
    backend = {"pane": "%1", "pid": 1, "dead": False, "exit_status": None}

    def shown() -> str:
        return str(eng.snapshot().agent("backend").state)

    eng.screens.apply(ScreenRead({"backend": {**backend, "screen": BUSY}}, at=T0))
    busy_status(root, "backend", T0)
    eng.refresh_status("backend")
    assert shown() == "busy"
    clock.advance(0.5)
    path = root / "backend" / ".comm-node" / "status.json"
    path.write_text(json.dumps({"state": "idle", "last_heartbeat": now_iso(T0 + 0.4)}))
    eng.refresh_status("backend")
    assert shown() == "idle"  # the last look (T0) is older than the hook's word (T0 + 0.4)
    clock.advance(0.1)
    eng.screens.apply(ScreenRead({"backend": {**backend, "screen": BUSY}}, at=T0 + 0.55))
    assert shown() == "busy"  # looked after the hook: the spinner is still up
    clock.advance(0.03)
    eng.screens.apply(ScreenRead({"backend": {**backend, "screen": IDLE}}, at=T0 + 0.6))
    assert shown() == "idle"  # no debounce: the capture agrees with the hook
