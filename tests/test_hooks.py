"""`comm-node hook` with payloads shaped exactly as Claude Code sends them, through the real
CLI, and the settings.json merge."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from comm_node_tui.adapters.agent_cli import comm_node_argv
from comm_node_tui.adapters.claude.settings import ALLOW_RULES
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.protocol.messages import render
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env


@pytest.fixture
def ws(tmp_path) -> Path:
    root = tmp_path / "ws"
    for d in ("api", "web", "web/src", "api/src", "docs"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "hooks"\n'
        '[[domains]]\nname = "api"\npath = "api"\nscope = ["src/**", "openapi.yaml"]\n'
        '[[domains]]\nname = "web"\npath = "web"\nscope = ["src/**"]\n'
        '[[domains]]\nname = "docs"\npath = "docs"\n'
    )
    load_workspace(str(root))  # its config cache, as write_workspace leaves one (conftest.py)
    return root


def hook(root: Path, payload: dict, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*comm_node_argv(), "hook"],
        cwd=root,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        env=env or cli_env(),
    )


def base(root: Path, domain: str, event: str, **extra) -> dict:
    return {
        "session_id": "9f1c",
        "transcript_path": f"/home/u/.claude/projects/x/{domain}.jsonl",
        "cwd": str(root / domain),
        "hook_event_name": event,
        "permission_mode": "default",
        **extra,
    }


def status(root: Path, domain: str) -> dict:
    return json.loads((root / domain / ".comm-node" / "status.json").read_text())


@pytest.mark.parametrize(
    ("event", "extra", "state"),
    [
        ("SessionStart", {"source": "startup"}, "idle"),
        ("UserPromptSubmit", {"prompt": "build the login API"}, "busy"),
        (
            "PreToolUse",
            {"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "toolu_1"},
            "busy",
        ),
        (
            "PostToolUse",
            {
                "tool_name": "Bash",
                "tool_input": {"command": "ls"},
                "tool_response": {"stdout": ""},
                "tool_use_id": "toolu_1",
            },
            "busy",
        ),
        (
            "Notification",
            {
                "message": "Claude needs your permission to use Bash",
                "notification_type": "permission_prompt",
            },
            None,  # no tool pending: a late notice (test_a_late_permission_notice...)
        ),
        (
            "Notification",
            {"message": "Claude is waiting for your input", "notification_type": "idle_prompt"},
            "idle",
        ),
        ("Stop", {"stop_hook_active": False}, "idle"),
        ("SubagentStop", {"stop_hook_active": False}, None),  # its parent may be idle
        ("PermissionRequest", {"tool_name": "Bash", "tool_input": {}}, "waiting"),
        ("PostToolUseFailure", {"tool_name": "Bash", "error": "exit 1"}, "busy"),
        ("StopFailure", {"error": "unknown"}, "idle"),
        ("PreCompact", {"trigger": "auto", "custom_instructions": ""}, "busy"),
        ("SessionEnd", {"reason": "exit"}, "ended"),
    ],
)
def test_each_event_updates_status(ws, event, extra, state):
    res = hook(ws, base(ws, "api", event, **extra))
    assert res.returncode == 0, res.stderr
    st = status(ws, "api")
    assert st.get("state") == state and st["hook_event"] == event
    assert st["session_id"] == "9f1c" and st["transcript_path"].endswith("api.jsonl")
    assert st["last_heartbeat"].endswith("Z")


def test_a_late_permission_notice_does_not_bring_waiting_back(ws):
    """Claude Code's permission_prompt Notification comes seconds after the dialog: a notice
    about a dialog that was already answered leaves the state alone."""
    notice = {"message": "Claude needs your permission", "notification_type": "permission_prompt"}
    hook(ws, base(ws, "api", "PreToolUse", tool_name="Bash", tool_input={}))
    hook(ws, base(ws, "api", "Notification", **notice))
    assert status(ws, "api")["state"] == "waiting"  # the dialog is still open
    hook(ws, base(ws, "api", "PostToolUse", tool_name="Bash", tool_response={}))
    hook(ws, base(ws, "api", "Stop", stop_hook_active=False))
    hook(ws, base(ws, "api", "Notification", **notice))
    assert status(ws, "api")["state"] == "idle"


def test_current_tool_is_tracked(ws):
    hook(ws, base(ws, "api", "PreToolUse", tool_name="Read", tool_input={"file_path": "x"}))
    assert status(ws, "api")["tool"] == "Read"
    hook(ws, base(ws, "api", "PostToolUse", tool_name="Read", tool_input={}))
    assert status(ws, "api")["tool"] == ""


def decision(res: subprocess.CompletedProcess) -> dict | None:
    if not res.stdout.strip():
        return None
    return json.loads(res.stdout)["hookSpecificOutput"]


def edit(ws, domain, path, tool="Edit"):
    key = "notebook_path" if tool == "NotebookEdit" else "file_path"
    return hook(
        ws,
        base(
            ws,
            domain,
            "PreToolUse",
            tool_name=tool,
            tool_input={key: path, "old_string": "a", "new_string": "b"},
        ),
    )


def test_guard_allows_inside_scope(ws):
    for path in ("src/users.ts", str(ws / "api" / "src" / "deep" / "x.ts"), "openapi.yaml"):
        res = edit(ws, "api", path)
        assert res.returncode == 0 and decision(res) is None, (path, res.stdout)


@pytest.mark.parametrize("tool", ["Edit", "Write", "MultiEdit", "NotebookEdit"])
def test_guard_denies_another_domains_file_naming_the_owner(ws, tool):
    res = edit(ws, "api", str(ws / "web" / "src" / "app.ts"), tool)
    d = decision(res)
    assert d["permissionDecision"] == "deny" and d["hookEventName"] == "PreToolUse"
    assert d["permissionDecisionReason"].startswith("web/src/app.ts belongs to domain web")
    assert "comm-node send --to web" in d["permissionDecisionReason"]
    assert "edit.denied" in (ws / ".comm-node" / "events.jsonl").read_text()


def test_guard_resolves_dotdot_and_symlinks(ws, tmp_path):
    res = edit(ws, "api", "src/../../web/src/app.ts")
    assert "belongs to domain web" in decision(res)["permissionDecisionReason"]
    res = edit(ws, "api", "README.md")  # inside api's directory, outside its scope
    assert "outside api's scope" in decision(res)["permissionDecisionReason"]
    (ws / "api" / "src" / "link.ts").symlink_to(ws / "web" / "src" / "real.ts")
    res = edit(ws, "api", "src/link.ts")
    assert "belongs to domain web" in decision(res)["permissionDecisionReason"]
    (ws / "api" / "src" / "out").symlink_to(tmp_path)
    res = edit(ws, "api", "src/out/x.txt")
    assert "outside api's scope" in decision(res)["permissionDecisionReason"]


def test_guard_denies_a_file_another_domain_locked(tmp_path):
    root = tmp_path / "mono"
    (root / "repo").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "m"\n'
        '[[domains]]\nname = "a"\npath = "repo"\nscope = ["src/**"]\n'
        '[[domains]]\nname = "b"\npath = "repo"\nscope = ["src/**"]\n'
    )
    ws = load_workspace(str(root))
    Coordinator(ws).acquire(ws.domains["a"], ["src/core/*.py"], reason="refactor")
    env = cli_env(COMM_NODE_DOMAIN="b")
    payload = {
        "hook_event_name": "PreToolUse",
        "cwd": str(root / "repo"),
        "session_id": "s",
        "tool_name": "Edit",
        "tool_input": {"file_path": "src/core/db.py"},
    }
    d = decision(hook(root, payload, env))
    assert "locked by a ('src/core/*.py' (refactor))" in d["permissionDecisionReason"]
    payload["tool_input"]["file_path"] = "src/other/db.py"
    assert decision(hook(root, payload, env)) is None
    # The holder itself may edit.
    payload["tool_input"]["file_path"] = "src/core/db.py"
    assert decision(hook(root, payload, cli_env(COMM_NODE_DOMAIN="a"))) is None


def test_auto_lock_on_first_edit(ws):
    toml = ws / "comm-node.toml"
    toml.write_text(
        toml.read_text().replace(
            'name = "hooks"\n', 'name = "hooks"\n[agents]\nauto_lock_on_edit = true\n'
        )
    )
    assert decision(edit(ws, "api", "src/users.ts")) is None
    locks = Coordinator(load_workspace(str(ws))).locks()
    assert [(lk.holder, lk.pattern) for lk in locks] == [("api", "/src/users.ts")]
    assert decision(edit(ws, "api", "src/users.ts")) is None  # again: no second lock
    assert len(Coordinator(load_workspace(str(ws))).locks()) == 1


def deliver(root: Path, domain: str, ident: str, priority: str, text: str) -> None:
    box = root / domain / ".comm-node" / "inbox"
    box.mkdir(parents=True, exist_ok=True)
    (box / f"{ident}.md").write_text(
        render(
            {"id": ident, "from": "web", "to": [domain], "type": "request", "priority": priority},
            text,
        )
    )


def test_important_mail_becomes_context_once(ws):
    deliver(ws, "api", "m-1", "normal", "fyi")
    assert hook(ws, base(ws, "api", "UserPromptSubmit", prompt="go")).stdout == ""
    deliver(ws, "api", "m-2", "high", "Please add a logout endpoint")
    res = hook(ws, base(ws, "api", "PostToolUse", tool_name="Bash", tool_input={}))
    out = json.loads(res.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "PostToolUse"
    assert "m-2 from web (request): Please add a logout endpoint" in out["additionalContext"]
    assert "m-1" not in out["additionalContext"]
    assert len(out["additionalContext"]) <= 10_000
    # Told once: the next tool call adds nothing.
    assert hook(ws, base(ws, "api", "PostToolUse", tool_name="Bash", tool_input={})).stdout == ""


def test_stop_keeps_working_while_urgent_mail_is_unread_but_gives_up(ws):
    deliver(ws, "api", "m-9", "urgent", "prod is down")
    outs = []
    for active in (False, True, True, True, True):
        res = hook(ws, base(ws, "api", "Stop", stop_hook_active=active))
        outs.append(json.loads(res.stdout)["decision"] if res.stdout.strip() else None)
    assert outs == ["block", "block", "block", None, "block"]
    res = hook(ws, base(ws, "api", "Stop", stop_hook_active=False))
    assert "m-9" in json.loads(res.stdout)["reason"]
    (ws / "api" / ".comm-node" / "inbox" / "m-9.md").unlink()
    assert hook(ws, base(ws, "api", "Stop", stop_hook_active=True)).stdout == ""
    assert status(ws, "api")["state"] == "idle"


@pytest.mark.parametrize(
    "stdin",
    [
        "",
        "not json",
        "[1,2]",
        '{"hook_event_name": 5}',
        '{"hook_event_name": "Stop", "cwd": "/nonexistent"}',
    ],
)
def test_garbage_never_fails_the_agent(ws, stdin):
    res = subprocess.run(
        [*comm_node_argv(), "hook"],
        cwd=ws,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
    )
    assert res.returncode == 0 and res.stdout == "" and "Traceback" not in res.stderr


def test_a_session_outside_any_workspace_is_left_alone(tmp_path):
    res = hook(tmp_path, {"hook_event_name": "Stop", "cwd": str(tmp_path)})
    assert res.returncode == 0 and res.stdout == ""


def test_install_merges_keeps_user_hooks_is_idempotent_and_uninstalls_only_ours(ws, cli):
    settings = ws / "api" / ".claude" / "settings.json"
    settings.parent.mkdir()
    user = {
        "model": "opus",
        "permissions": {"allow": ["Bash(npm test)"]},
        "hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "./my-lint.sh"}]}
            ]
        },
    }
    settings.write_text(json.dumps(user))
    res = cli("hooks", "install", "--json", cwd=ws / "api")
    assert res.returncode == 0, res.stderr
    [out] = json.loads(res.stdout)
    assert out["added"] == 12 and out["kept"] == 1 and out["backup"]
    assert json.loads(Path(out["backup"]).read_text()) == user
    data = json.loads(settings.read_text())
    # the user's allow rule kept, comm-node's own CLI allowed (no permission prompt)
    assert data["model"] == "opus"
    assert data["permissions"]["allow"] == ["Bash(npm test)", *ALLOW_RULES]
    assert "Bash(comm-node send:*)" in ALLOW_RULES
    assert not any("approve" in r or "kill" in r or "inject" in r for r in ALLOW_RULES)
    pre = data["hooks"]["PreToolUse"]
    assert pre[0] == user["hooks"]["PreToolUse"][0]
    assert pre[1]["matcher"] == "*" and pre[1]["hooks"][0]["command"].endswith(" hook")
    assert set(data["hooks"]) >= {
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Notification",
        "Stop",
        "SubagentStop",
        "PreCompact",
        "SessionEnd",
        "PermissionRequest",
        "PostToolUseFailure",
        "StopFailure",
    }
    again = json.loads(cli("hooks", "install", "--json", cwd=ws / "api").stdout)[0]
    assert again["added"] == 0 and again["backup"] is None
    assert json.loads(settings.read_text()) == data
    res = json.loads(cli("hooks", "uninstall", "--json", cwd=ws / "api").stdout)[0]
    assert res["removed"] == 12 + len(ALLOW_RULES)  # the hooks and the allow rules
    assert json.loads(settings.read_text()) == user


def test_install_refuses_to_clobber_a_broken_settings_file(ws, cli):
    settings = ws / "api" / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text("{ not json")
    res = cli("hooks", "install", cwd=ws / "api")
    assert res.returncode == 1 and "not valid JSON" in res.stderr
    assert settings.read_text() == "{ not json"


def test_installed_command_runs(ws, cli):
    cli("hooks", "install", cwd=ws / "docs")
    data = json.loads((ws / "docs" / ".claude" / "settings.json").read_text())
    command = data["hooks"]["Stop"][0]["hooks"][0]["command"]
    res = subprocess.run(
        command,
        shell=True,
        input=json.dumps(base(ws, "docs", "Stop")),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ws / "docs",
        env={k: v for k, v in os.environ.items() if not k.startswith("COMM_")},
    )
    assert res.returncode == 0
    assert status(ws, "docs")["state"] == "idle"
