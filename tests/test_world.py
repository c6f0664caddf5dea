"""The typed World: immutable, and `to_json()` byte for byte the dict `comm-node status
--json` printed before it was typed (tests/legacy_world.py keeps that builder as the
reference). Real workspaces, a real engine, real tmux panes, real transcripts, real git."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.coordination.coordinator import Coordinator, grant_budget
from comm_node_tui.coordination.operator import pause
from comm_node_tui.engine.agent_state import AgentState, Health
from comm_node_tui.engine.world import World, agent_view, snapshot
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.protocol.status import update_status
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import run_cli
from tests.legacy_world import legacy_snapshot
from tests.test_boundaries import config, files, git_repo
from tests.test_usage import assistant, transcript
from tests.waiting import wait_for

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
TOP = [
    "project",
    "workspace",
    "agents",
    "tasks",
    "locks",
    "budgets",
    "usage",
    "tasks_version",
    "task_graph",
    "blocked",
    "artifacts",
    "boundaries",
    "paused",
    "needs",
    "receipts",
    "conflicts",
]
AGENT_KEYS = [
    "name",
    "state",
    "hook_state",
    "task",
    "progress",
    "last_heartbeat",
    "heartbeat_age_s",
    "health",
    "stale",
    "lost",
    "role",
    "problem",
]


def dumps(world: dict) -> str:
    """The bytes status --json prints, with the budgets' write times set aside (each build
    stamps its own `updated`; the key must still be there)."""
    world = json.loads(json.dumps(world))
    for b in world["budgets"]:
        assert isinstance(b.pop("updated"), str)
        b["updated"] = "-"
    return json.dumps(world, ensure_ascii=False, indent=2)


def shape(value: object) -> object:
    """The keys, in order, at every depth (lists: the union of their items' shapes)."""
    if isinstance(value, dict):
        return [[k, shape(v)] for k, v in value.items()]
    if isinstance(value, list):
        merged: list = []
        for item in value:
            s = shape(item)
            if s not in merged:
                merged.append(s)
        return merged
    return None


@pytest.fixture
def busy_ws(tmp_path, monkeypatch):
    """Two agents in real panes, a task tree, a lock, a grant, an artifact, token use."""
    socket = f"cn-world-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    home = tmp_path / "claude"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home))
    root = tmp_path / "ws"
    parts = [
        '[project]\nname = "world"\n[agents]\nbudget_tokens = 1000\n'
        'work_budget_tokens = 900000\n[tasks]\nsource = "native"\n'
    ]
    for name in ("alpha", "beta"):
        (root / name / "src").mkdir(parents=True)
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\nrole = "the {name}"\n'
            f'scope = ["src/**"]\ncommand = "{AGENT} --log {root}/{name}.log"\n'
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "E1"\ntitle = "epic"\n'
        '[[tasks]]\nid = "T1"\ntitle = "first"\nparent = "E1"\ndomain = "alpha"\n'
        'labels = ["api"]\n'
        '[[tasks]]\nid = "T2"\ntitle = "second"\ndepends_on = ["T1"]\n'
        'required_artifacts = ["alpha:api.yaml"]\n'
    )
    ws = load_workspace(str(root))
    panes = AgentPanes(ws)
    panes.up()
    wait_for(
        lambda: all("❯" in panes.peek(n) for n in ("alpha", "beta")),
        what="both agents at their prompt",
        show=lambda: {n: panes.peek(n)[-300:] for n in ("alpha", "beta")},
    )
    update_status(ws.domains["alpha"].paths.status, "alpha", state="busy", task="T1")
    (root / "alpha" / "src" / "api.yaml").write_text("openapi: 3.1.0\n")
    transcript(home, root / "alpha").write_text(assistant(root / "alpha", "m1", "r1", 300) + "\n")
    yield root
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_the_engine_world_is_the_shape_it_was(busy_ws, engine_for):
    eng = engine_for(busy_ws)
    coord = eng.coord
    coord.acquire(eng.ws.domains["beta"], ["src/**"], reason="refactor")
    grant_budget(coord, "alpha", 500, "test")
    coord.publish(eng.ws.domains["alpha"], str(busy_ws / "alpha" / "src" / "api.yaml"), None)
    eng.refresh_usage(force=True)
    eng.screens.apply_states(AgentPanes(eng.ws, coord).states())
    eng.tick()
    eng.scan()
    # a pause file from before per-domain pause: it stopped everyone, and still does
    (busy_ws / ".comm-node" / "guarded").mkdir(parents=True, exist_ok=True)
    (busy_ws / ".comm-node" / "guarded" / "paused.json").write_text('{"paused_at": "t0"}\n')
    args = dict(
        statuses=dict(eng.agents),
        panes=dict(eng.panes),
        tasks_view=eng.tasks_view,
        budgets=eng.budgets,
        usage=eng.usage_summary,
        tasks_version=eng.tasks_version,
        boundaries=eng.boundaries,
        health=dict(eng.watchdog.health),
        now=time.time(),
    )
    world = snapshot(eng.ws, coord, **args)
    before = legacy_snapshot(eng.ws, coord, **args)
    # everything the shape can hold is there, so the comparison covers it
    assert [a.get("pane", {}).get("pane", "").startswith("%") for a in before["agents"]] == [
        True,
        True,
    ]
    assert before["usage"]["domains"]["alpha"]["models"]
    assert before["budgets"][0]["work"] and before["budgets"][0]["granted_tokens"] == 500
    assert before["locks"] and before["artifacts"] and before["tasks"]["ready"]
    assert before["blocked"] and before["task_graph"]["T1"]["parent"] == "E1"
    assert list(before) == TOP and list(before["agents"][0]) == [
        *AGENT_KEYS,
        "pane",
        "dialog",
        "context",
    ]
    assert before["paused"] == {"all": True, "domains": [], "paused_at": "t0"}
    assert dumps(world.to_json()) == dumps(before)
    # the engine hands an earlier World's task graph back in: kept, and the same bytes
    again = snapshot(eng.ws, coord, **args, graph=world.task_graph)
    assert again.task_graph is world.task_graph and again.tasks is world.tasks
    assert dumps(again.to_json()) == dumps(before)
    # Engine.snapshot() is a World; unchanged tasks are not built again for the next one
    first = eng.snapshot()
    assert isinstance(first, World) and eng.snapshot().tasks is first.tasks
    alpha = world.agent("alpha")
    assert alpha is not None and alpha.pane is not None and alpha.hook_state == AgentState.BUSY
    assert world.usage_of("alpha").total > 0 and world.budget("alpha").granted_tokens == 500


