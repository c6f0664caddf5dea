"""The context window (issue 17, item 6): the last request's input + cache tokens from real
transcript files against the model's window, in the usage summary, the typed World and
`comm-node status`; the engine's alert once per crossing of [agents] context_alert_pct."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.engine.world import snapshot
from comm_node_tui.usage.transcripts import UsageTracker
from comm_node_tui.usage.windows import context_window
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import run_cli
from tests.test_usage import assistant, transcript, user


def _ws(tmp_path: Path, agents: str = "") -> tuple[Path, Path]:
    root = tmp_path / "ws"
    for d in ("api", "web"):
        (root / d).mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        f'[project]\nname = "ctx"\n[agents]\n{agents}\n'
        '[[domains]]\nname = "api"\npath = "api"\n'
        '[[domains]]\nname = "web"\npath = "web"\n'
    )
    return root, tmp_path / "claude"


def test_the_last_response_of_the_session_is_held_against_the_window(tmp_path):
    root, home = _ws(tmp_path)
    api = root / "api"
    t = transcript(home, api)
    t.write_text(
        "\n".join(
            [
                user(api),
                # an early response: a bigger output must not count, only what was read
                assistant(api, "m1", "r1", 9000, inp=10, cw=2000, cr=3000),
                # the newest: 5 + 40,000 + 46,000 = 86,005 tokens of context
                assistant(
                    api, "m2", "r2", 1, inp=5, cw=40_000, cr=46_000, ts="2026-11-21T06:05:00.000Z"
                ),
            ]
        )
        + "\n"
    )
    tracker = UsageTracker(load_workspace(str(root)), home=str(home))
    tracker.poll()
    ctx = tracker.summary()["domains"]["api"]["context"]
    assert ctx["tokens"] == 86_005 and ctx["window"] == 200_000
    assert ctx["pct"] == 43.0 and ctx["model"] == "claude-opus-4-5-20251101"
    assert tracker.summary()["domains"]["web"]["context"] is None  # nothing measured


def test_a_new_session_named_by_the_hook_starts_unmeasured_then_counts(tmp_path):
    root, home = _ws(tmp_path)
    api = root / "api"
    old = transcript(home, api, "old.jsonl")
    old.write_text(assistant(api, "m1", "r1", 1, inp=5, cw=0, cr=150_000) + "\n")
    tracker = UsageTracker(load_workspace(str(root)), home=str(home))
    tracker.poll()
    assert tracker.summary()["domains"]["api"]["context"]["tokens"] == 150_005
    # /clear: the hook names the new session's transcript before it has any response
    new = transcript(home, api, "new.jsonl")
    tracker.poll({str(new): "api"})
    assert tracker.summary()["domains"]["api"]["context"] is None
    new.write_text(
        assistant(api, "m9", "r9", 1, inp=3, cw=9000, cr=0, ts="2026-11-21T07:00:00.000Z") + "\n"
    )
    tracker.poll({str(new): "api"})
    assert tracker.summary()["domains"]["api"]["context"]["tokens"] == 9003


def test_the_window_table_and_its_override(tmp_path):
    assert context_window("claude-opus-4-5-20251101") == 200_000
    assert context_window("claude-sonnet-4-5[1m]") == 1_000_000
    assert context_window("claude-opus-4-5", override=500_000) == 500_000
    root, home = _ws(tmp_path, "context_window = 100000")
    api = root / "api"
    transcript(home, api).write_text(assistant(api, "m1", "r1", 1, inp=0, cw=0, cr=50_000) + "\n")
    tracker = UsageTracker(load_workspace(str(root)), home=str(home))
    tracker.poll()
    ctx = tracker.summary()["domains"]["api"]["context"]
    assert (ctx["window"], ctx["pct"]) == (100_000, 50.0)


def test_world_and_status_show_it_from_the_engines_usage_file(tmp_path):
    root, home = _ws(tmp_path)
    api = root / "api"
    transcript(home, api).write_text(
        assistant(api, "m1", "r1", 1, inp=5, cw=40_000, cr=46_000) + "\n"
    )
    ws = load_workspace(str(root))
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    coord = Coordinator(ws)
    coord.store.write("usage.json", tracker.summary())  # what the engine's monitor keeps
    world = snapshot(ws, coord)
    api_view = world.agent("api")
    assert api_view is not None and api_view.context is not None
    assert api_view.context.pct == 43.0
    assert world.agent("web").context is None
    res = run_cli("status", "--json", cwd=root)
    agents = {a["name"]: a for a in json.loads(res.stdout)["agents"]}
    assert agents["api"]["context"]["tokens"] == 86_005 and agents["web"]["context"] is None
    human = run_cli("status", cwd=root).stdout
    api_line = next(ln for ln in human.splitlines() if ln.startswith("api "))
    assert "ctx 43%" in api_line
    assert "ctx" not in next(ln for ln in human.splitlines() if ln.startswith("web "))


@pytest.fixture
def engine_ws(tmp_path, monkeypatch):
    root, home = _ws(tmp_path, "context_alert_pct = 40")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home))
    return root, home


def test_the_engine_alerts_once_per_crossing(engine_ws, engine_for):
    root, home = engine_ws
    api = root / "api"
    t = transcript(home, api)
    eng = engine_for(root)

    def alerts() -> list:
        return [e for e in eng.recent if e.type == "agent.context_high"]

    def respond(n: int, cr: int) -> None:
        with open(t, "a") as fh:
            ts = f"2026-11-21T06:{n:02}:00.000Z"
            fh.write(assistant(api, f"m{n}", f"r{n}", 1, inp=0, cw=0, cr=cr, ts=ts) + "\n")
        eng.refresh_usage(force=True)

    respond(1, 60_000)  # 30 %: under the alert
    assert alerts() == []
    respond(2, 82_000)  # 41 %: over
    respond(3, 90_000)  # still over: no second alert
    assert len(alerts()) == 1
    ev = alerts()[0]
    assert ev.agent == "api" and ev.level == "warn" and ev.data["alert"] is True
    assert ev.data["pct"] == 41.0 and "comm-node handoff api" in ev.msg
    respond(4, 10_000)  # back under (a /clear or a compaction)
    respond(5, 120_000)  # a new crossing: a new alert
    assert len(alerts()) == 2
    assert eng.usage_summary["domains"]["api"]["context"]["pct"] == 60.0


async def test_the_room_shows_ctx_in_the_agents_burn_row(tmp_path, monkeypatch):
    import dataclasses

    from comm_node_tui.engine.world import ContextUsage
    from comm_node_tui.tui.messages import WorldUpdated
    from comm_node_tui.tui.widgets.burn import BurnPanel
    from tests.test_snapshots import SIZE, build, room, settle
    from tests.waiting import until

    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", "cn-ctx-never-started")
    app = room(build(tmp_path / "ws"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burn = app.query_one(BurnPanel)
        world = app.bridge.snapshot()
        full = ContextUsage(tokens=86_005, window=200_000, pct=43.0, model="m", at=None)
        agents = tuple(
            dataclasses.replace(a, context=full) if a.name == "backend" else a for a in world.agents
        )
        app.on_world_updated(
            WorldUpdated(dataclasses.replace(world, agents=agents), {}, False, seq=10_000)
        )
        await until(pilot, lambda: "ctx 43%" in burn.rows["backend"].parts)
        # right after the time left: a narrow row drops the parts at the end first
        assert burn.rows["backend"].parts.index("ctx 43%") == 1
        assert not any("ctx" in p for p in burn.rows["frontend"].parts)  # not measured
