"""The engine's timers on real files: heartbeats, lost agents, artifacts, live tasks."""

from __future__ import annotations

import json
import os
import subprocess
import time

from comm_node_tui.protocol.messages import now_iso
from comm_node_tui.protocol.procs import start_time
from comm_node_tui.protocol.status import update_status
from tests.conftest import write_workspace
from tests.waiting import wait_for

HEARTBEATS = "heartbeat_stale_s = 0.3\nheartbeat_lost_s = 0.6\n"


def make(tmp_path, agents=""):
    root = write_workspace(
        tmp_path / "ws",
        extra='[tasks]\nsource = "native"\n',
        agents=agents,
        domain_extra={
            "frontend": 'imports = { backend = ["api.yaml"] }',
            "docs": 'imports = { backend = ["*"] }',
        },
    )
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "contract"\ndomain = "backend"\n'
        '[[tasks]]\nid = "T2"\ntitle = "screens"\ndomain = "frontend"\n'
        'required_artifacts = ["backend:api.yaml"]\n'
    )
    return root


def types(eng) -> list[str]:
    return [e.type for e in eng.recent]


def _agent_with_work(tmp_path, engine_for, **status):
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "native"\n', agents=HEARTBEATS)
    (root / "tasks.toml").write_text('[[tasks]]\nid = "T1"\ntitle = "x"\ndomain = "backend"\n')
    eng = engine_for(root)
    be = eng.ws.domains["backend"]
    update_status(be.paths.status, "backend", state="busy", **status)
    eng.refresh_status("backend")
    eng.coord.acquire(be, ["src/**"])
    eng.coord.claim(be, "T1")
    return eng


def test_silence_never_releases_anything(tmp_path, engine_for):
    """Claude Code sends no hook while idle or while one long reply streams: an agent that
    comm-node cannot see and that says nothing is an alert, never "lost"."""
    eng = _agent_with_work(tmp_path, engine_for)
    eng.tick()
    assert "agent.stale" not in types(eng)
    wait_for(lambda: (eng.tick(), "agent.stale" in types(eng))[1], timeout=5)
    stale = next(e for e in eng.recent if e.type == "agent.stale")
    assert stale.level == "warn"
    time.sleep(0.7)  # time passes (the behaviour): well past heartbeat_lost_s (0.6 s), still
    # nothing released
    eng.tick()
    assert "agent.lost" not in types(eng)
    assert [lk.holder for lk in eng.coord.locks()] == ["backend"]
    tasks, _ready, _ = eng.coord.load_tasks()
    assert tasks["T1"].assignee == "backend"


def test_an_agent_whose_process_is_alive_is_never_lost(tmp_path, engine_for):
    proc = subprocess.Popen(["sleep", "60"])
    try:
        eng = _agent_with_work(
            tmp_path, engine_for, agent_pid=proc.pid, agent_start=start_time(proc.pid)
        )
        time.sleep(0.8)  # time passes (the behaviour): silent past both thresholds, and busy
        eng.tick()
        assert not {"agent.stale", "agent.lost", "agent.dead"} & set(types(eng))
        agent = eng.snapshot().agent("backend")
        assert agent.health == "ok" and agent.lost is False
        assert [lk.holder for lk in eng.coord.locks()] == ["backend"]
    finally:
        proc.kill()
        proc.wait()


def test_a_gone_agent_is_lost_after_the_grace_and_released(tmp_path, engine_for):
    proc = subprocess.Popen(["sleep", "60"])
    eng = _agent_with_work(
        tmp_path, engine_for, agent_pid=proc.pid, agent_start=start_time(proc.pid)
    )
    eng.tick()
    proc.kill()
    proc.wait()
    eng.tick()
    assert "agent.dead" in types(eng)  # gone: reported at once, locks kept for a restart
    assert [lk.holder for lk in eng.coord.locks()] == ["backend"]
    wait_for(lambda: (eng.tick(), "agent.lost" in types(eng))[1], timeout=5)
    lost = next(e for e in eng.recent if e.type == "agent.lost")
    assert lost.level == "error" and lost.data["alert"] is True
    assert eng.coord.locks() == []
    tasks, ready, _ = eng.coord.load_tasks()
    assert tasks["T1"].status == "open" and ready.ready == ["T1"]
    assert "task.released" in types(eng) and "lock.released" in types(eng)
    eng.tick()
    assert types(eng).count("agent.lost") == 1  # one event per transition
    # A new agent process reports: it is alive again.
    again = subprocess.Popen(["sleep", "60"])
    try:
        be = eng.ws.domains["backend"]
        update_status(
            be.paths.status,
            "backend",
            state="idle",
            agent_pid=again.pid,
            agent_start=start_time(again.pid),
        )
        eng.refresh_status("backend")
        eng.tick()
        assert types(eng)[-1] == "agent.recovered"
    finally:
        again.kill()
        again.wait()


