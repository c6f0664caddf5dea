"""Completion contracts, the verify gate on `task done`, reopen, the circuit breaker and the
operator's override: the real CLI, real verify commands in real subprocesses, real files."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.coordination.tasks import load_beads_jsonl
from comm_node_tui.coordination.verify import TAIL_BYTES, run_command
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, run_cli, write_workspace
from tests.waiting import wait_for

NEEDS_OK = "test -f ok.txt || { echo 'ok.txt is missing, see the spec'; exit 1; }"
AGENT = "backend"


def _ws(tmp_path: Path, *, verify: str = "", tasks_extra: str = "", task_keys: str = "") -> Path:
    root = write_workspace(
        tmp_path / "ws",
        extra=f'[tasks]\nsource = "native"\n{tasks_extra}\n',
        domain_extra={"backend": verify},
    )
    (root / "tasks.toml").write_text(
        f'[[tasks]]\nid = "T1"\ntitle = "the API"\ndomain = "backend"\n{task_keys}\n'
    )
    return root


def agent_cli(root: Path, *args: str, domain: str = AGENT) -> subprocess.CompletedProcess:
    """The CLI as the agent runs it from its pane: $COMM_NODE_DOMAIN set, in its folder."""
    return run_cli(*args, cwd=root / domain, env=cli_env(COMM_NODE_DOMAIN=domain), timeout=60)


def operator_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI as the operator runs it: the workspace root, no agent environment."""
    return run_cli(*args, cwd=root, timeout=60)