@pytest.fixture
def bounded_ws(tmp_path):
    """A repository whose domains break import rules (violations, edges, an unparsed file)."""
    root = tmp_path / "mono"
    files(
        root,
        {
            "core/__init__.py": "",
            "core/models.py": "X = 1\n",
            "api/__init__.py": "",
            "api/routes.py": "import core.models\n",
            "web/__init__.py": "",
            "web/views.py": "from api import routes\nimport core.models\n",
            "web/broken.py": "def nope(:\n",
        },
    )
    config(
        root,
        [
            {"name": "core", "path": ".", "scope": ["core/**"]},
            {"name": "api", "path": ".", "scope": ["api/**"], "allowed_imports": ["core"]},
            {"name": "web", "path": ".", "scope": ["web/**"], "forbidden_imports": ["api"]},
        ],
    )
    git_repo(root)
    return root


def test_status_json_from_the_files_is_the_shape_it_was(bounded_ws, engine_for):
    eng = engine_for(bounded_ws)
    assert eng.check_boundaries()["violations"]  # written to boundaries.json for viewers
    ws = load_workspace(str(bounded_ws))
    status = Path(ws.domains["core"].paths.status)  # the three domains share the root
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("[1, 2")  # unreadable: a problem, not a failure
    coord = Coordinator(ws)
    pause(coord, ["api"])  # one agent stopped by name: status says which
    now = time.time()
    before = legacy_snapshot(ws, coord, now=now)
    assert before["paused"]["domains"] == ["api"] and before["paused"]["all"] is False
    assert before["boundaries"]["violations"] and before["boundaries"]["unparsed"]
    assert before["boundaries"]["edges"] and before["agents"][0]["problem"]
    assert "efficiency" in before["budgets"][0]  # only the file-based budgets rate it
    assert dumps(snapshot(ws, coord, now=now).to_json()) == dumps(before)
    # the CLI prints the same shape (its own clock: values may move, keys may not)
    res = run_cli("status", "--json", cwd=bounded_ws)
    assert res.returncode == 0, res.stderr
    assert shape(json.loads(res.stdout)) == shape(before)
    assert json.loads(res.stdout)["paused"] == before["paused"]
    res = run_cli("status", cwd=bounded_ws)
    assert res.returncode == 0 and "PAUSED: api" in res.stdout, res.stdout


def test_the_world_cannot_be_changed(ws_root):
    ws = load_workspace(str(ws_root))
    world = snapshot(ws, Coordinator(ws))
    with pytest.raises(dataclasses.FrozenInstanceError):
        world.agents = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        world.agents[0].state = AgentState.BUSY  # type: ignore[misc]
    with pytest.raises(TypeError):
        world.task_graph["X"] = None  # type: ignore[index]
    assert isinstance(world.agents, tuple) and isinstance(world.locks, tuple)


def test_status_values_outside_the_vocabulary_are_typed(ws_root):
    ws = load_workspace(str(ws_root))
    view = agent_view(
        ws,
        "backend",
        {"state": "dancing", "task": ["T1"], "progress": 7, "last_heartbeat": {"x": 1}},
    )
    # what the agent side wrote is shown as text; a state nobody defined is unknown
    assert (view.state, view.hook_state) == (AgentState.UNKNOWN, AgentState.UNKNOWN)
    assert (view.task, view.progress, view.last_heartbeat) == ("['T1']", "7", "{'x': 1}")
    assert view.health == Health.OK and view.heartbeat_age_s is None
    json.dumps(view.to_json())  # still plain data