def test_a_recycled_pid_is_not_the_agent(tmp_path, engine_for):
    proc = subprocess.Popen(["sleep", "60"])
    try:
        # Same pid, another start time: another process, so the agent is gone.
        eng = _agent_with_work(
            tmp_path, engine_for, agent_pid=proc.pid, agent_start=start_time(proc.pid) - 1
        )
        eng.tick()
        assert "agent.dead" in types(eng)
    finally:
        proc.kill()
        proc.wait()


def test_artifact_announced_to_importers_and_unblocks_task(tmp_path, engine_for):
    root = make(tmp_path)
    eng = engine_for(root)
    _tasks, ready, _ = eng.coord.load_tasks()
    assert ready.ready == ["T1"]
    (root / "backend" / "api.yaml").write_text("openapi: 3.1.0\n")
    eng.coord.publish(eng.ws.domains["backend"], str(root / "backend" / "api.yaml"), None)
    eng.tick()
    fe = list((root / "frontend" / ".comm-node" / "inbox").glob("a-backend-*.md"))
    docs = list((root / "docs" / ".comm-node" / "inbox").glob("a-backend-*.md"))
    assert len(fe) == 1 and len(docs) == 1  # imports by name and by "*"
    text = fe[0].read_text()
    assert 'type: "artifact_ready"' in text and "api.yaml" in text
    assert list((root / "backend" / ".comm-node" / "inbox").glob("*.md")) == []
    ready_events = [e for e in eng.recent if e.type == "task.ready"]
    assert [e.data["task"] for e in ready_events] == ["T2"]
    # Restart: nothing announced twice.
    eng.stop()
    again = engine_for(root)
    again.tick()
    assert "artifact.announced" not in [e.type for e in again.recent]
    inbox = root / "frontend" / ".comm-node" / "inbox"
    assert len(list(inbox.glob("a-*.md"))) == 1
    # T2 became ready for frontend once (work wakes agents): told once, not again at restart
    assert len(list(inbox.glob("r-T2-*.md"))) == 1


def test_task_source_edit_is_picked_up_live(tmp_path, engine_for):
    root = make(tmp_path)
    eng = engine_for(root)
    src = root / "tasks.toml"
    src.write_text(src.read_text() + '[[tasks]]\nid = "T9"\ntitle = "new"\ndomain = "docs"\n')
    os.utime(src, (time.time() + 1, time.time() + 1))
    eng.tick()
    assert [e.data["task"] for e in eng.recent if e.type == "task.ready"] == ["T9"]
    assert "tasks.changed" in types(eng)


def test_status_json_has_agents_with_heartbeat_health(tmp_path, cli):
    root = make(tmp_path, agents=HEARTBEATS)
    cli("status", "set", "busy", "--task", "T1", cwd=root / "backend")
    st = root / "docs" / ".comm-node" / "status.json"
    st.parent.mkdir(parents=True)
    st.write_text(json.dumps({"state": "idle", "last_heartbeat": now_iso(time.time() - 5)}))
    res = cli("status", "--json", cwd=root)
    assert res.returncode == 0, res.stderr
    world = json.loads(res.stdout)
    agents = {a["name"]: a for a in world["agents"]}
    for a in agents.values():
        assert {"name", "state", "task", "last_heartbeat", "stale", "lost"} <= set(a)
    assert agents["backend"]["state"] == "busy" and agents["backend"]["lost"] is False
    # docs is idle and silent: healthy (silence is never "lost")
    assert agents["docs"]["lost"] is False and agents["docs"]["health"] == "ok"
    assert agents["frontend"]["state"] == "unknown" and agents["frontend"]["lost"] is False
    assert world["tasks"]["counts"]["ready"] == 1
    assert {"locks", "budgets", "artifacts"} <= set(world)


def test_a_republished_artifact_is_announced_again_after_an_unchanged_tick(
    tmp_path, engine_for
):
    """The timer's pass skips a manifest whose file is unchanged since it was read; a new
    publish (the manifest rewritten) is read and announced at the next pass."""
    root = make(tmp_path)
    eng = engine_for(root)
    api = root / "backend" / "api.yaml"
    inbox = root / "frontend" / ".comm-node" / "inbox"
    api.write_text("openapi: 3.1.0\n")
    eng.coord.publish(eng.ws.domains["backend"], str(api), None)
    eng.tick()
    eng.tick()  # unchanged: nothing new
    assert len(list(inbox.glob("a-backend-*.md"))) == 1
    api.write_text("openapi: 3.1.1\n")
    eng.coord.publish(eng.ws.domains["backend"], str(api), None)
    eng.tick()
    assert len(list(inbox.glob("a-backend-*.md"))) == 2
    announced = [e for e in eng.recent if e.type == "artifact.announced"]
    assert len({e.data["sha256"] for e in announced}) == 2
