"""Token use from transcripts built from the real line shapes; work budgets; nudges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.usage.prices import PriceTable
from comm_node_tui.usage.transcripts import UsageTracker, project_dir_name
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env


def assistant(
    cwd,
    msg_id,
    req,
    out,
    *,
    inp=2,
    cw=100,
    cr=1000,
    model="claude-opus-4-5-20251101",
    ts="2026-11-21T06:00:00.000Z",
    split=True,
) -> str:
    usage = {
        "input_tokens": inp,
        "cache_creation_input_tokens": cw,
        "cache_read_input_tokens": cr,
        "output_tokens": out,
        "service_tier": "standard",
    }
    if split:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": cw, "ephemeral_1h_input_tokens": 0}
    return json.dumps(
        {
            "parentUuid": None,
            "isSidechain": False,
            "userType": "external",
            "cwd": str(cwd),
            "sessionId": "s1",
            "version": "2.1.14",
            "gitBranch": "",
            "message": {
                "model": model,
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": "ok"}],
                "stop_reason": None,
                "usage": usage,
            },
            "requestId": req,
            "type": "assistant",
            "uuid": f"u-{msg_id}-{out}",
            "timestamp": ts,
        }
    )


def user(cwd) -> str:
    return json.dumps(
        {
            "type": "user",
            "cwd": str(cwd),
            "sessionId": "s1",
            "message": {"role": "user", "content": "hi"},
            "timestamp": "2026-11-21T06:00:00.000Z",
        }
    )


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "ws"
    for d in ("api", "web"):
        (root / d).mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "u"\n[agents]\nwork_budget_tokens = 5000\n'
        '[prices."claude-opus-4-5"]\ninput = 10.0\noutput = 50.0\n'
        '[[domains]]\nname = "api"\npath = "api"\n'
        '[[domains]]\nname = "web"\npath = "web"\n'
    )
    home = tmp_path / "claude"
    ws = load_workspace(str(root))
    return root, home, ws


def transcript(home: Path, cwd: Path, name="s1.jsonl") -> Path:
    folder = home / "projects" / project_dir_name(str(cwd))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_each_response_counted_once_with_its_final_usage(env):
    root, home, ws = env
    api = root / "api"
    t = transcript(home, api)
    t.write_text(
        "\n".join(
            [
                user(api),
                assistant(api, "msg_A", "req_A", 1),  # placeholder output on the early lines
                assistant(api, "msg_A", "req_A", 1),
                assistant(api, "msg_A", "req_A", 310),  # the final line
                assistant(api, "msg_B", "req_B", 25),
                '{"type": "summary", "summary": "x"}',
                "garbage that is not json",
                assistant(api, "msg_S", "req_S", 0, inp=0, cw=0, cr=0, model="<synthetic>"),
            ]
        )
        + "\n"
    )
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    assert d["responses"] == 2
    assert (d["input"], d["output"], d["cache_write"], d["cache_read"]) == (4, 335, 200, 2000)
    assert d["total"] == 4 + 335 + 200 + 2000
    # Priced by the config override: 10 in, 50 out, cache write 12.5, cache read 1 per MTok.
    expected = (4 * 10 + 335 * 50 + 200 * 12.5 + 2000 * 1.0) / 1e6
    assert d["cost_usd"] == pytest.approx(expected)
    assert tracker.summary()["domains"]["web"]["total"] == 0


def test_incremental_tail_half_lines_and_late_final_usage(env):
    root, home, ws = env
    api = root / "api"
    t = transcript(home, api)
    first = assistant(api, "msg_A", "req_A", 1)
    final = assistant(api, "msg_A", "req_A", 200)
    t.write_text(first + "\n" + final[:40])  # the final line is half written
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    assert tracker.summary()["domains"]["api"]["output"] == 1
    read_before = tracker.bytes_read
    with open(t, "a") as fh:
        fh.write(final[40:] + "\n")
    tracker.poll()
    assert tracker.summary()["domains"]["api"]["output"] == 200
    assert tracker.bytes_read - read_before == len(final) + 1 - 0 - 0  # only the new line
    tracker.poll()
    assert tracker.bytes_read - read_before == len(final) + 1  # nothing new: nothing read


def test_rotated_deleted_and_truncated_files(env):
    root, home, ws = env
    api = root / "api"
    t = transcript(home, api)
    t.write_text(assistant(api, "msg_A", "req_A", 10) + "\n")
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    # Replaced by a new file holding the same response and a new one: no double count.
    t.unlink()
    t.write_text(
        assistant(api, "msg_A", "req_A", 10) + "\n" + assistant(api, "msg_B", "req_B", 5) + "\n"
    )
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    assert d["responses"] == 2 and d["output"] == 15
    t.unlink()
    tracker.poll()
    assert tracker.summary()["domains"]["api"]["output"] == 15  # what was said stays counted


def test_domain_by_record_cwd_and_project_folder(env, tmp_path):
    root, home, ws = env
    sub = root / "web" / "src"
    sub.mkdir()
    transcript(home, sub).write_text(assistant(sub, "m1", "r1", 7) + "\n")
    # A folder of another project is not read.
    other = tmp_path / "elsewhere"
    other.mkdir()
    transcript(home, other).write_text(assistant(other, "m2", "r2", 9) + "\n")
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    s = tracker.summary()["domains"]
    assert s["web"]["output"] == 7 and s["api"]["output"] == 0


def test_burn_rate_and_time_left(env):
    root, home, ws = env
    api = root / "api"
    now = time.time()
    stamps = [
        time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - m * 60)) for m in (10, 5, 0)
    ]
    transcript(home, api).write_text(
        "\n".join(
            assistant(api, f"m{i}", f"r{i}", 98, inp=1, cw=1, cr=0, ts=ts)
            for i, ts in enumerate(stamps)
        )
        + "\n"
    )
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    d = tracker.summary(now=now)["domains"]["api"]
    assert d["total"] == 300
    assert d["tokens_per_min"] == pytest.approx(30.0, rel=0.01)  # 300 tokens over 10 minutes
    assert d["remaining"] == 4700 and d["minutes_left"] == pytest.approx(156.7, rel=0.01)


def test_price_table_prefixes_and_unknown_models():
    p = PriceTable()
    assert p.find("claude-opus-4-5-20251101")["input"] == 5.0
    assert p.find("claude-opus-4-20250514")["input"] == 15.0
    assert p.cost("some-other-model", 1, 1, 0, 0, 0) is None


def test_usage_cli_json_shape(env):
    root, home, _ws = env
    api = root / "api"
    transcript(home, api).write_text(assistant(api, "m", "r", 3) + "\n")
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "usage", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(CLAUDE_CONFIG_DIR=str(home)),
    )
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)["domains"]["api"]
    assert {
        "input",
        "output",
        "cache_write",
        "cache_read",
        "total",
        "cost_usd",
        "tokens_per_min",
    } <= set(d)
    assert d["output"] == 3


def test_work_budget_exhausted_alerts_and_pauses_through_the_hook(env, engine_for, monkeypatch):
    root, home, _ws = env
    toml = root / "comm-node.toml"
    toml.write_text(
        toml.read_text().replace(
            "work_budget_tokens = 5000", 'work_budget_tokens = 5000\non_budget_exhausted = "pause"'
        )
    )
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home))
    api = root / "api"
    transcript(home, api).write_text(assistant(api, "m", "r", 4000, cr=2000) + "\n")
    eng = engine_for(root)
    eng.refresh_usage(force=True)
    [ev] = [e for e in eng.recent if e.type == "budget.work_exhausted"]
    assert ev.agent == "api" and ev.level == "error" and ev.data["alert"] is True
    work = json.loads((api / ".comm-node" / "budget.json").read_text())["work"]
    assert work["exhausted"] is True and work["policy"] == "pause" and work["used"] == 6102
    usage = json.loads((root / ".comm-node" / "usage.json").read_text())
    assert usage["domains"]["api"]["total"] == 6102
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "hook"],
        cwd=root,
        input=json.dumps(
            {
                "hook_event_name": "PreToolUse",
                "cwd": str(api),
                "session_id": "s",
                "tool_name": "Bash",
                "tool_input": {"command": "ls"},
            }
        ),
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
    )
    out = json.loads(res.stdout)["hookSpecificOutput"]
    assert (
        out["permissionDecision"] == "deny"
        and "work budget is spent" in out["permissionDecisionReason"]
    )
    eng.refresh_usage(force=True)
    assert len([e for e in eng.recent if e.type == "budget.work_exhausted"]) == 1  # once


def test_idle_agent_is_nudged_through_its_pane(tmp_path, monkeypatch, engine_for):
    socket = f"cn-test-{os.getpid()}-nudge"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    for d in ("api", "web"):
        (root / d).mkdir(parents=True)
    agent = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
    (root / "comm-node.toml").write_text(
        '[project]\nname = "nudge"\n'
        f'[[domains]]\nname = "api"\npath = "api"\ncommand = "{agent} --log {root}/api.log"\n'
        f'[[domains]]\nname = "web"\npath = "web"\ncommand = "{agent} --log {root}/web.log"\n'
    )
    from comm_node_tui.panes.manager import AgentPanes

    try:
        ap = AgentPanes(load_workspace(str(root)))
        ap.up()
        deadline = time.monotonic() + 15
        while "❯" not in ap.peek("web") and time.monotonic() < deadline:
            time.sleep(0.05)
        eng = engine_for(root)
        from comm_node_tui.protocol.status import update_status

        update_status(eng.ws.domains["web"].paths.status, "web", state="idle")
        eng.refresh_status("web")
        subprocess.run(
            [sys.executable, "-m", "comm_node_tui", "send", "--to", "web", "hi"],
            cwd=root / "api",
            env=cli_env(),
            check=True,
            timeout=30,
        )
        eng.scan()
        eng.nudge_idle()
        eng._side.shutdown(wait=True)
        eng._side = None
        log = [json.loads(x) for x in (root / "web.log").read_text().splitlines()]
        assert [r["text"] for r in log if r["event"] == "submit"] == [
            "You have 1 new message: run `comm-node inbox`"
        ]
        eng.nudge_idle()  # nothing new: no second nudge
        assert "api" not in eng._nudged
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
