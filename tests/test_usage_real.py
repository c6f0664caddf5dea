"""Token use of the real Claude Code CLI (the pinned build) against the scripted model: what
UsageTracker sums from the transcripts equals what the model answered, request by request,
and its cost equals the cost Claude Code reports itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from comm_node_tui.usage.transcripts import UsageTracker, project_dir_name
from comm_node_tui.workspace.discovery import load_workspace
from tests.realclaude import claude_binary

# No skip: a missing pinned build fails with one clear line (tests/realclaude.py).
pytestmark = pytest.mark.usefixtures("pinned_claude")


@pytest.fixture
def fresh_model():
    """A model of this test's own: its log is the oracle for this test alone."""
    from comm_node_tui.model import ScriptedModel

    with ScriptedModel() as m:
        yield m


def workspace(tmp_path: Path, api_rel: str = "api"):
    root = tmp_path / "ws"
    (root / api_rel).mkdir(parents=True)
    (root / "web").mkdir()
    (root / "comm-node.toml").write_text(
        '[project]\nname = "u"\n'
        f'[[domains]]\nname = "api"\npath = "{api_rel}"\n'
        '[[domains]]\nname = "web"\npath = "web"\n'
    )
    return root, load_workspace(str(root))


def claude_p(home, cwd: Path, *args: str) -> dict:
    res = subprocess.run(
        [claude_binary(), "-p", *args, "--output-format", "json"],
        cwd=cwd,
        env=home.environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)


def served(model) -> dict[str, int]:
    """Tokens by kind over every response the model sent."""
    out = {"input": 0, "output": 0, "cache_write": 0, "cache_read": 0, "responses": 0}
    for e in model.requests():
        if e.usage is None or not e.completed or e.kind == "count_tokens":
            continue
        out["input"] += e.usage.get("input_tokens", 0)
        out["output"] += e.usage.get("output_tokens", 0)
        out["cache_write"] += e.usage.get("cache_creation_input_tokens", 0)
        out["cache_read"] += e.usage.get("cache_read_input_tokens", 0)
        out["responses"] += 1
    return out


def counted(d: dict) -> dict[str, int]:
    return {k: d[k] for k in ("input", "output", "cache_write", "cache_read")}


def test_subagent_usage_equals_the_models_log_and_claudes_cost(tmp_path, fresh_model):
    model = fresh_model
    from comm_node_tui.model import prepare_claude_home

    root, ws = workspace(tmp_path)
    api = root / "api"
    home = prepare_claude_home(tmp_path / "home", model.base_url, trust=[api])
    out = claude_p(home, api, "CN_AGENT say hello from the sub-agent")
    assert out["subagent_stats"]["spawned"] == 1
    folder = Path(home.config_dir) / "projects" / project_dir_name(str(api))
    main = folder / f"{out['session_id']}.jsonl"
    subs = list((folder / out["session_id"] / "subagents").glob("agent-*.jsonl"))
    assert main.is_file() and len(subs) == 1
    # the engine hands over what the hooks reported: the session's transcript
    tracker = UsageTracker(ws, home=str(tmp_path / "not-the-agents-config"))
    tracker.poll({str(main): "api"})
    d = tracker.summary()["domains"]["api"]
    want = served(model)
    assert counted(d) == {k: want[k] for k in counted(d)}
    assert d["responses"] == want["responses"] >= 3  # main, sub-agent, after the result
    assert d["cost_usd"] == pytest.approx(out["total_cost_usd"], abs=1e-6)
    assert tracker.summary()["unpriced_models"] == []
    assert tracker.summary()["domains"]["web"]["total"] == 0


def test_long_domain_path_in_another_config_dir(tmp_path, fresh_model):
    model = fresh_model
    from comm_node_tui.model import prepare_claude_home

    deep = "/".join(f"a_long_folder_name_for_claude_{i}" for i in range(7))
    root, ws = workspace(tmp_path, deep)
    api = root / deep
    home = prepare_claude_home(tmp_path / "agent-home", model.base_url, trust=[api])
    first = claude_p(home, api, "hello one")
    folder = Path(home.config_dir) / "projects" / project_dir_name(str(api))
    assert len(folder.name) > 200 and folder.is_dir()  # the name the real CLI chose
    tracker = UsageTracker(ws, home=str(tmp_path / "control-room-claude"))
    tracker.poll({str(folder / f"{first['session_id']}.jsonl"): "api"})
    second = claude_p(home, api, "hello two")  # nobody reports it: found in the learned dir
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    want = served(model)
    assert counted(d) == {k: want[k] for k in counted(d)}
    total_cost = first["total_cost_usd"] + second["total_cost_usd"]
    assert d["cost_usd"] == pytest.approx(total_cost, abs=1e-6)


def test_compact_tokens_come_from_claudes_cost_state(tmp_path, fresh_model):
    model = fresh_model
    from comm_node_tui.model import prepare_claude_home

    root, ws = workspace(tmp_path)
    api = root / "api"
    home = prepare_claude_home(tmp_path / "home", model.base_url, trust=[api])
    first = claude_p(home, api, "hello before compacting")
    sid = first["session_id"]
    claude_p(home, api, "/compact", "--resume", sid)
    last = claude_p(home, api, "hello after compacting", "--resume", sid)
    compacts = [e for e in model.requests() if e.kind == "side" and e.usage]
    assert compacts, "no compaction request reached the model"
    tracker = UsageTracker(ws, home=home.config_dir)
    tracker.poll()
    d = tracker.summary()["domains"]["api"]
    want = served(model)
    assert counted(d) == {k: want[k] for k in counted(d)}
    assert d["unlogged"] == sum(
        e.usage["input_tokens"] + e.usage["output_tokens"] for e in compacts
    )
    assert d["compactions"] == 1 and d["unlogged_est"] == 0
    assert d["cost_usd"] == pytest.approx(last["total_cost_usd"], abs=1e-6)  # cumulative
