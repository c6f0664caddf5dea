"""Token use from transcripts built from the real line shapes; work budgets; nudges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.adapters.agent_cli import comm_node_argv
from comm_node_tui.usage.prices import PriceTable
from comm_node_tui.usage.transcripts import UsageTracker, project_dir_name
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env
from tests.waiting import wait_for


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
    work = json.loads((root / ".comm-node" / "guarded" / "budget.api.json").read_text())["work"]
    assert work["exhausted"] is True and work["policy"] == "pause" and work["used"] == 6102
    usage = json.loads((root / ".comm-node" / "usage.json").read_text())
    assert usage["domains"]["api"]["total"] == 6102
    res = subprocess.run(
        [*comm_node_argv(), "hook"],
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
        wait_for(lambda: "❯" in ap.peek("web"), show=lambda: ap.peek("web"))
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
        eng.screens.apply(eng.screens.read())  # a nudge goes only to a screen at rest
        eng.nudger.tick()
        eng.actions.drain()
        log = [json.loads(x) for x in (root / "web.log").read_text().splitlines()]
        assert [r["text"] for r in log if r["event"] == "submit"] == [
            "You have 1 new message: run `comm-node inbox`"
        ]
        eng.nudger.tick()  # nothing new: no second nudge
        assert eng.nudger.last_nudge("api") is None
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


# ---- Claude Code 2.1.330: sub-agents, config dirs, long folder names, prices, /compact ----
def rec(line: str, **changes) -> str:
    """A transcript line with some top-level fields changed (None removes one)."""
    data = json.loads(line)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data, separators=(",", ":"))  # Claude Code writes compact JSON


def subagent(home: Path, cwd: Path, session: str, agent: str, sub: str = "") -> Path:
    folder = home / "projects" / project_dir_name(str(cwd)) / session / "subagents"
    if sub:
        folder = folder / sub
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"agent-{agent}.meta.json").write_text('{"agentType": "general-purpose"}')
    return folder / f"agent-{agent}.jsonl"


# Folder names the real Claude Code 2.1.330 wrote (claude -p in each directory, offline).
REAL_LONG_NAMES = {
    "/tmp/usage-exp/t1/ws/" + "/".join(f"segment_with_long_name_{i:02d}.x" for i in range(9)): (
        "-tmp-usage-exp-t1-ws-segment-with-long-name-00-x-segment-with-long-name-01-x-segment-"
        "with-long-name-02-x-segment-with-long-name-03-x-segment-with-long-name-04-x-segment-with-"
        "long-name-05-x-segment-wit-a95x0u"
    ),
    "/tmp/usage-exp/t5/ws/" + "/".join(["caf\u00e9_\U0001f600_" * 6] * 5): (
        "-tmp-usage-exp-t5-ws-caf-----caf-----caf-----caf-----caf-----caf------caf-----caf-----"
        "caf-----caf-----caf-----caf------caf-----caf-----caf-----caf-----caf-----caf------caf--"
        "---caf-----caf-----caf------w1m8n6"
    ),
    "/tmp/usage-exp/t4/ws/" + "b" * 180: "-tmp-usage-exp-t4-ws-" + "b" * 179 + "-wj4nwp",
    "/tmp/usage-exp/t4/ws/" + "a" * 179: "-tmp-usage-exp-t4-ws-" + "a" * 179,  # 200: no hash
}


def test_long_folder_names_are_those_the_real_cli_wrote():
    from comm_node_tui.usage.paths import js_string_hash

    assert js_string_hash("hello") == 99162322  # Java's "hello".hashCode()
    for path, name in REAL_LONG_NAMES.items():
        assert project_dir_name(path) == name, path
    assert project_dir_name("/home/dev/my.app") == "-home-dev-my-app"


def test_domain_with_a_long_path_is_found(tmp_path):
    root = tmp_path / "ws"
    deep = root / "/".join(f"a_rather_long_folder_name_{i}" for i in range(8))
    (deep / "src").mkdir(parents=True)
    rel = deep.relative_to(root)
    (root / "comm-node.toml").write_text(
        f'[project]\nname = "u"\n[[domains]]\nname = "api"\npath = "{rel}"\n'
    )
    home = tmp_path / "claude"
    assert len(project_dir_name(str(deep))) > 200
    transcript(home, deep).write_text(assistant(deep, "m1", "r1", 5) + "\n")
    transcript(home, deep / "src").write_text(assistant(deep / "src", "m2", "r2", 6) + "\n")
    tracker = UsageTracker(load_workspace(str(root)), home=str(home))
    tracker.poll()
    assert tracker.summary()["domains"]["api"]["output"] == 11


def test_subagents_count_for_the_parent_sessions_domain(env):
    root, home, ws = env
    api, web = root / "api", root / "web"
    main = transcript(home, api, "sess-1.jsonl")
    main.write_text(rec(assistant(api, "m1", "r1", 10), sessionId="sess-1") + "\n")
    # the sub-agent's records name another cwd: the parent session's domain still wins
    sub = subagent(home, api, "sess-1", "a1")
    sub.write_text(
        rec(assistant(web, "m2", "r2", 20), sessionId="sess-1", isSidechain=True, agentId="a1")
        + "\n"
    )
    nested = subagent(home, api, "sess-1", "a2", sub="workflows/run1")
    nested.write_text(rec(assistant(api, "m3", "r3", 30), sessionId="sess-1") + "\n")
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll({str(main): "api"})
    s = tracker.summary()
    assert s["domains"]["api"]["output"] == 60 and s["domains"]["web"]["output"] == 0
    assert s["files"] == 3  # the .meta.json files are no transcripts
    # one more sub-agent starts later: found on the next poll, once
    later = subagent(home, api, "sess-1", "a3")
    later.write_text(rec(assistant(api, "m4", "r4", 40), sessionId="sess-1") + "\n")
    tracker.poll({str(main): "api"})
    tracker.poll({str(main): "api"})
    assert tracker.summary()["domains"]["api"]["output"] == 100


def test_subagent_path_reported_by_subagentstop_is_read(env, tmp_path):
    root, _home, ws = env
    api = root / "api"
    other = tmp_path / "agent-config"  # the agent runs with its own CLAUDE_CONFIG_DIR
    sub = subagent(other, api, "sess-9", "b1")
    sub.write_text(rec(assistant(api, "m1", "r1", 7), sessionId="sess-9") + "\n")
    tracker = UsageTracker(ws, home=str(tmp_path / "empty"))
    tracker.poll({str(sub): "api"})
    assert tracker.summary()["domains"]["api"]["output"] == 7
    assert os.path.realpath(other / "projects") in tracker.roots()


def test_config_dir_learned_from_hook_transcript_path(env, tmp_path):
    root, _home, ws = env
    api, web = root / "api", root / "web"
    other = tmp_path / "agents-home" / ".claude"
    reported = transcript(other, api, "s1.jsonl")
    reported.write_text(assistant(api, "m1", "r1", 3) + "\n")
    subagent(other, api, "s1", "x").write_text(assistant(api, "m2", "r2", 4) + "\n")
    tracker = UsageTracker(ws, home=str(tmp_path / "empty"))
    tracker.poll()
    assert tracker.summary()["domains"]["api"]["output"] == 0  # not known yet
    tracker.poll({str(reported): "api"})
    assert tracker.summary()["domains"]["api"]["output"] == 7
    # sessions nobody reported, in the learned config dir, are found by scanning it
    transcript(other, api, "s2.jsonl").write_text(assistant(api, "m3", "r3", 5) + "\n")
    transcript(other, web, "s3.jsonl").write_text(assistant(web, "m4", "r4", 6) + "\n")
    tracker.poll()
    s = tracker.summary()["domains"]
    assert s["api"]["output"] == 12 and s["web"]["output"] == 6


def test_config_dir_named_in_a_domain_command(tmp_path):
    root = tmp_path / "ws"
    (root / "api").mkdir(parents=True)
    cfg = tmp_path / "cfg-api"
    (root / "comm-node.toml").write_text(
        '[project]\nname = "u"\n[[domains]]\nname = "api"\npath = "api"\n'
        f"command = \"env CLAUDE_CONFIG_DIR='{cfg}' claude\"\n"
    )
    transcript(cfg, root / "api").write_text(assistant(root / "api", "m", "r", 9) + "\n")
    tracker = UsageTracker(load_workspace(str(root)), home=str(tmp_path / "empty"))
    tracker.poll()
    assert tracker.summary()["domains"]["api"]["output"] == 9


def test_reported_paths_that_are_no_transcripts_are_refused(env, tmp_path):
    root, _home, ws = env
    api = root / "api"
    tracker = UsageTracker(ws, home=str(tmp_path / "empty"))
    outside = tmp_path / "x" / "projects" / "-some-other-project"
    outside.mkdir(parents=True)
    (outside / "s.jsonl").write_text(assistant(api, "m", "r", 1) + "\n")
    folder = tmp_path / "y" / "projects" / project_dir_name(str(api))
    folder.mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text(assistant(api, "m2", "r2", 2) + "\n")
    (folder / "link.jsonl").symlink_to(secret)
    os.mkfifo(folder / "fifo.jsonl")  # the right shape, but must not hang the engine
    bad = [
        "/etc/passwd",
        str(outside / "s.jsonl"),  # a folder no domain runs in
        str(folder / "link.jsonl"),  # a link to a file that is no .jsonl
        # shaped like one of api's transcripts, but it resolves into the other project
        f"{folder}/../../../x/projects/-some-other-project/s.jsonl",
        "rel\x00.jsonl",
        42,
    ]
    for path in bad:
        assert not tracker.acceptable(path), path
    assert tracker.acceptable(str(folder / "fifo.jsonl"))
    tracker.poll(
        {p: "api" for p in bad if isinstance(p, str)} | {str(folder / "fifo.jsonl"): "api"}
    )
    assert tracker.summary()["domains"]["api"]["total"] == 0
    # the FIFO's config dir is learned, but scanning it skips the symlink and the FIFO
    assert os.path.realpath(folder.parent) in tracker.roots()
    assert tracker.discover() == []


def test_learned_config_dirs_are_bounded(env, tmp_path):
    from comm_node_tui.usage.transcripts import MAX_ROOTS

    root, home, ws = env
    api = root / "api"
    tracker = UsageTracker(ws, home=str(home))
    paths = {}
    for i in range(MAX_ROOTS + 5):
        t = transcript(tmp_path / f"cfg{i}", api, f"s{i}.jsonl")
        t.write_text(assistant(api, f"m{i}", f"r{i}", 1) + "\n")
        paths[str(t)] = "api"
    tracker.poll(paths)
    assert len(tracker.roots()) == MAX_ROOTS
    assert tracker.summary()["domains"]["api"]["output"] == MAX_ROOTS + 5  # reported: all read


def test_prices_of_claude_code_2_1_330():
    p = PriceTable()
    opus55 = p.find("claude-opus-5-5")
    assert (opus55["input"], opus55["output"], opus55["cache_read"]) == (4, 20, 0.2)
    assert (opus55["cache_write"], opus55["cache_write_1h"]) == (5, 8)
    # the real CLI's total_cost_usd for 13 in, 8 out, 100 cache write (5m), 1000 cache read
    assert p.cost("claude-opus-5-5", 13, 8, 100, 0, 1000) == pytest.approx(0.000912, abs=1e-12)
    assert p.find("claude-opus-5")["input"] == 5
    assert p.find("claude-sonnet-5-5-20261001")["cache_read"] == 0.1
    assert p.find("claude-sonnet-4-20250514")["input"] == 3
    assert p.find("us.anthropic.claude-opus-4-5-20251101-v1:0")["input"] == 5
    assert p.find("claude-opus-5-5[1m]")["input"] == 4
    assert p.find("claude-haiku-4-5-20251001")["output"] == 5
    # 1-hour cache writes, fast mode, US inference, web search, a long prompt
    assert p.cost("claude-opus-5-5", 0, 0, 0, 1_000_000, 0) == pytest.approx(8.0)
    assert p.cost("claude-opus-5-5", 1_000_000, 0, 0, 0, 0, fast=True) == pytest.approx(8.0)
    assert p.cost("claude-opus-5-5", 1_000_000, 0, 0, 0, 0, us_geo=True) == pytest.approx(4.4)
    assert p.cost("claude-opus-5-5", 0, 0, 0, 0, 0, web_search=3) == pytest.approx(0.03)
    assert p.cost("claude-haiku-5-5", 100_000, 0, 0, 0, 0) == pytest.approx(0.01)
    assert p.cost("claude-haiku-5-5", 100_001, 0, 0, 0, 0) == pytest.approx(0.0500005)


def test_cache_write_split_as_claude_code_counts_it(env):
    root, home, ws = env
    api = root / "api"
    line = json.loads(assistant(api, "m1", "r1", 5, cw=300))
    line["message"]["usage"]["cache_creation"] = {
        "ephemeral_5m_input_tokens": 100,
        "ephemeral_1h_input_tokens": 200,
    }
    copied = json.loads(assistant(api, "m2", "r2", 0, inp=0, cw=0, cr=0))
    # a record copied into a forked session: zero total, a stale 5-minute split
    copied["message"]["usage"]["cache_creation"] = {"ephemeral_5m_input_tokens": 400}
    transcript(home, api).write_text(json.dumps(line) + "\n" + json.dumps(copied) + "\n")
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    assert d["cache_write"] == 300
    # config price for claude-opus-4-5: input 10, so 5m 12.5 and 1h 20 per MTok
    expect = (2 * 10 + 5 * 50 + 100 * 12.5 + 200 * 20 + 1000 * 1.0) / 1e6
    assert d["cost_usd"] == pytest.approx(expect)


def cost_state(session: str, inp, out, cw, cr, model="claude-opus-5-5") -> str:
    return json.dumps(
        {
            "type": "cost-state",
            "sessionId": session,
            "totalCostUSD": 0.5,
            "modelUsage": {
                model: {
                    "inputTokens": inp,
                    "outputTokens": out,
                    "cacheReadInputTokens": cr,
                    "cacheCreationInputTokens": cw,
                    "cacheCreationEphemeral5mInputTokens": cw,
                    "cacheCreationEphemeral1hInputTokens": 0,
                    "webSearchRequests": 0,
                    "costUSD": 0.5,
                }
            },
        },
        separators=(",", ":"),
    )


def compact_boundary(cwd, pre: int, ts: str) -> str:
    return json.dumps(
        {
            "type": "system",
            "subtype": "compact_boundary",
            "compactMetadata": {"trigger": "manual", "preTokens": pre, "postTokens": 900},
            "cwd": str(cwd),
            "sessionId": "s1",
            "timestamp": ts,
        }
    )


def test_compaction_found_through_claude_codes_cost_state(env):
    root, home, ws = env
    api = root / "api"
    m = "claude-opus-5-5"
    t = transcript(home, api, "s1.jsonl")
    lines = [
        assistant(api, "m1", "r1", 10, inp=100, cw=0, cr=0, model=m, ts="2026-11-21T06:00:00Z"),
        compact_boundary(api, 5000, "2026-11-21T06:01:00Z"),
        assistant(api, "m2", "r2", 20, inp=200, cw=0, cr=0, model=m, ts="2026-11-21T06:02:00Z"),
        # Claude Code's own totals: the two responses and a compaction of 5100 in, 300 out
        cost_state("s1", 100 + 200 + 5100, 10 + 20 + 300, 0, 0),
    ]
    t.write_text("\n".join(lines) + "\n")
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    assert (d["unlogged"], d["compactions"], d["unlogged_est"]) == (5400, 1, 0)
    assert (d["input"], d["output"], d["total"], d["responses"]) == (5400, 330, 5730, 2)
    assert d["unlogged_cost_usd"] == pytest.approx((5100 * 4 + 300 * 20) / 1e6)
    assert d["cost_usd"] == pytest.approx((5400 * 4 + 330 * 20) / 1e6)
    # later work: a response after the cost-state is not taken out of the compaction's
    # share; a second compaction is only estimated (its context) until the next cost-state
    with open(t, "a") as fh:
        fh.write(
            assistant(api, "m3", "r3", 5, inp=50, cw=0, cr=0, model=m, ts="2026-11-21T06:03:00Z")
            + "\n"
            + compact_boundary(api, 7000, "2026-11-21T06:04:00Z")
            + "\n"
        )
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    assert (d["unlogged"], d["compactions"], d["unlogged_est"]) == (5400, 2, 7000)
    assert d["total"] == 5730 + 55
    with open(t, "a") as fh:  # exit: the final cost-state covers the second one
        fh.write(cost_state("s1", 5400 + 50 + 7100, 335 + 400, 0, 0) + "\n")
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    assert (d["unlogged"], d["unlogged_est"], d["total"]) == (5400 + 7500, 0, 5785 + 7500)


def test_cost_state_of_a_fork_is_not_added(env):
    root, home, ws = env
    api = root / "api"
    m = "claude-opus-5-5"
    copied = rec(
        assistant(api, "m1", "r1", 0, inp=0, cw=0, cr=0, model=m),
        sessionId="s2",
        requestSessionId="s1",
    )
    own = rec(assistant(api, "m2", "r2", 7, inp=70, cw=0, cr=0, model=m), sessionId="s2")
    # the fork's totals include the session it was forked from
    transcript(home, api, "s2.jsonl").write_text(
        "\n".join([copied, own, cost_state("s2", 9000, 900, 0, 0)]) + "\n"
    )
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    assert (d["unlogged"], d["total"]) == (0, 77)


def test_subagent_tokens_are_not_taken_for_unlogged(env):
    root, home, ws = env
    api = root / "api"
    m = "claude-opus-5-5"
    t = transcript(home, api, "s1.jsonl")
    t.write_text(
        "\n".join(
            [
                rec(assistant(api, "m1", "r1", 1, inp=10, cw=0, cr=0, model=m), sessionId="s1"),
                rec(
                    assistant(
                        api, "m3", "r3", 3, inp=30, cw=0, cr=0, model=m, ts="2026-11-21T06:00:05Z"
                    ),
                    sessionId="s1",
                ),
                cost_state("s1", 60, 6, 0, 0),
            ]
        )
        + "\n"
    )
    subagent(home, api, "s1", "z").write_text(
        rec(assistant(api, "m2", "r2", 2, inp=20, cw=0, cr=0, model=m), sessionId="s1") + "\n"
    )
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    assert (d["unlogged"], d["total"], d["responses"]) == (0, 66, 3)


def test_only_new_bytes_are_read_with_subagents_and_roots(env):
    root, home, ws = env
    api = root / "api"
    main = transcript(home, api, "s1.jsonl")
    main.write_text(assistant(api, "m1", "r1", 1) + "\n")
    subagent(home, api, "s1", "a").write_text(assistant(api, "m2", "r2", 2) + "\n")
    tracker = UsageTracker(ws, home=str(home))
    tracker.poll({str(main): "api"})
    before = tracker.bytes_read
    for _ in range(3):
        assert tracker.poll({str(main): "api"}) == 0
    assert tracker.bytes_read == before


def test_work_wakes_an_idle_agent(tmp_path, monkeypatch, engine_for):
    """Mail that reaches an agent without the router (the operator's message, written by the
    room or the CLI) and a task that became ready for it both wake it: a nudge typed into
    its pane once it is at rest."""
    from comm_node_tui.coordination.operator import message_to_agent
    from comm_node_tui.engine.watched import sort_changes, watch_paths
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol import receipts as rc
    from comm_node_tui.protocol.status import update_status

    socket = f"cn-test-{os.getpid()}-wake"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    for d in ("api", "web"):
        (root / d).mkdir(parents=True)
    agent = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
    (root / "comm-node.toml").write_text(
        '[project]\nname = "wake"\n[tasks]\nsource = "native"\n'
        f'[[domains]]\nname = "api"\npath = "api"\ncommand = "{agent} --log {root}/api.log"\n'
        f'[[domains]]\nname = "web"\npath = "web"\n'
        f'command = "{agent} --hooks --log {root}/web.log"\n'
    )
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "API"\ndomain = "api"\n'
        '[[tasks]]\nid = "T2"\ntitle = "Page"\ndomain = "web"\ndepends_on = ["T1"]\n'
    )

    def submits() -> list[str]:
        log = [json.loads(x) for x in (root / "web.log").read_text().splitlines()]
        return [r["text"] for r in log if r["event"] == "submit"]

    try:
        ap = AgentPanes(load_workspace(str(root)))
        ap.up()
        wait_for(lambda: "❯" in ap.peek("web"), show=lambda: ap.peek("web"))
        eng = engine_for(root)
        eng.nudger.every_s = 0.0  # one nudge per agent per 30 s is not what is tested here
        web = eng.ws.domains["web"]
        assert web.paths.inbox in watch_paths(eng.ws)
        update_status(web.paths.status, "web", state="idle")
        eng.refresh_status("web")
        eng.screens.apply(eng.screens.read())  # a nudge goes only to a screen at rest
        # 1. the operator's message, as the room writes it; the watcher reports the file
        message_to_agent(eng.coord, "web", "please look at the login page")
        [msg] = [f for f in os.listdir(web.paths.inbox) if f.endswith(".md")]
        eng.handle_changes({(1, os.path.join(web.paths.inbox, msg))})
        assert sort_changes(eng.ws, {(1, os.path.join(web.paths.inbox, ".x.tmp"))}).inboxes == []
        eng.nudger.tick()
        eng.actions.drain()
        assert submits() == ["You have 1 new message: run `comm-node inbox`"]
        # its turn started (the agent's hook said so): the nudge is done, not retried
        receipts = rc.path_in(eng.ws.paths.state)
        wait_for(lambda: rc.receipts(receipts, "web")[-1]["state"] in rc.PROVED)
        update_status(web.paths.status, "web", state="idle")
        eng.refresh_status("web")

        def at_rest() -> bool:
            eng.screens.apply(eng.screens.read())
            return eng.panes["web"]["screen_state"] == "idle"  # what a nudge waits for

        wait_for(at_rest, show=lambda: ap.peek("web"))
        # 2. T1 closes: T2 is ready for web, which is told (a message, then a nudge)
        os.remove(os.path.join(web.paths.inbox, msg))  # read
        eng.coord.claim(eng.ws.domains["api"], "T1")
        eng.coord.done(eng.ws.domains["api"], "T1", [])
        eng.tasks.tick()
        ready = [f for f in os.listdir(web.paths.inbox) if f.startswith("r-T2-")]
        assert len(ready) == 1, os.listdir(web.paths.inbox)
        text = (Path(web.paths.inbox) / ready[0]).read_text()
        assert 'type: "task_ready"' in text and "comm-node task claim T2" in text
        eng.nudger.tick()
        eng.actions.drain()
        # the nudge names the work (engine/nudges.py)
        assert submits()[-1] == (
            "You have 1 new message (task T2 is ready for you): run `comm-node inbox`"
        )
        assert len(submits()) == 2
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
