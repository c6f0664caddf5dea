"""The demo end to end: `comm-node demo --agents simulated --headless` with simulated agents
in a private tmux server, then the workspace it leaves checked against what the agents say
they did; and the demo's control room with data in every panel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from comm_node_tui.protocol.messages import split
from tests.conftest import cli_env, run_cli
from tests.waiting import until, wait_for


def _records(root: Path, name: str) -> list[dict]:
    path = _private(root, name) / "sim-log.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _private(root: Path, name: str) -> Path:
    shared = root / "site" / ".comm-node" / name
    return shared if shared.is_dir() else root / name / ".comm-node"


def test_headless_demo_completes_the_plan(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    env = cli_env()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "comm_node_tui",
            "demo",
            "--agents",
            "simulated",  # the real Claude Code demo: tests/test_real_demo.py
            "--headless",
            "--speed",
            "5",
            "--dir",
            str(root),
            "--json",
            "--timeout",
            "1500",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    summary = json.loads(r.stdout)
    # every task done
    assert summary["ok"] and summary["tasks_done"] == summary["tasks_total"] == 25
    tasks = json.loads(run_cli("task", "list", "--json", cwd=root, env=env).stdout)
    assert {t["status"] for t in tasks} == {"closed"}
    # no lock held at the end
    assert json.loads(run_cli("lock", "list", "--json", cwd=root, env=env).stdout) == []
    # every message delivered exactly once, to every recipient
    names = ("backend", "frontend", "admin", "docs", "website")
    delivered: Counter = Counter()
    for name in names:
        inbox = _private(root, name) / "inbox"
        for f in [*inbox.glob("*.md"), *(inbox / "read").glob("*.md")]:
            meta, _body = split(f.read_text())
            delivered[(name, meta["id"])] += 1
    sent = []
    for name in names:
        for rec in _records(root, name):
            if rec.get("event") == "sent":
                sent += [(to, rec["id"]) for to in rec["to"]]
            assert rec.get("event") not in ("send_failed", "error"), rec
    assert sent, "the agents sent no messages"
    for key in sent:
        assert delivered[key] == 1, key
    assert all(n == 1 for n in delivered.values())
    assert summary["messages_routed"] == len({i for _to, i in sent})
    # every START message reached its agent, and each agent read its mail
    for name in names:
        got = [r for r in _records(root, name) if r.get("event") == "received"]
        assert any(r["type"] == "start" for r in got), name
    # usage: what the engine counted from the transcripts = what the agents wrote
    usage = json.loads(run_cli("usage", "--json", cwd=root, env=env).stdout)["domains"]
    for name in names:
        mine = json.loads((_private(root, name) / "sim-usage.json").read_text())
        got = usage[name]
        assert (got["input"], got["output"], got["cache_write"], got["cache_read"]) == (
            mine["input"],
            mine["output"],
            mine["cache_write"],
            mine["cache_read"],
        ), name
    assert summary["tokens"]["output"] == sum(
        json.loads((_private(root, n) / "sim-usage.json").read_text())["output"] for n in names
    )
    # the stalled agent: detected, then recovered; the crashed one: dead, then restarted
    demo = json.loads((root / ".comm-node" / "demo.json").read_text())
    from comm_node_tui.demo.plan import domain_of

    stalled, crashed = domain_of(demo["stall"][0]), domain_of(demo["crash"][0])
    log = [
        json.loads(x)
        for x in run_cli("log", "--json", "-n", "100000", cwd=root, env=env).stdout.splitlines()
    ]
    kinds = [(e["type"], e["agent"]) for e in log]
    stale_at = kinds.index(("agent.stuck", stalled))
    assert ("agent.recovered", stalled) in kinds[stale_at:]
    dead_at = kinds.index(("agent.dead", crashed))
    assert ("demo.restart", crashed) in kinds[dead_at:]
    assert summary["stalls_detected"] >= 1 and summary["recoveries"] >= 1
    assert summary["locks_granted"] >= 25


async def test_demo_control_room_has_data_in_every_panel(tmp_path: Path, monkeypatch) -> None:
    import threading

    from comm_node_tui.demo.run import Driver, create
    from comm_node_tui.tui.app import ControlRoom

    socket = f"cn-demo-test-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = create(str(tmp_path / "demo"), 4.0, 3, 0, 0)
    driver = Driver(root, 4.0, restart_after_s=1.0)
    app = ControlRoom(driver.ws)

    failures: list[BaseException] = []

    def meeting() -> None:
        try:
            engine = wait_for(lambda: app.bridge.engine, timeout=60, what="the room's engine")
            driver.kickoff(engine.coord)
        except BaseException as exc:  # shown by the test, not lost in a thread
            failures.append(exc)

    try:
        async with app.run_test(size=(180, 56)) as pilot:
            threading.Thread(target=meeting, daemon=True).start()
            seen_kickoff = set()

            def panels_full() -> bool:
                assert not failures, failures
                if "kickoff: registered" in app.sub_title:
                    seen_kickoff.add(app.sub_title.rsplit("registered ", 1)[1])
                w = app.world
                return bool(
                    app.query_one("#agents").row_count == 5
                    and w is not None
                    and w.locks
                    and w.usage is not None
                    and any(u.total > 0 for u in w.usage.domains.values())
                    and w.tasks.counts.done >= 1
                    and app.query_one("#event-table").row_count > 10
                )

            await until(
                pilot,
                panels_full,
                timeout=120,
                every=0.1,
                show=lambda: (
                    app.world and app.world.tasks.counts,
                    driver.meeting,
                    [(a.name, a.state) for a in (app.world.agents if app.world else ())],
                ),
            )
            # the header counted the agents registering during the kickoff meeting, and
            # the count goes when the meeting ends (the first agents may finish a task while
            # the meeting still types the last ones' first prompt: on a loaded machine, it
            # ends after the panels fill)
            await until(
                pilot, lambda: app.kickoff is None, show=lambda: (app.sub_title, driver.meeting)
            )
            assert seen_kickoff
            # tasks: the tree holds the whole plan; locks: rows; burn: every agent
            tree = app.query_one("#task-tree")
            nodes = list(_walk(tree.root))
            assert len(nodes) >= 25
            assert app.query_one("#locks").row_count >= 1 or app.world.locks
            burn = app.query_one("#burn")
            assert sorted(burn.rows) == ["admin", "backend", "docs", "frontend", "website"]
            assert any(max(r.series or [0]) > 0 for r in burn.rows.values())
            # the pane preview shows a simulated agent's screen
            await pilot.press("1")
            await until(
                pilot, lambda: "sim-claude" in _preview_text(app), show=lambda: _preview_text(app)
            )
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def _preview_text(app) -> str:
    return str(app.query_one("#pane-text").content)


def _walk(node):
    for child in node.children:
        yield child
        yield from _walk(child)
