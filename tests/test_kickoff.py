"""The kickoff: `comm-node init --from PLAN.toml --yes` on real directories and git, merges
into the user's CLAUDE.md and .claude/settings.json, idempotent re-runs, and the meeting with
fake agents in a private tmux server (one never registers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest

from comm_node_tui.adapters.claude.settings import ALLOW_RULES
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import dedent, run_cli

PLAN = dedent(
    """
    [project]
    name = "shop"

    [[domains]]
    name = "api"
    path = "api"
    role = "The REST API"
    scope = ["src/**"]
    exports = ["openapi.yaml"]

    [[domains]]
    name = "web"
    path = "web"
    role = "The storefront"
    create = "git"
    imports = { api = ["openapi.yaml"] }

    [[domains]]
    name = "admin"
    path = "admin"
    create = "worktree"
    branch = "admin-work"

    [[task]]
    id = "T1"
    title = "Write the API contract"
    domain = "api"

    [[task]]
    id = "T2"
    title = "Build the product page"
    domain = "web"
    depends_on = ["T1"]
    """
)

USER_HOOK = {
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "my-audit.sh"}]}
        ]
    },
    "permissions": {"allow": ["Bash(ls:*)"]},
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "api").mkdir(parents=True)
    (root / "README.md").write_text("shop\n")
    repo = git.Repo.init(root)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "T")
        cw.set_value("user", "email", "t@example.com")
    repo.git.add(A=True)
    repo.index.commit("initial")
    (root / "api" / "CLAUDE.md").write_text("# API notes\n\nNever touch prod.\n")
    (root / "api" / ".claude").mkdir()
    (root / "api" / ".claude" / "settings.json").write_text(json.dumps(USER_HOOK))
    (root / "PLAN.toml").write_text(PLAN)
    return root


def test_init_from_plan_writes_everything_and_merges(shop: Path) -> None:
    r = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=shop)
    assert r.returncode == 0, r.stderr
    ws = load_workspace(str(shop))
    assert sorted(ws.domains) == ["admin", "api", "web"]
    assert ws.domains["api"].scope == ["src/**"]
    assert ws.domains["web"].imports == {"api": ["openapi.yaml"]}
    # new domains: a fresh git repository, and a worktree of the workspace's repository
    assert git.Repo(shop / "web").git_dir == str(shop / "web" / ".git")
    wt = git.Repo(shop / "admin")
    assert wt.active_branch.name == "admin-work" and (shop / "admin" / "README.md").exists()
    # the user's CLAUDE.md is kept, our section follows it between markers
    claude = (shop / "api" / "CLAUDE.md").read_text()
    assert claude.startswith("# API notes\n\nNever touch prod.\n")
    assert "<!-- comm-node:begin api" in claude and "<!-- comm-node:end api -->" in claude
    assert "`web`: The storefront" in claude and "comm-node task ready" in claude
    # settings.json keeps the user's hook and permissions, and gains ours
    settings = json.loads((shop / "api" / ".claude" / "settings.json").read_text())
    # (the agent's own `comm-node ...` calls allowed: no permission prompt for them)
    assert settings["permissions"]["allow"] == [*USER_HOOK["permissions"]["allow"], *ALLOW_RULES]
    pre = settings["hooks"]["PreToolUse"]
    assert pre[0] == USER_HOOK["hooks"]["PreToolUse"][0]
    assert any(
        "comm_node_tui hook" in h["command"] or "comm-node hook" in h["command"]
        for g in pre[1:]
        for h in g["hooks"]
    )
    assert "SessionStart" in settings["hooks"]
    # registry and PROTOCOL.md, generated from the real CLI
    reg = json.loads((shop / "web" / ".comm-node" / "registry.json").read_text())
    assert {p["name"] for p in reg["peers"]} == {"api", "admin"}
    proto = (shop / "web" / ".comm-node" / "PROTOCOL.md").read_text()
    assert "usage: comm-node task claim" in proto and "usage: comm-node send" in proto
    # runtime files ignored by git: the workspace's repository and web's own
    for d in (shop, shop / "web"):
        assert ".comm-node/" in (d / ".gitignore").read_text().splitlines()
    # native tasks, readable by the task commands
    r = run_cli("task", "list", "--json", cwd=shop)
    tasks = {t["id"]: t for t in json.loads(r.stdout)}
    assert sorted(tasks) == ["T1", "T2"]
    assert [d["id"] for d in tasks["T2"]["depends_on"]] == ["T1"]
    ready = run_cli("task", "ready", "--all", "--json", cwd=shop)
    assert [t["id"] for t in json.loads(ready.stdout)] == ["T1"]


def test_init_is_idempotent_and_asks_before_changing(shop: Path) -> None:
    assert run_cli("init", "--from", "PLAN.toml", "--yes", cwd=shop).returncode == 0
    before = {p: p.read_bytes() for p in shop.rglob("*") if p.is_file() and ".git" not in p.parts}
    r = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=shop)
    assert r.returncode == 0 and "up to date" in r.stdout
    after = {p: p.read_bytes() for p in shop.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before
    # a change in the plan is shown, and without --yes nothing is touched
    (shop / "PLAN.toml").write_text(PLAN.replace("The storefront", "The shop front"))
    r = run_cli("init", "--from", "PLAN.toml", cwd=shop, input="")
    assert r.returncode == 2 and "--yes" in r.stderr
    r = run_cli("init", "--from", "PLAN.toml", "--json", cwd=shop)
    changed = {
        os.path.relpath(c["path"], shop) for c in json.loads(r.stdout) if c["action"] != "unchanged"
    }
    assert "comm-node.toml" in changed and "web/CLAUDE.md" in changed
    assert "web/.claude/settings.json" not in changed
    assert (shop / "web" / "CLAUDE.md").read_text().count("The storefront") == 1
    # the user's edit outside our markers survives a re-run that rewrites our section
    with open(shop / "web" / "CLAUDE.md", "a") as fh:
        fh.write("\nMy own rule: small commits.\n")
    assert run_cli("init", "--from", "PLAN.toml", "--yes", cwd=shop).returncode == 0
    text = (shop / "web" / "CLAUDE.md").read_text()
    assert "The shop front" in text and "The storefront" not in text
    assert text.endswith("My own rule: small commits.\n") and text.count("comm-node:begin") == 1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda p: p + '\n[[domains]]\nname = "api"\npath = "api2"\n',
            "domain 'api' is defined twice",
        ),
        (
            lambda p: p.replace('path = "web"', 'path = "../../elsewhere"'),
            "does not exist and is outside the workspace",
        ),
        (lambda p: p.replace('scope = ["src/**"]', 'scope = ["../src/**"]'), "'..' is not allowed"),
        (lambda p: p.replace('depends_on = ["T1"]', 'depends_on = ["T9"]'), "unknown task 'T9'"),
        (lambda p: p.replace('create = "git"', 'create = "svn"'), "must be dir, git or worktree"),
        (lambda p: p + "\n[[[", "invalid TOML"),
    ],
)
def test_init_refuses_bad_plans(shop: Path, edit, message: str) -> None:
    (shop / "PLAN.toml").write_text(edit(PLAN))
    r = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=shop)
    assert r.returncode == 1
    assert message in r.stderr and r.stderr.startswith("comm-node: PLAN.toml")
    assert "Traceback" not in r.stderr
    assert not (shop / "comm-node.toml").exists()


def test_worktree_outside_git_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    (root / "PLAN.toml").write_text(
        '[project]\nname = "x"\n[[domains]]\nname = "a"\npath = "a"\ncreate = "worktree"\n'
    )
    r = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=root)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert 'domains[0] (a).create: "worktree" needs a git repository' in r.stderr
    assert sorted(p.name for p in root.iterdir()) == ["PLAN.toml"]


# ---- the meeting ---------------------------------------------------------------------------
def test_kickoff_meeting_with_one_agent_that_never_registers(tmp_path: Path, monkeypatch) -> None:
    socket = f"cn-kick-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    fake = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
    plan = ['[project]\nname = "meet"\n[tmux]\nlayout = "windows"\n']
    for name, flags in (("alpha", "--hooks"), ("beta", "--hooks"), ("mute", "")):
        (root / name).mkdir(parents=True)
        plan.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\nrole = "the {name} role"\n'
            f'command = "{fake} {flags} --log {root}/{name}.log"\n'
        )
    (root / "PLAN.toml").write_text("\n".join(plan))
    assert run_cli("init", "--from", "PLAN.toml", "--yes", cwd=root).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["COMM_NODE_TMUX_SOCKET"] = socket
    # the meeting's wait, twice for mute (its own, then its retry's): short, yet ten times
    # what alpha and beta take to register even at load 8 (0.3 s seen)
    timeout_s = "4"
    try:
        t0 = time.monotonic()
        r = subprocess.run(
            [sys.executable, "-m", "comm_node_tui", "kickoff", "--json", "--timeout", timeout_s],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
        )
        elapsed = time.monotonic() - t0
        assert r.returncode == 1, r.stderr
        summary = json.loads(r.stdout)
        assert summary["registered"] == ["alpha", "beta"]
        assert summary["started"] == ["alpha", "beta"]
        assert "mute" in summary["failed"] and "no heartbeat" in summary["failed"]["mute"]
        for name in ("alpha", "beta"):
            inbox = list((root / name / ".comm-node" / "inbox").glob("*.md"))
            assert len(inbox) == 1
            text = inbox[0].read_text()
            assert 'type: "start"' in text and f"You are the {name} agent" in text
            records = [json.loads(x) for x in (root / f"{name}.log").read_text().splitlines()]
            submits = [x["text"] for x in records if x.get("event") == "submit"]
            assert submits and submits[0].startswith(f"comm-node kickoff: you are the {name}")
        assert not list((root / "mute" / ".comm-node" / "inbox").glob("*.md"))
        # the mute agent was restarted once (two starts) before it was given up
        starts = [
            x
            for x in map(json.loads, (root / "mute.log").read_text().splitlines())
            if x.get("event") == "start"
        ]
        assert len(starts) == 2
        log = run_cli("log", "--json", "-t", "kickoff", "-t", "agent.registered", cwd=root, env=env)
        evs = [json.loads(x) for x in log.stdout.splitlines()]
        types = [e["type"] for e in evs]
        assert types.count("agent.registered") == 2
        assert {"kickoff.started", "kickoff.retry", "kickoff.unregistered", "kickoff.done"} <= set(
            types
        )
        # one wait of --timeout, one retry with a wait of its own, then given up: the meeting
        # neither hangs (the subprocess timeout) nor gives up early (a lower bound holds
        # however loaded the machine; an upper bound failed at load 12)
        assert types.count("kickoff.retry") == 1
        assert elapsed >= float(timeout_s) * 2 - 0.5
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_init_writes_domain_tables_a_hand_appended_domain_joins(tmp_path: Path) -> None:
    """Short domains used to come out inline (`domains = [{...}]`, at the top of the file):
    the `[[domains]]` table the docs tell people to append then made the file invalid."""
    root = tmp_path / "small"
    (root / "api").mkdir(parents=True)
    (root / "PLAN.toml").write_text(
        '[project]\nname = "small"\n[[domains]]\nname = "api"\npath = "api"\n'
    )
    r = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=root)
    assert r.returncode == 0, r.stderr
    text = (root / "comm-node.toml").read_text()
    assert "domains = [" not in text and text.count("[[domains]]") == 1
    (root / "web").mkdir()
    with open(root / "comm-node.toml", "a") as fh:
        fh.write('\n[[domains]]\nname = "web"\npath = "web"\nrole = "added by hand"\n')
    check = run_cli("config", "check", cwd=root)
    assert check.returncode == 0, check.stderr
    assert "ok (2 domains)" in check.stdout
    assert load_workspace(str(root)).domains["web"].role == "added by hand"


def test_init_from_shows_the_diff_before_replacing_hand_edits(shop: Path) -> None:
    assert run_cli("init", "--from", "PLAN.toml", "--yes", cwd=shop).returncode == 0
    config = shop / "comm-node.toml"
    # the plan changes, the file was not touched: the diff is shown, nothing is backed up
    (shop / "PLAN.toml").write_text(PLAN.replace("The storefront", "The shop front"))
    r = run_cli("init", "--from", "PLAN.toml", "--json", cwd=shop)
    entry = next(c for c in json.loads(r.stdout) if c["path"] == str(config))
    assert entry["action"] == "update" and entry["hand_edited"] is False
    assert (
        '-role = "The storefront"' in entry["diff"] and '+role = "The shop front"' in entry["diff"]
    )
    (shop / "PLAN.toml").write_text(PLAN)
    # a hand edit: shown as a diff, refused without --yes (no terminal), file untouched
    edited = config.read_text().replace('role = "The REST API"', 'role = "The API, by hand"')
    edited += '\n[tmux]\nsocket = "mine"\n'
    config.write_text(edited)
    r = run_cli("init", "--from", "PLAN.toml", cwd=shop, input="")
    assert r.returncode == 2 and "--yes" in r.stderr
    assert '-role = "The API, by hand"' in r.stdout and '+role = "The REST API"' in r.stdout
    assert '-socket = "mine"' in r.stdout
    assert "edited since `comm-node init` wrote it" in r.stdout
    assert config.read_text() == edited
    r = run_cli("init", "--from", "PLAN.toml", "--json", cwd=shop)
    entry = next(c for c in json.loads(r.stdout) if c["path"] == str(config))
    assert entry["hand_edited"] is True and '-socket = "mine"' in entry["diff"]
    # with --yes: the diff again, the plan wins, the hand-edited file is kept as a backup
    r = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=shop)
    assert r.returncode == 0, r.stderr
    assert '-socket = "mine"' in r.stdout
    backups = list((shop / ".comm-node" / "backups").iterdir())
    assert [b.read_text() for b in backups] == [edited]
    assert f".comm-node/backups/{backups[0].name}" in r.stdout
    assert 'role = "The REST API"' in config.read_text() and "mine" not in config.read_text()
    # and what init wrote itself is no hand edit: a re-run is quiet
    r = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=shop)
    assert r.returncode == 0 and "up to date" in r.stdout


def test_kickoff_types_nothing_into_a_paused_agent(tmp_path: Path, monkeypatch) -> None:
    """A paused agent gets its start message in its inbox but no prompt typed into it (the
    operator said stop); the summary says it is held until `resume`."""
    socket = f"cn-kick-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    fake = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
    plan = ['[project]\nname = "meet"\n[tmux]\nlayout = "windows"\n']
    for name in ("alpha", "beta"):
        (root / name).mkdir(parents=True)
        plan.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\n'
            f'command = "{fake} --hooks --log {root}/{name}.log"\n'
        )
    (root / "PLAN.toml").write_text("\n".join(plan))
    assert run_cli("init", "--from", "PLAN.toml", "--yes", cwd=root).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["COMM_NODE_TMUX_SOCKET"] = socket
    assert run_cli("pause", "beta", cwd=root, env=env).returncode == 0
    try:
        r = subprocess.run(
            [sys.executable, "-m", "comm_node_tui", "kickoff", "--timeout", "20", "--json"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        summary = json.loads(r.stdout)
        assert summary["started"] == ["alpha"] and summary["held"] == ["beta"], r.stderr
        assert r.returncode == 0, r.stderr
        for name in ("alpha", "beta"):
            inbox = list((root / name / ".comm-node" / "inbox").glob("*.md"))
            assert len(inbox) == 1 and 'type: "start"' in inbox[0].read_text()

        def submits(name: str) -> list[str]:
            records = map(json.loads, (root / f"{name}.log").read_text().splitlines())
            return [x["text"] for x in records if x.get("event") == "submit"]

        assert submits("alpha") and submits("alpha")[0].startswith("comm-node kickoff")
        assert submits("beta") == []
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
