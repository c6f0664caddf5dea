"""How the control room looks, with pytest-textual-snapshot: every panel with data, each
layout, the room at 80x24, 120x35 and 200x50, two themes, the help screen, a message open,
an alert, hostile text. Time is frozen (a fixed clock and fixed files), and the tmux socket
is private and never started."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from comm_node_tui.engine.world_views import UsageView
from comm_node_tui.protocol.messages import render
from comm_node_tui.tui.app import ControlRoom
from comm_node_tui.tui.messages import WorldUpdated
from comm_node_tui.workspace.discovery import load_workspace
from tests.waiting import until

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
SIZE = (150, 44)


def iso(t: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"


# Two more agents for the room at every size (the issue counted the rows of five).
MORE = ("infra", "mobile")


def build(root: Path, hostile: bool = False, more: tuple[str, ...] = ()) -> Path:
    for d in ("backend", "frontend", "docs", *more):
        (root / d / ".comm-node" / "inbox").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "user-auth"\n[agents]\nbudget_tokens = 200000\n'
        '[tasks]\nsource = "native"\n'
        '[[domains]]\nname = "backend"\npath = "backend"\nscope = ["src/**"]\n'
        '[[domains]]\nname = "frontend"\npath = "frontend"\nscope = ["src/**"]\n'
        '[[domains]]\nname = "docs"\npath = "docs"\n'
        + "".join(f'[[domains]]\nname = "{d}"\npath = "{d}"\n' for d in more)
    )
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "Auth API contract"\ndomain = "backend"\npriority = 0\n'
        '[[tasks]]\nid = "T2"\ntitle = "Login endpoint"\ndomain = "backend"\n'
        'depends_on = ["T1"]\n'
        '[[tasks]]\nid = "T3"\ntitle = "Login screen"\ndomain = "frontend"\n'
        'depends_on = ["T2"]\n'
        '[[tasks]]\nid = "T4"\ntitle = "API docs"\ndomain = "docs"\ndepends_on = ["T1"]\n'
        '[[tasks]]\nid = "T5"\ntitle = "Release notes"\ndomain = "docs"\n'
        'depends_on = ["T3", "T4"]\n'
    )
    state = root / ".comm-node"
    state.mkdir()
    (state / "tasks.json").write_text(
        json.dumps(
            {
                "tasks": {
                    "T1": {"status": "closed"},
                    "T2": {"status": "in_progress", "assignee": "backend"},
                }
            }
        )
    )
    statuses = {
        "backend": {
            "state": "busy",
            "task": "T2",
            "progress": "writing handlers",
            "last_heartbeat": iso(NOW - 4),
        },
        "frontend": {
            "state": "waiting",
            "task": "T3",
            "progress": "asks to run npm test",
            "last_heartbeat": iso(NOW - 12),
        },
        "docs": {"state": "idle", "last_heartbeat": iso(NOW - 300)},
        **{d: {"state": "idle", "last_heartbeat": iso(NOW - 30)} for d in more},
    }
    if hostile:
        statuses["backend"]["progress"] = (
            "[bold red]x[/] \x1b[31mred\x1b[0m 日本語の長い行 🚀" + "z" * 5000
        )
        statuses["backend"]["task"] = "[link=http://x]T2[/]"
    for name, st in statuses.items():
        (root / name / ".comm-node" / "status.json").write_text(json.dumps(st))
    (state / "locks.json").write_text(
        json.dumps(
            {
                "locks": [
                    {
                        "pattern": "src/api/**",
                        "holder": "backend",
                        "exclusive": True,
                        "expires_at": iso(NOW + 600),
                        "expires": NOW + 600,
                        "reason": "refactor",
                        "regex": "^x",
                    },
                    {
                        "pattern": "src/shared/*.ts",
                        "holder": "frontend",
                        "exclusive": False,
                        "expires_at": iso(NOW + 1500),
                        "expires": NOW + 1500,
                        "reason": "",
                        "regex": "^x",
                    },
                ]
            }
        )
    )
    events = [
        ("engine.started", None, "info", "engine up for user-auth (3 domains)", {}),
        (
            "message.routed",
            "backend",
            "info",
            "backend -> frontend: request (T2)",
            {"id": "m-20270115T075900000-aaaa0001", "subject": "Login endpoint is up"},
        ),
        ("lock.granted", "backend", "info", "backend: 'src/api/**' (exclusive, 900 s)", {}),
        ("agent.state", "frontend", "info", "frontend: waiting on T3", {}),
        ("lock.refused", "frontend", "warn", "frontend: 'src/api/x.ts' conflicts with backend", {}),
    ]
    with open(state / "events.jsonl", "w") as fh:
        for i, (t, agent, level, msg, data) in enumerate(events):
            fh.write(
                json.dumps(
                    {
                        "ts": iso(NOW - 60 + i),
                        "type": t,
                        "level": level,
                        "agent": agent,
                        "msg": msg,
                        "data": data,
                    }
                )
                + "\n"
            )
    (root / "frontend" / ".comm-node" / "inbox" / "m-20270115T075900000-aaaa0001.md").write_text(
        render(
            {
                "id": "m-20270115T075900000-aaaa0001",
                "from": "backend",
                "to": ["frontend"],
                "type": "request",
                "task": "T2",
                "priority": "high",
            },
            "The login endpoint is up at /api/login.\nPlease wire the screen to it.",
        )
    )
    return root


# Usage as the engine's monitor reports it: backend burns against a work budget.
USAGE = {
    "domains": {
        "backend": {
            "total": 12_345,
            "cost_usd": 0.5,
            "tokens_per_min": 1_234.5,
            "work_budget_tokens": 500_000,
            "remaining": 487_655,
            "minutes_left": 395.0,
        },
        "frontend": {"total": 1_234_567, "cost_usd": 12.0, "tokens_per_min": 80.0},
    }
}


async def with_usage(pilot) -> None:
    """The room as it is once the engine has read the transcripts."""
    await settle(pilot)
    app = pilot.app
    world = dataclasses.replace(app.world, usage=UsageView.parse(USAGE))
    app.post_message(WorldUpdated(world, {}, False, seq=10**6))
    await until(pilot, lambda: app.world is world)
    await settle(pilot)


@pytest.fixture
def snap_ws(tmp_path, monkeypatch):
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", "cn-snapshot-never-started")
    return build(tmp_path / "ws")


def room(root: Path, **kwargs) -> ControlRoom:
    return ControlRoom(load_workspace(str(root)), start_engine=False, clock=lambda: NOW, **kwargs)


async def settle(pilot) -> None:
    """Until the room shows a world read from the files and has nothing left to do: no
    refresh pending, no worker running, every message handled (a screenshot taken then is
    the same on any machine, under any load)."""
    app = pilot.app
    await until(
        pilot,
        lambda: app.world is not None and not app._refresh_pending,
        what="the room's first world",
    )
    # Every worker ended (an exclusive one replaced by a newer read ends cancelled, which
    # workers.wait_for_complete() raises as an error), then every message handled.
    await until(
        pilot,
        lambda: all(w.is_finished for w in app.workers),
        what="the room's workers to end",
        show=lambda: list(app.workers),
    )
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 35), (200, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_sizes(snap_compare, tmp_path, monkeypatch, size):
    """Five agents with token usage, the layout chosen by the terminal's size."""
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", "cn-snapshot-never-started")
    root = build(tmp_path / "ws", more=MORE)
    assert snap_compare(room(root), terminal_size=size, run_before=with_usage)


