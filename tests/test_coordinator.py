"""The integration coordinator (issue 18, item 4): a domain with role "integration" that the
engine starts, in a real tmux pane on a private socket with the fake agent, only once every
other domain's tasks are done; its contract as a native task and a message; never started
twice, across a restart too; its report announced to the operator and shown by `status`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.integration.coordinator import ready
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.protocol.mailbox import list_inbox
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import dedent, run_cli, write_workspace

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
TASKS = dedent(
    """
    [[tasks]]
    id = "T1"
    title = "Build the API"
    domain = "api"
    artifacts = ["openapi.yaml"]

    [[tasks]]
    id = "T2"
    title = "Build the web page"
    domain = "web"
    """
)


@pytest.fixture
def coord_ws(tmp_path: Path, monkeypatch) -> Path:
    socket = f"cn-test-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = write_workspace(
        tmp_path / "ws",
        domains=("api", "web", "integ"),
        extra='[tasks]\nsource = "native"\n\n[boundaries]\ncheck_interval_s = 0\n',
        domain_extra={
            "api": 'exports = ["openapi.yaml"]\n',
            "integ": f'command = "{AGENT} --log {tmp_path}/integ.log"\n',
        },
    )
    text = (root / "comm-node.toml").read_text()
    text = text.replace('role = "the integ role"', 'role = "integration"')
    (root / "comm-node.toml").write_text(text)
    (root / "tasks.toml").write_text(TASKS)
    yield root
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def events(eng, kind: str) -> list:
    return [e for e in eng.recent if e.type == kind]


def finish(root: Path, tid: str, domain: str) -> None:
    ws = load_workspace(str(root))
    coord = Coordinator(ws)
    coord.claim(ws.domains[domain], tid)
    if tid == "T1":  # its contract promises an artifact: published first
        spec = root / domain / "openapi.yaml"
        spec.write_text("openapi: 3.1.0\n")
        coord.publish(ws.domains[domain], str(spec), None)
    coord.done(ws.domains[domain], tid, [])


def wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_started_once_when_every_task_is_done_and_the_report_reaches_the_operator(
    coord_ws: Path, engine_for
):
    eng = engine_for(coord_ws)
    panes = AgentPanes(eng.ws)
    eng.tick()
    assert not events(eng, "integration.coordinator_started")
    finish(coord_ws, "T1", "api")
    eng.tick()  # one task of web still open
    assert not events(eng, "integration.coordinator_started")
    assert not panes.tmux.has_session()

    finish(coord_ws, "T2", "web")
    eng.tick()
    started = events(eng, "integration.coordinator_started")
    assert len(started) == 1 and started[0].agent == "integ"
    # its contract: a native task with done_when and verify, and a message from comm-node
    tasks = eng.ws and Coordinator(eng.ws).load_tasks()[0]
    task = tasks["integration"]
    assert task.domain == "integ" and task.status == "open"
    assert any("comm-node check" in x for x in task.contract.done_when)
    assert task.contract.verify == ["test -s .comm-node/integration-report.md"]
    inbox = list_inbox(eng.ws.domains["integ"].paths)
    assert [m["type"] for m in inbox] == ["integration_contract"]
    body = inbox[0]["body"]
    assert "api exports openapi.yaml" in body and "task T1 (api) promised artifact" in body
    assert "api published artifact openapi.yaml" in body
    assert "comm-node task claim integration" in body
    # its agent, in its pane (the fake agent shows its prompt)
    eng.actions.drain()
    wait_for(lambda: "integ" in panes.tmux.panes() and "❯" in panes.peek("integ"))
    assert set(panes.tmux.panes()) == {"integ"}  # the others were never started by it

    eng.tick()
    eng.tick()
    assert len(events(eng, "integration.coordinator_started")) == 1
    pane = panes.tmux.panes()["integ"].id

    # a restart: the marker says it was started; no second contract, no second start
    eng.stop()
    eng2 = engine_for(coord_ws)
    eng2.tick()
    eng2.actions.drain()
    assert not events(eng2, "integration.coordinator_started")
    assert panes.tmux.panes()["integ"].id == pane
    kinds = [m["type"] for m in list_inbox(eng2.ws.domains["integ"].paths)]
    assert kinds.count("integration_contract") == 1  # (and "task ready" for its task)
    res = run_cli("status", cwd=coord_ws)
    assert "report is not written yet" in res.stdout, res.stdout

    # the report: one event with its path, again only when it is rewritten
    report = coord_ws / "integ" / ".comm-node" / "integration-report.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("# Integration\nall artifacts present; tests pass\n")
    eng2.tick()
    eng2.tick()
    said = events(eng2, "integration.report")
    assert len(said) == 1 and said[0].data["path"] == str(report)
    assert str(report) in said[0].msg
    res = run_cli("status", cwd=coord_ws)
    assert f"integration report (integ): {report}" in res.stdout, res.stdout
    report.write_text("# Integration\nrewritten: one test fails\n")
    eng2.tick()
    assert len(events(eng2, "integration.report")) == 2


def test_off_in_the_config_or_without_an_integration_domain_nothing_starts(
    coord_ws: Path, engine_for
):
    toml = coord_ws / "comm-node.toml"
    toml.write_text(
        toml.read_text().replace("[tasks]", "[integration]\ncoordinator = false\n\n[tasks]")
    )
    finish(coord_ws, "T1", "api")
    finish(coord_ws, "T2", "web")
    eng = engine_for(coord_ws)
    eng.tick()
    assert not events(eng, "integration.coordinator_started")
    assert "integration" not in Coordinator(eng.ws).load_tasks()[0]


def test_ready_waits_for_every_task_of_the_other_domains(coord_ws: Path):
    ws = load_workspace(str(coord_ws))
    tasks = Coordinator(ws).load_tasks()[0]
    assert ready("integ", {}).ready is False  # nothing to integrate yet
    assert ready("integ", tasks).why == "2 of 2 tasks not done"
    finish(coord_ws, "T1", "api")
    finish(coord_ws, "T2", "web")
    tasks = Coordinator(ws).load_tasks()[0]
    assert ready("integ", tasks).ready


@pytest.mark.parametrize("report", ["../outside.md", "/etc/report.md", "reports/"])
def test_a_report_path_out_of_the_coordinators_folder_is_one_line(report: str):
    from comm_node_tui.errors import ConfigError
    from comm_node_tui.workspace.config import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config(f'[project]\nname = "p"\n[integration]\nreport = "{report}"\n')
    assert err.value.problems == [
        "comm-node.toml: integration.report: a file path relative to the coordinator's "
        "folder, without '..'"
    ]


def test_up_and_the_kickoff_leave_the_coordinator_to_the_engine(coord_ws: Path):
    """`comm-node up` with no names starts every agent but the integration coordinator,
    which waits for the other domains' tasks (the engine starts it); named, it starts; once
    the engine started it, `up` keeps it up like any agent."""
    from comm_node_tui.integration.coordinator import MARKER, held_back

    config = coord_ws / "comm-node.toml"
    text = config.read_text()
    # every agent the fake one ([agents] command, before the first [[domains]])
    config.write_text(text.replace("[agents]\n", f'[agents]\ncommand = "{AGENT}"\n', 1))
    ws = load_workspace(str(coord_ws))
    assert held_back(ws) == {"integ"}
    res = run_cli("up", cwd=coord_ws)
    assert res.returncode == 0, res.stderr
    panes = AgentPanes(ws)
    assert set(panes.tmux.panes()) == {"api", "web"}
    assert "integ" not in res.stdout
    res = run_cli("up", "integ", cwd=coord_ws)  # named: the operator's choice
    assert res.returncode == 0, res.stderr
    assert set(panes.tmux.panes()) == {"api", "web", "integ"}
    Coordinator(ws).store.write(MARKER, {"domain": "integ", "started_at": 1.0})
    assert held_back(ws) == set()
    config.write_text(config.read_text() + "\n[integration]\ncoordinator = false\n")
    Coordinator(ws).store.write(MARKER, {})
    assert held_back(load_workspace(str(coord_ws))) == set()  # no coordinator: an agent
