"""`comm-node doctor` on real parts: a real tmux server on a private socket, workspaces on
disk, hooks written by `comm-node hooks install`, the pinned Claude Code build; and on
broken ones (a broken config, hooks taken out, no tmux, a hung server), where each problem
must be one FAIL line naming the fix, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace
from comm_node_tui.workspace.model import Workspace
from tests.conftest import cli_env, run_cli, write_workspace

FAKE_AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"


@pytest.fixture
def socket_name(monkeypatch):
    name = f"cn-doc-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", name)
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, timeout=10)


def doctor(root: Path, *args: str, **env: str) -> tuple[int, dict[str, dict], str]:
    """(exit code, checks by name, the text output) of the real `comm-node doctor`; the JSON
    and the text runs must agree."""
    home = root / ".home"
    home.mkdir(exist_ok=True)
    environment = cli_env(HOME=str(home), CLAUDE_CONFIG_DIR=str(home), **env)
    text = run_cli("doctor", *args, cwd=root, env=environment, timeout=60)
    assert "Traceback" not in text.stdout + text.stderr, text.stderr
    js = run_cli("doctor", "--json", *args, cwd=root, env=environment, timeout=60)
    data = json.loads(js.stdout)
    assert js.returncode == text.returncode == data["exit_code"]
    checks = {c["name"]: c for c in data["checks"]}
    lines = text.stdout.splitlines()
    assert len(lines) == len(checks)  # one line per check
    for line, check in zip(lines, data["checks"], strict=True):
        assert line.startswith(check["status"]) and check["detail"] in line
    return text.returncode, checks, text.stdout


def workspace(tmp_path: Path, command: str, name: str = "ws") -> Path:
    root = write_workspace(tmp_path / name, agents=f'command = "{command}"')
    res = run_cli("hooks", "install", "--all", cwd=root)
    assert res.returncode == 0, res.stderr
    return root


def start_agents(root: Path) -> AgentPanes:
    """The agents' panes as `comm-node up` makes them, running the fake agent in place of the
    configured Claude Code (whose first run would wait on dialogs)."""
    data = load_workspace(str(root)).config
    data = {**data, "agents": {**data["agents"], "command": FAKE_AGENT}}
    panes = AgentPanes(Workspace(str(root), data))
    panes.up()
    return panes


def test_a_ready_workspace_is_all_ok(tmp_path, socket_name, pinned_claude):
    root = workspace(tmp_path, pinned_claude)
    start_agents(root)
    code, checks, text = doctor(root)
    assert code == 0, text
    assert {c["status"] for c in checks.values()} == {"OK"}, text
    assert set(checks) == {
        "tmux",
        "config",
        "tmux server",
        "agent CLI",
        "comm-node in panes",
        "hooks: backend",
        "hooks: frontend",
        "hooks: docs",
        "sandbox",
    }
    assert "control mode available" in checks["tmux"]["detail"]
    assert "Claude Code 2.1.330" in checks["agent CLI"]["detail"]
    assert "3 agent panes" in checks["tmux server"]["detail"]
    assert checks["comm-node in panes"]["detail"].startswith(".comm-node/bin/comm-node runs")
    # the comm-node the panes run stops working (a venv moved away): a FAIL with the fix
    script = root / ".comm-node" / "bin" / "comm-node"
    script.write_text('#!/bin/sh\nexec /nonexistent/python -m comm_node_tui "$@"\n')
    code, checks, _ = doctor(root)
    assert code == 1
    check = checks["comm-node in panes"]
    assert check["status"] == "FAIL" and "does not run" in check["detail"]
    assert "comm-node restart D" in check["fix"]


def test_hooks_taken_out_of_one_domain_fail_naming_it_and_the_fix(tmp_path, pinned_claude):
    root = workspace(tmp_path, pinned_claude)
    settings = root / "backend" / ".claude" / "settings.json"
    data = json.loads(settings.read_text())
    del data["hooks"]
    settings.write_text(json.dumps(data))
    allow = root / "frontend" / ".claude" / "settings.json"
    data = json.loads(allow.read_text())
    data["permissions"]["allow"] = data["permissions"]["allow"][2:]
    allow.write_text(json.dumps(data, indent=4))  # formatting of its own: not a difference
    code, checks, text = doctor(root)
    assert code == 1
    backend = checks["hooks: backend"]
    assert backend["status"] == "FAIL" and "12 of 12 events" in backend["detail"]
    assert backend["fix"] == "`comm-node hooks install --domain backend`"
    assert "FAIL  hooks: backend" in text and "comm-node hooks install --domain backend" in text
    frontend = checks["hooks: frontend"]
    assert frontend["status"] == "WARN"
    assert "2 of comm-node's permission allow" in frontend["detail"]
    assert checks["hooks: docs"]["status"] == "OK"
    # the named fix fixes it
    for name in ("backend", "frontend"):
        res = run_cli("hooks", "install", "--domain", name, cwd=root)
        assert res.returncode == 0, res.stderr
    _code, checks, _ = doctor(root)
    assert checks["hooks: backend"]["status"] == checks["hooks: frontend"]["status"] == "OK"


def test_only_warnings_exit_2(tmp_path, pinned_claude):
    """No session yet: a WARN saying how to start one, and scripts see exit 2, not 1."""
    root = workspace(tmp_path, pinned_claude)
    code, checks, _ = doctor(root)
    assert code == 2
    assert [n for n, c in checks.items() if c["status"] != "OK"] == ["tmux server"]
    assert checks["tmux server"]["detail"].startswith("not started")
    assert "comm-node up" in checks["tmux server"]["fix"]


def test_a_broken_config_is_a_fail_line(tmp_path):
    root = write_workspace(tmp_path / "ws")
    (root / "comm-node.toml").write_text('[project]\nname = "p"\n[[domains]\nname = "a"\n')
    code, checks, _ = doctor(root)
    assert code == 1
    config = checks["config"]
    assert config["status"] == "FAIL" and "invalid TOML" in config["detail"]
    assert "config check" in config["fix"]
    assert checks["tmux"]["status"] == "OK"  # the rest of the machine is still checked
    assert not any(n.startswith("hooks:") for n in checks)
    # a config that parses but is invalid: the same, and the hooks wait for it
    (root / "comm-node.toml").write_text('[project]\nname = "p"\ncolour = 1\n')
    code, checks, _ = doctor(root)
    assert code == 1 and "project.colour: unknown key" in checks["config"]["detail"]


def test_doctor_and_config_check_read_the_file_never_its_cache(tmp_path):
    """`doctor` and `config check` validate comm-node.toml itself, and write no cache: the
    cache lives in .comm-node/, where a sandboxed agent's long-running command can replace it
    (a review forged "sandbox off" that doctor then read as OK), and an edit that keeps the
    file's size, mtime and inode still matches the cache's stamp."""
    root = write_workspace(tmp_path / "ws", cached=False)
    cache = root / ".comm-node" / "guarded" / "config.cache.json"
    res = run_cli("config", "check", "--json", cwd=root)
    assert json.loads(res.stdout)["ok"] and not cache.exists()
    load_workspace(str(root))  # as any other command leaves it: a current cache
    assert cache.exists()
    config = root / "comm-node.toml"
    before = config.stat()
    text = config.read_text()
    bad = text.replace('name = "docs"', 'name = "DOCS"')  # same size, no longer valid
    assert bad != text and len(bad) == len(text)
    config.write_text(bad)
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = config.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    res = run_cli("config", "check", cwd=root)
    assert res.returncode == 1 and "domains[2] (DOCS).name" in res.stderr, res.stderr
    code, checks, _ = doctor(root)
    assert code == 1 and "domains[2] (DOCS).name" in checks["config"]["detail"], checks
    config.write_text(text)
    (root / "docs").rename(root / "gone")  # the domain paths are asked of the disk
    res = run_cli("config", "check", cwd=root)
    assert res.returncode == 1
    assert res.stderr.startswith("comm-node.toml: domains[2] (docs).path: ")
    assert res.stderr.rstrip().endswith("does not exist")


def test_tmux_missing_from_path(tmp_path, pinned_claude):
    root = workspace(tmp_path, pinned_claude)
    code, checks, _ = doctor(root, PATH="/nonexistent")
    assert code == 1
    assert checks["tmux"]["status"] == "FAIL" and "not found on PATH" in checks["tmux"]["detail"]
    assert "install tmux" in checks["tmux"]["fix"]
    assert checks["tmux server"]["status"] == "FAIL"
    assert checks["agent CLI"]["status"] == "OK"  # an absolute command needs no PATH
    # and `claude` by name, on nobody's PATH, says so
    (root / "comm-node.toml").write_text(
        (root / "comm-node.toml").read_text().replace(pinned_claude, "claude")
    )
    _code, checks, _ = doctor(root, PATH="/nonexistent")
    assert checks["agent CLI"]["status"] == "FAIL"
    assert "`claude` not found on the agents' PATH" in checks["agent CLI"]["detail"]


def test_the_agents_path_is_the_tmux_servers(tmp_path, socket_name):
    """The panes inherit the server's environment, not the doctor's: a `claude` only the
    server's PATH holds is the one checked; another version than the tested one warns."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    claude = bin_dir / "claude"
    claude.write_text('#!/bin/sh\necho "2.0.1 (Claude Code)"\n')
    claude.chmod(0o755)
    root = workspace(tmp_path, "claude")
    server_path = f"{bin_dir}:{os.environ['PATH']}"
    subprocess.run(
        ["tmux", "-L", socket_name, "new-session", "-d", "-s", "cn-test-proj", "sleep 600"],
        env={**os.environ, "PATH": server_path},
        check=True,
        timeout=10,
    )
    code, checks, _ = doctor(root)
    cli = checks["agent CLI"]
    assert cli["status"] == "WARN" and "Claude Code 2.0.1" in cli["detail"]
    assert str(claude) in cli["detail"] and "tested with 2.1.330" in cli["detail"]
    # the session is there but holds no agent pane yet
    assert "no pane: backend, docs, frontend" in checks["tmux server"]["detail"]
    assert code == 2


def test_a_hung_tmux_server_is_a_fail_line_not_a_hang(tmp_path, socket_name, pinned_claude):
    root = workspace(tmp_path, pinned_claude)
    subprocess.run(
        ["tmux", "-L", socket_name, "new-session", "-d", "-s", "other", "sleep 600"],
        check=True,
        timeout=10,
    )
    pid = int(
        subprocess.run(
            ["tmux", "-L", socket_name, "display-message", "-p", "#{pid}"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    )
    os.kill(pid, signal.SIGSTOP)
    try:
        res = run_cli("doctor", "--json", cwd=root, timeout=60)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "Traceback" not in res.stderr
    checks = {c["name"]: c for c in json.loads(res.stdout)["checks"]}
    assert res.returncode == 1
    assert checks["tmux server"]["status"] == "FAIL"
    assert "did not answer" in checks["tmux server"]["detail"]