@pytest.mark.parametrize("layout", ["default", "wall", "compact"])
def test_layouts(snap_compare, snap_ws, layout):
    assert snap_compare(room(snap_ws, layout=layout), terminal_size=SIZE, run_before=settle)


def test_light_theme(snap_compare, snap_ws):
    assert snap_compare(room(snap_ws, theme="elder-light"), terminal_size=SIZE, run_before=settle)


def test_help_screen(snap_compare, snap_ws):
    async def run(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "HelpScreen")
        await settle(pilot)

    assert snap_compare(room(snap_ws), terminal_size=SIZE, run_before=run)


def test_message_open(snap_compare, snap_ws):
    async def run(pilot):
        await settle(pilot)
        await pilot.press("5")
        table = pilot.app.query_one("#events").table
        table.move_cursor(row=1)
        await pilot.press("o")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "MessageScreen")
        await settle(pilot)

    assert snap_compare(room(snap_ws), terminal_size=SIZE, run_before=run)


def test_alert_highlighted(snap_compare, snap_ws):
    from comm_node_tui.protocol.events import Event
    from comm_node_tui.tui.messages import EngineEvent

    async def run(pilot):
        await settle(pilot)
        pilot.app.post_message(
            EngineEvent(
                Event(
                    "agent.lost",
                    "docs: lost (no heartbeat for 300 s)",
                    agent="docs",
                    level="error",
                    ts=iso(NOW),
                )
            )
        )
        await settle(pilot)

    assert snap_compare(room(snap_ws), terminal_size=SIZE, run_before=run)


def test_hostile_text(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", "cn-snapshot-never-started")
    root = build(tmp_path / "ws", hostile=True)
    assert snap_compare(room(root), terminal_size=SIZE, run_before=settle)


def test_unknown_theme_and_layout_fall_back_with_a_notice(snap_ws):
    import asyncio

    from textual.notifications import Notify

    async def go():
        app = room(snap_ws, layout="nope", theme="nope")
        seen: list = []
        # Every notice as it is posted: a loaded machine can settle after a notice timed out
        # and left app._notifications (the test failed so beside two CPU hogs).
        async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
            await settle(pilot)
            assert app.theme == "elder" and app.layout_name == "default"
            texts = [str(m.notification.message) for m in seen if isinstance(m, Notify)]
            assert any("no theme 'nope'" in t for t in texts)
            assert any("no layout 'nope'" in t for t in texts)

    asyncio.run(go())