def show(root: Path, tid: str = "T1") -> dict:
    res = operator_cli(root, "task", "show", tid, "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def events(root: Path) -> list[dict]:
    path = root / ".comm-node" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def types(root: Path) -> list[str]:
    return [e["type"] for e in events(root)]


# ---- contracts ---------------------------------------------------------------------------
CONTRACT = """\
done_when = ["GET /health answers 200", "the OpenAPI file lists /health"]
artifacts = ["api.yaml"]
notify = ["frontend", "operator"]
verify = ["test -f api.yaml"]
notes = "keep the response under 1 KB"
"""


def test_a_native_contract_is_shown_and_handed_to_the_agent_that_claims(tmp_path):
    root = _ws(tmp_path, verify='verify = ["true"]', task_keys=CONTRACT)
    row = show(root)
    assert row["contract"] == {
        "done_when": ["GET /health answers 200", "the OpenAPI file lists /health"],
        "artifacts": ["api.yaml"],
        "notify": ["frontend", "operator"],
        "verify": ["test -f api.yaml"],
        "context": "keep the response under 1 KB",
    }
    # the domain's commands first, then the task's own
    assert row["verify"] == ["true", "test -f api.yaml"]
    assert row["attempts"] == [] and row["last_failure"] is None
    human = operator_cli(root, "task", "show", "T1").stdout
    assert "done when:\n  - GET /health answers 200\n" in human
    assert "$ test -f api.yaml" in human and "publish: api.yaml" in human
    claim = agent_cli(root, "task", "claim", "T1")
    assert claim.returncode == 0, claim.stderr
    for text in ("GET /health answers 200", "$ true", "$ test -f api.yaml", "publish: api.yaml"):
        assert text in claim.stdout, claim.stdout
    again = json.loads(agent_cli(root, "task", "claim", "T1", "--json").stdout)
    assert again["contract"]["artifacts"] == ["api.yaml"] and again["last_failure"] is None


def test_bad_contract_values_are_reported_and_left_out(tmp_path):
    root = _ws(tmp_path, task_keys='done_when = "one string"\nverify = [1]\nnotes = 3\n')
    res = operator_cli(root, "task", "show", "T1", "--json")
    assert res.returncode == 0
    assert "tasks[0] (T1).done_when: must be a list of non-empty strings" in res.stderr
    assert "(T1).verify: must be a list" in res.stderr and "(T1).notes: must be text" in res.stderr
    assert json.loads(res.stdout)["contract"]["verify"] == []


def test_a_beads_contract_comes_from_its_own_fields_never_its_verify(tmp_path):
    record = {
        "id": "bd-1",
        "title": "health endpoint",
        "status": "open",
        "priority": 1,
        "issue_type": "task",
        "labels": ["domain:backend"],
        "acceptance_criteria": "- [ ] GET /health answers 200\n* logs nothing\n3. documented\n",
        "design": "one handler, no database",
        "notes": "ask frontend about the shape",
        # an agent can write a Beads record (`bd create`): a command here must never run
        "metadata": json.dumps({"artifacts": ["health.md"], "verify": ["touch pwned"]}),
    }
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "beads"\n')
    (root / ".beads").mkdir()
    (root / ".beads" / "issues.jsonl").write_text(json.dumps(record) + "\n")
    tasks, problems = load_beads_jsonl(str(root / ".beads" / "issues.jsonl"), {"backend"})
    c = tasks["bd-1"].contract
    assert problems == []
    assert c.done_when == ["GET /health answers 200", "logs nothing", "documented"]
    assert c.artifacts == ["health.md"] and c.verify == []
    assert c.context == "design: one handler, no database\n\nnotes: ask frontend about the shape"
    claim = agent_cli(root, "task", "claim", "bd-1")
    assert claim.returncode == 0, claim.stderr
    assert "done when:\n  - GET /health answers 200\n  - logs nothing" in claim.stdout
    assert "check the criteria yourself" in claim.stdout  # no gate configured: said so
    res = agent_cli(root, "task", "done", "bd-1")
    assert res.returncode == 5 and "not published: health.md" in res.stderr
    assert not (root / "backend" / "pwned").exists()


def test_the_real_beads_exports_give_their_design_and_notes_as_context():
    folder = Path("/work/shared/data/beads")
    files = sorted(folder.glob("*.jsonl"))
    assert files, "the real Beads exports are missing"
    with_notes = 0
    for path in files:
        tasks, _problems = load_beads_jsonl(str(path), set())
        raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for rec in raw:
            c = tasks[rec["id"]].contract
            assert c.verify == []
            if rec.get("notes"):
                with_notes += 1
                assert c.context.startswith(("design: ", "notes: ")) and len(c.context) <= 4000
    assert with_notes > 10


# ---- the gate: the loop fail -> reason -> next attempt -> pass -------------------------------
def test_a_failing_gate_refuses_keeps_the_claim_and_the_next_attempt_passes(tmp_path):
    root = _ws(tmp_path, verify=f"verify = [{json.dumps(NEEDS_OK)}]")
    assert agent_cli(root, "task", "claim", "T1").returncode == 0
    res = agent_cli(root, "task", "done", "T1")
    assert res.returncode == 5, res.stderr
    first = res.stderr.splitlines()[0]
    assert (
        first.startswith("comm-node: task T1 not closed: `test -f ok.txt") and "exited 1" in first
    )
    assert "attempt 1 of 3" in first
    assert "| ok.txt is missing, see the spec" in res.stderr
    row = show(root)
    assert row["status"] == "in_progress" and row["assignee"] == AGENT  # nothing closed
    assert [a["result"] for a in row["attempts"]] == ["fail"]
    assert row["last_failure"]["excerpt"] == "ok.txt is missing, see the spec\n"
    assert row["last_failure"]["by"] == AGENT and row["failures"] == 1
    human = operator_cli(root, "task", "show", "T1").stdout
    assert "last attempt failed (backend" in human and "| ok.txt is missing" in human

    (root / "backend" / "ok.txt").write_text("fixed\n")
    res = agent_cli(root, "task", "done", "T1")
    assert res.returncode == 0, res.stderr
    assert "T1 done (verified: 1 passed)" in res.stdout
    row = show(root)
    assert row["status"] == "closed"
    assert [a["result"] for a in row["attempts"]] == ["fail", "pass"]
    assert row["last_failure"] is None
    assert types(root).count("task.verify_failed") == 1 and "task.done" in types(root)


def test_the_next_claim_is_handed_the_last_failure(tmp_path):
    root = _ws(tmp_path, verify=f"verify = [{json.dumps(NEEDS_OK)}]")
    agent_cli(root, "task", "claim", "T1")
    assert agent_cli(root, "task", "done", "T1").returncode == 5
    # the agent is lost; the watchdog puts its claim back (its own code path, in process)
    Coordinator(load_workspace(str(root))).unclaim_holder(AGENT, "lost")
    claim = agent_cli(root, "task", "claim", "T1")
    assert claim.returncode == 0, claim.stderr
    assert "last attempt failed (backend" in claim.stdout and "exited 1" in claim.stdout
    assert "| ok.txt is missing, see the spec" in claim.stdout
    data = json.loads(agent_cli(root, "task", "claim", "T1", "--json").stdout)
    assert data["last_failure"]["result"] == "fail"


def test_contract_artifacts_must_be_published_and_notify_is_told(tmp_path):
    root = _ws(tmp_path, task_keys=CONTRACT.replace('verify = ["test -f api.yaml"]\n', ""))
    agent_cli(root, "task", "claim", "T1")
    res = agent_cli(root, "task", "done", "T1")
    assert res.returncode == 5 and "the contract's artifacts are not published: api.yaml" in (
        res.stderr
    )
    assert show(root)["status"] == "in_progress"
    (root / "backend" / "api.yaml").write_text("openapi: 3.1.0\n")
    res = agent_cli(root, "task", "done", "T1", "--artifact", "api.yaml")
    assert res.returncode == 0, res.stderr
    outbox = list((root / "backend" / ".comm-node" / "outbox").glob("*.md"))
    assert len(outbox) == 1
    text = outbox[0].read_text()
    assert "frontend" in text and "operator" in text and "T1 is done: the API" in text


# ---- bad input ---------------------------------------------------------------------------
def test_a_missing_command_is_one_line_and_closes_nothing(tmp_path):
    root = _ws(tmp_path, verify='verify = ["no-such-tool-xyz --check"]')
    agent_cli(root, "task", "claim", "T1")
    res = agent_cli(root, "task", "done", "T1", "--json")
    assert res.returncode == 5
    assert "`no-such-tool-xyz --check` exited 127 (command not found)" in res.stderr
    out = json.loads(res.stdout)
    assert out["closed"] is False and out["commands"][0]["exit_code"] == 127
    assert show(root)["status"] == "in_progress"


def test_a_hanging_command_is_killed_with_its_group_at_the_timeout(tmp_path):
    pidfile = tmp_path / "child.pid"
    # a child in the background and a wait: both must die at the timeout
    cmd = f"sleep 300 & echo $! > {pidfile}; wait"
    start = time.monotonic()
    result = run_command(cmd, str(tmp_path), timeout_s=1.0)
    assert time.monotonic() - start < 10
    assert result.timed_out and result.exit_code is None and not result.ok
    assert "timed out after 1 s" in result.describe()
    child = int(pidfile.read_text())
    wait_for(lambda: not _alive(child), what="the background sleep is killed")


def test_a_command_that_sends_its_output_elsewhere_still_times_out(tmp_path):
    """`exec >log` closes the gate's pipe at once: the end of output is not the end of the
    command, and the timeout still holds (it once waited for the shell with no deadline)."""
    start = time.monotonic()
    result = run_command("exec sleep 300 > /dev/null 2>&1", str(tmp_path), timeout_s=1.0)
    assert time.monotonic() - start < 10
    assert result.timed_out and not result.ok
    quick = run_command("exec > /dev/null; exit 4", str(tmp_path), timeout_s=30)
    assert quick.exit_code == 4 and not quick.timed_out


def test_megabytes_of_output_keep_only_a_bounded_tail(tmp_path):
    result = run_command(
        "head -c 20000000 /dev/zero | tr '\\0' 'x'; echo; echo THE END; exit 3",
        str(tmp_path),
        timeout_s=60,
    )
    assert result.exit_code == 3 and result.output_bytes > 20_000_000
    assert len(result.tail.encode()) <= TAIL_BYTES and result.tail.endswith("THE END\n")


@pytest.mark.parametrize("output", ["", "> /dev/null 2>&1"])
def test_a_background_straggler_does_not_hold_the_gate(tmp_path, output):
    """Whether it holds the gate's pipe or writes elsewhere, it goes with its shell."""
    pidfile = tmp_path / "bg.pid"
    start = time.monotonic()
    result = run_command(f"sleep 300 {output} & echo $! > {pidfile}; echo ok", str(tmp_path), 120)
    assert result.ok and result.tail == "ok\n"
    assert time.monotonic() - start < 10
    wait_for(lambda: not _alive(int(pidfile.read_text())), what="the straggler is killed")


def test_the_gate_reports_a_timeout_through_the_cli(tmp_path):
    root = _ws(tmp_path, verify='verify = ["echo working; sleep 300"]\nverify_timeout_s = 1')
    agent_cli(root, "task", "claim", "T1")
    res = agent_cli(root, "task", "done", "T1")
    assert res.returncode == 5 and "`echo working; sleep 300` timed out after 1 s" in res.stderr
    assert "| working" in res.stderr and show(root)["status"] == "in_progress"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_gate_closes_nothing_and_kills_its_commands(tmp_path, sig):
    """Ctrl-C, or SIGTERM (Claude Code's Bash tool stopping a command at its timeout)."""
    pidfile = tmp_path / "gate.pid"
    root = _ws(tmp_path, verify=f'verify = ["echo $$ > {pidfile}; sleep 300"]')
    agent_cli(root, "task", "claim", "T1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "comm_node_tui", "task", "done", "T1"],
        cwd=root / "backend",
        env=cli_env(COMM_NODE_DOMAIN=AGENT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the gate runs")
    shell = int(pidfile.read_text())
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 130
    wait_for(lambda: not _alive(shell), what="the verify command is killed")
    row = show(root)
    assert row["status"] == "in_progress" and row["attempts"] == []


# ---- the circuit breaker, reopen, the override ----------------------------------------------
def test_max_attempts_failures_park_the_task_until_the_operator_reopens_it(tmp_path):
    root = _ws(tmp_path, verify='verify = ["exit 1"]', tasks_extra="max_attempts = 2")
    agent_cli(root, "task", "claim", "T1")
    assert "attempt 1 of 2" in agent_cli(root, "task", "done", "T1").stderr
    res = agent_cli(root, "task", "done", "T1")
    assert res.returncode == 5 and "parked after 2 failed attempts" in res.stderr
    row = show(root)
    assert row["status"] == "parked" and row["assignee"] is None and row["failures"] == 2
    listed = operator_cli(root, "task", "list").stdout
    assert "T1             parked" in listed
    res = agent_cli(root, "task", "claim", "T1")
    assert res.returncode == 3 and len(res.stderr.strip().splitlines()) == 1
    assert "task T1 is parked after 2 failed attempts (last: `exit 1` exited 1)" in res.stderr
    parked = [e for e in events(root) if e["type"] == "task.parked"]
    assert len(parked) == 1 and parked[0]["level"] == "error"
    # an agent cannot lift the breaker itself
    res = agent_cli(root, "task", "reopen", "T1")
    assert res.returncode == 3 and "only the operator can reopen it" in res.stderr
    res = operator_cli(root, "task", "reopen", "T1", "--reason", "the spec changed")
    assert res.returncode == 0, res.stderr
    row = show(root)
    assert row["status"] == "open" and row["failures"] == 0 and row["ready"] is True
    assert row["attempts"][-1]["result"] == "reopened"
    assert row["last_failure"]["reason"] == "`exit 1` exited 1"  # still shown to the next one
    assert agent_cli(root, "task", "claim", "T1").returncode == 0
    assert "attempt 1 of 2" in agent_cli(root, "task", "done", "T1").stderr  # counted afresh


def test_reopen_is_refused_for_a_task_never_failed_or_closed(tmp_path):
    root = _ws(tmp_path)
    res = operator_cli(root, "task", "reopen", "T1")
    assert res.returncode == 3 and "task T1 is open: only a failed, parked or closed" in res.stderr
    agent_cli(root, "task", "claim", "T1")
    assert operator_cli(root, "task", "reopen", "T1").returncode == 3
    assert agent_cli(root, "task", "fail", "T1", "--reason", "no time").returncode == 0
    assert show(root)["last_failure"]["result"] == "gave_up"
    assert agent_cli(root, "task", "reopen", "T1").returncode == 0  # its own agent
    assert agent_cli(root, "task", "claim", "T1").returncode == 0
    assert agent_cli(root, "task", "done", "T1").returncode == 0  # no gate configured
    # a peer does not put another domain's finished work back up for claim
    res = agent_cli(root, "task", "reopen", "T1", domain="frontend")
    assert res.returncode == 3 and "only its own agent or the operator" in res.stderr
    assert operator_cli(root, "task", "reopen", "T1", "--reason", "regressed").returncode == 0
    assert "task.reopened" in types(root)


def test_the_operator_overrides_the_gate_and_it_is_logged(tmp_path):
    root = _ws(tmp_path, verify='verify = ["exit 1"]')
    agent_cli(root, "task", "claim", "T1")
    # an agent cannot skip its gate, whatever it claims to be
    res = agent_cli(root, "task", "done", "T1", "--force", "--by", "operator", "--reason", "x")
    assert res.returncode == 4 and "the operator's decision" in res.stderr
    assert show(root)["status"] == "in_progress"
    res = operator_cli(root, "task", "done", "T1", "--force")
    assert res.returncode == 2 and "--force needs --reason" in res.stderr
    res = operator_cli(
        root, "task", "done", "T1", "--force", "--reason", "flaky CI, checked by hand"
    )
    assert res.returncode == 0, res.stderr
    row = show(root)
    assert row["status"] == "closed"
    assert row["attempts"][-1] | {"at": ""} == {
        "at": "",
        "by": "operator",
        "result": "override",
        "reason": "flaky CI, checked by hand",
    }
    over = [e for e in events(root) if e["type"] == "task.override"]
    assert len(over) == 1 and "flaky CI" in over[0]["msg"] and over[0]["data"]["by"] == "operator"


def test_an_agent_that_unsets_its_domain_is_still_not_the_operator(tmp_path):
    """The Claude Code process above the CLI carries the pane's COMM_NODE_DOMAIN."""
    root = _ws(tmp_path, verify='verify = ["exit 1"]')
    agent_cli(root, "task", "claim", "T1")
    claude = tmp_path / "bin" / "claude"  # a real process whose name is claude's
    claude.parent.mkdir()
    shutil.copy("/bin/sh", claude)
    cmd = (
        f"env -u COMM_NODE_DOMAIN {sys.executable} -m comm_node_tui task done T1 --force "
        f"--reason mine -w {root}; exit $?"  # `; exit`: the shell stays (no exec) above it
    )
    res = subprocess.run(
        [str(claude), "-c", cmd],
        cwd=root,
        env=cli_env(COMM_NODE_DOMAIN=AGENT),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 4 and "agent backend's environment" in res.stderr
    assert show(root)["status"] == "in_progress"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_a_hand_edited_attempts_record_is_no_traceback(tmp_path):
    """tasks.json's attempts made a number, an excerpt a number: `task show` still answers
    (the record is ignored), and the next `task done` records again."""
    root = _ws(tmp_path)
    assert agent_cli(root, "task", "claim", "T1").returncode == 0
    overlay = root / ".comm-node" / "tasks.json"
    data = json.loads(overlay.read_text())
    data["tasks"]["T1"]["attempts"] = 7
    overlay.write_text(json.dumps(data))
    res = operator_cli(root, "task", "show", "T1")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    data["tasks"]["T1"]["attempts"] = [{"result": "failed", "reason": "x", "excerpt": 5}]
    overlay.write_text(json.dumps(data))
    res = operator_cli(root, "task", "show", "T1")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert agent_cli(root, "task", "done", "T1").returncode == 0
    assert show(root)["attempts"][-1]["result"] == "pass"
