"""The sandbox outside `comm-node up` (issue 23): `comm-node hooks install` writes a domain's
sandbox with its hooks (an agent started by hand is walled too), and `comm-node doctor` says
whether bubblewrap and socat are there, which domains are walled and why one cannot be."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_cli, write_workspace
from tests.test_doctor import doctor


def without(tmp_path: Path, *programs: str) -> str:
    """A PATH with the system's programs but `programs` (symlinks, real programs)."""
    bare = tmp_path / "bin"
    bare.mkdir(parents=True)
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in os.scandir(folder) if os.path.isdir(folder) else ():
            link = bare / entry.name
            if entry.name not in programs and not link.exists():
                link.symlink_to(entry.path)
    return str(bare)


def sandbox_of(root: Path, name: str) -> dict | None:
    path = root / name / ".claude" / "settings.json"
    return json.loads(path.read_text()).get("sandbox") if path.exists() else None


def workspace(tmp_path: Path) -> Path:
    return write_workspace(
        tmp_path / "ws",
        agents='sandbox = true\ncommand = "claude"',
        domain_extra={"docs": "sandbox = false"},
    )


def test_hooks_install_writes_the_sandbox_and_takes_it_out_when_turned_off(tmp_path):
    root = workspace(tmp_path)
    home = tmp_path / "claude-config"  # the user's Claude settings: a private folder
    home.mkdir()
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(home)}
    env = {k: v for k, v in env.items() if not k.startswith("COMM_NODE_")}
    res = run_cli("hooks", "install", "--all", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    assert f"backend: sandbox on ({root / 'backend' / '.claude' / 'settings.json'})" in res.stdout
    box = sandbox_of(root, "backend")
    assert box and box["enabled"] and box["failIfUnavailable"]
    assert str(root / ".comm-node") in box["filesystem"]["allowWrite"]
    data = json.loads((root / "backend" / ".claude" / "settings.json").read_text())
    assert "Bash" in data["permissions"]["allow"] and "PreToolUse" in data["hooks"]
    assert sandbox_of(root, "docs") is None  # its own sandbox = false
    assert "docs: sandbox" not in res.stdout
    # JSON: the sandbox's result beside the hooks'
    out = json.loads(run_cli("hooks", "install", "--all", "--json", cwd=root, env=env).stdout)
    by = {r["domain"]: r["sandbox"] for r in out}
    assert by["backend"]["enabled"] and not by["backend"]["changed"]
    assert by["backend"]["unavailable"] is None and not by["docs"]["enabled"]
    # sandbox = false: the next install takes out exactly what comm-node wrote
    toml = root / "comm-node.toml"
    toml.write_text(toml.read_text().replace("sandbox = true\n", "", 1))
    res = run_cli("hooks", "install", "--all", cwd=root, env=env)
    assert "backend: sandbox off" in res.stdout
    assert sandbox_of(root, "backend") is None
    data = json.loads((root / "backend" / ".claude" / "settings.json").read_text())
    assert "Bash" not in data["permissions"]["allow"] and "PreToolUse" in data["hooks"]


def test_hooks_install_says_when_the_sandbox_cannot_run_here(tmp_path):
    root = workspace(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path)
    env["PATH"] = without(tmp_path, "bwrap", "socat")
    res = run_cli("hooks", "install", "--domain", "backend", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    assert sandbox_of(root, "backend")["failIfUnavailable"] is True  # fails closed
    assert res.stderr.splitlines() == [
        "backend: sandbox = true, but bwrap, socat not installed (apt install bubblewrap "
        "socat): Claude Code will refuse to start there"
    ]


def test_doctor_reports_the_sandbox_of_each_domain(tmp_path):
    root = workspace(tmp_path)
    _code, checks, text = doctor(root)
    assert checks["sandbox"]["status"] == "OK", text
    assert checks["sandbox"]["detail"].startswith("bubblewrap and socat on the agents' PATH")
    assert checks["sandbox"]["detail"].endswith("on for backend, frontend")
    # not written yet (no `up`, no `hooks install`): a WARN naming the fix
    backend = checks["sandbox: backend"]
    assert backend["status"] == "WARN" and "does not hold it yet" in backend["detail"]
    assert backend["fix"].startswith("`comm-node hooks install --domain backend`")
    assert checks["sandbox: docs"] == {
        "name": "sandbox: docs", "status": "OK",
        "detail": "off (this domain's sandbox = false)", "fix": "",
    }  # fmt: skip
    home = root / ".home"  # doctor()'s CLAUDE_CONFIG_DIR
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["CLAUDE_CONFIG_DIR"] = str(home)
    assert run_cli("hooks", "install", "--all", cwd=root, env=env).returncode == 0
    _code, checks, text = doctor(root)
    assert checks["sandbox: backend"] == {
        "name": "sandbox: backend", "status": "OK",
        "detail": "on in backend/.claude/settings.json", "fix": "",
    }, text  # fmt: skip
    # the user excludes a command from the sandbox: it would run unwalled, so the agent is
    # asked before commands the sandbox cannot check (and the doctor says why)
    (home / "settings.json").write_text(json.dumps({"sandbox": {"excludedCommands": ["x *"]}}))
    _code, checks, text = doctor(root)
    detail = checks["sandbox: backend"]["detail"]
    assert checks["sandbox: backend"]["status"] == "WARN", text
    assert detail.startswith("sandbox = true, but backend/.claude/settings.json does not hold")
    assert run_cli("hooks", "install", "--all", cwd=root, env=env).returncode == 0
    _code, checks, text = doctor(root)
    assert checks["sandbox: backend"]["status"] == "WARN", text
    assert checks["sandbox: backend"]["detail"] == (
        "on in backend/.claude/settings.json, but commands it cannot check may still ask: "
        f"sandbox.excludedCommands in {home / 'settings.json'} run outside the sandbox"
    )


def test_doctor_fails_a_sandbox_that_cannot_work_here(tmp_path):
    root = workspace(tmp_path)
    code, checks, text = doctor(root, PATH=without(tmp_path, "bwrap"))
    assert code == 1
    assert checks["sandbox"] == {
        "name": "sandbox", "status": "FAIL",
        "detail": "bwrap not installed (apt install bubblewrap): the agents with sandbox = "
        "true (backend, frontend) will not start",
        "fix": "install what is named, or set sandbox = false in comm-node.toml",
    }, text  # fmt: skip
    assert checks["sandbox: frontend"]["status"] == "FAIL"
    assert checks["sandbox: frontend"]["detail"] == (
        "sandbox = true cannot work here: bwrap not installed (apt install bubblewrap)"
    )
    assert checks["sandbox: docs"]["status"] == "OK"
    # with no domain walled, missing tools are only news
    toml = root / "comm-node.toml"
    toml.write_text(toml.read_text().replace("sandbox = true\n", "", 1))
    _code, checks, text = doctor(root, PATH=without(tmp_path / "2", "bwrap", "socat"))
    assert checks["sandbox"]["status"] == "OK"
    assert checks["sandbox"]["detail"] == (
        "off for every domain; bwrap, socat not installed (apt install bubblewrap socat) "
        "(needed for sandbox = true)"
    )
    assert not any(name.startswith("sandbox: ") for name in checks)


PLAN = '[project]\nname = "p"\n\n[[domains]]\nname = "api"\npath = "api"\n'


def test_init_from_a_plan_turns_the_sandbox_on_where_it_can_run(tmp_path):
    """A new comm-node.toml gets `sandbox = true` where bubblewrap and socat are installed
    (.ci/run installs them), `sandbox = false` with the reason where not; a plan that says,
    says; an existing file keeps its own choice."""
    from comm_node_tui.workspace.discovery import load_workspace

    root = tmp_path / "here"
    (root / "api").mkdir(parents=True)
    (root / "PLAN.toml").write_text(PLAN)
    res = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=root)
    assert res.returncode == 0, res.stderr
    assert "\n[agents]\nsandbox = true\n" in (root / "comm-node.toml").read_text()
    assert load_workspace(str(root), use_cache=False).domains["api"].sandbox
    # the plan run again: the file's choice stays, even one the operator changed since
    toml = root / "comm-node.toml"
    toml.write_text(toml.read_text().replace("sandbox = true", "sandbox = false"))
    res = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=root)
    assert res.returncode == 0, res.stderr
    assert not load_workspace(str(root), use_cache=False).domains["api"].sandbox
    # where it cannot run: off, and why, in the file
    bare = tmp_path / "bare"
    (bare / "api").mkdir(parents=True)
    (bare / "PLAN.toml").write_text(PLAN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["PATH"] = without(tmp_path / "nobwrap", "bwrap", "socat")
    res = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=bare, env=env)
    assert res.returncode == 0, res.stderr
    text = (bare / "comm-node.toml").read_text()
    assert (
        "\n[agents]\nsandbox = false  # bwrap, socat not installed (apt install bubblewrap "
        "socat): Claude Code's Bash sandbox cannot run here\n"
    ) in text
    assert not load_workspace(str(bare), use_cache=False).domains["api"].sandbox
    # a plan that says wins over both
    said = tmp_path / "said"
    (said / "api").mkdir(parents=True)
    (said / "PLAN.toml").write_text(
        PLAN.replace("\n\n[[domains]]", "\n[agents]\nsandbox = false\n\n[[domains]]", 1)
    )
    res = run_cli("init", "--from", "PLAN.toml", "--yes", cwd=said)
    assert res.returncode == 0, res.stderr
    assert "sandbox" not in (said / "comm-node.toml").read_text()  # off: the default


def test_up_and_restart_pass_an_agent_its_own_settings_file_in_a_shared_folder(
    tmp_path, monkeypatch
):
    """Domains sharing a folder: the agent's command gets `--settings <its file>` (its walls
    from its peers) at every start, written just before; a domain alone gets none."""
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.workspace.discovery import load_workspace
    from tests.waiting import wait_for

    root = tmp_path / "ws"
    for folder in ("api", "web", "lib"):
        (root / folder).mkdir(parents=True)
    agent = tmp_path / "agent.sh"  # stands in for claude: records the arguments it got
    agent.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$AGENT_ARGS.$COMM_NODE_DOMAIN"\nexec sleep 600\n'
    )
    agent.chmod(0o755)
    (root / "comm-node.toml").write_text(
        f'[project]\nname = "mono"\n[agents]\nsandbox = true\ncommand = "{agent}"\n'
        '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**"]\n'
        '[[domains]]\nname = "web"\npath = "."\nscope = ["web/**"]\n'
        '[[domains]]\nname = "lib"\npath = "lib"\n'
    )
    # the tmux server started below inherits it; it is killed after the test (conftest)
    monkeypatch.setenv("AGENT_ARGS", str(tmp_path / "args"))
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    own = root / ".comm-node" / "sandbox" / "api.json"
    got = wait_for(lambda: _lines(tmp_path / "args.api"), timeout=30, what="api's args")
    assert got == ["--settings", str(own)]
    assert json.loads(own.read_text())["sandbox"]["filesystem"]["denyWrite"] == [str(root / "web")]
    wait_for(lambda: _lines(tmp_path / "args.lib") is not None, timeout=30, what="lib's args")
    assert _lines(tmp_path / "args.lib") == [""]  # printf with no arguments: one empty line
    (tmp_path / "args.api").unlink()
    own.unlink()  # gone: written again before the restart
    ap.restart("api")
    got = wait_for(lambda: _lines(tmp_path / "args.api"), timeout=30, what="api's args again")
    assert got == ["--settings", str(own)] and own.exists()


def test_a_command_with_its_own_settings_file_keeps_it_and_the_operator_is_told(
    tmp_path, monkeypatch
):
    """A second --settings would silently replace the user's own file: a command that has
    one keeps it alone, and a warning says the walls from its folder's peers are not
    passed."""
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol.events import tail
    from comm_node_tui.workspace.discovery import load_workspace
    from tests.waiting import wait_for

    root = tmp_path / "ws"
    for folder in ("api", "web"):
        (root / folder).mkdir(parents=True)
    agent = tmp_path / "agent.sh"  # stands in for claude: records the arguments it got
    agent.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$AGENT_ARGS.$COMM_NODE_DOMAIN"\nexec sleep 600\n'
    )
    agent.chmod(0o755)
    mine = tmp_path / "team settings.json"
    (root / "comm-node.toml").write_text(
        f'[project]\nname = "mono"\n[agents]\nsandbox = true\ncommand = "{agent}"\n'
        '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**"]\n'
        f"command = \"{agent} --settings '{mine}'\"\n"
        '[[domains]]\nname = "web"\npath = "."\nscope = ["web/**"]\n'
    )
    monkeypatch.setenv("AGENT_ARGS", str(tmp_path / "args"))
    ws = load_workspace(str(root))
    AgentPanes(ws).up(["api"])
    got = wait_for(lambda: _lines(tmp_path / "args.api"), timeout=30, what="api's args")
    assert got == ["--settings", str(mine)]
    told = [e for e in tail(ws.paths.events, 50) if e.type == "sandbox.not_walled"]
    assert len(told) == 1 and told[0].agent == "api" and "denyWrite" in told[0].msg


def _lines(path: Path) -> list[str] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    # written whole or not yet: the shell's `>` makes the file empty before printf writes
    return text.splitlines() if text.endswith("\n") else None


def test_hooks_install_and_doctor_in_a_shared_folder_name_the_gaps_and_the_settings_file(
    tmp_path,
):
    """A monorepo: the walled pair is not reported unwalled any more; a scope that cannot be
    walled is; hooks install says what an agent started by hand needs."""
    root = tmp_path / "ws"
    for folder in ("api", "web"):
        (root / folder).mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "mono"\n[agents]\nsandbox = true\ncommand = "claude"\n'
        '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**"]\n'
        '[[domains]]\nname = "web"\npath = "."\nscope = ["web/**"]\n'
        '[[domains]]\nname = "docs"\npath = "."\nscope = ["**/*.md"]\n'
    )
    home = root / ".home"  # doctor()'s CLAUDE_CONFIG_DIR
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["CLAUDE_CONFIG_DIR"] = str(home)
    res = run_cli("hooks", "install", "--all", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    own = root / ".comm-node" / "sandbox" / "api.json"
    assert (
        f"api: sandbox: its walls from the domains sharing its folder need `claude --settings "
        f"{own}` (`comm-node up` passes it)"
    ) in res.stderr.splitlines()
    _code, checks, text = doctor(root)
    api = checks["sandbox: api"]["detail"]
    gap = (
        "docs's scope **/*.md is a pattern (Claude Code ignores globs in denyWrite): not "
        "walled from api by the sandbox"
    )
    assert (
        api == f"on in .claude/settings.json, but commands it cannot check may still ask: {gap}"
    ), text
    web = checks["sandbox: web"]["detail"]
    assert "docs's scope **/*.md" in web and "api's scope" not in web, text
    # docs is walled from both peers by its own file, which allows it the whole Bash tool:
    # the shared folder is no reason for prompts any more
    docs = checks["sandbox: docs"]
    assert (docs["status"], docs["detail"]) == ("OK", "on in .claude/settings.json"), text
    docs_own = json.loads((root / ".comm-node" / "sandbox" / "docs.json").read_text())
    assert docs_own["permissions"] == {"allow": ["Bash"]}
    # the agent's own file gone (or changed by hand): the doctor says it is not as written
    own.unlink()
    _code, checks, text = doctor(root)
    assert checks["sandbox: api"]["status"] == "WARN"
    assert "does not hold it yet" in checks["sandbox: api"]["detail"], text


def test_hooks_uninstall_takes_out_exactly_the_sandbox_comm_node_wrote(tmp_path):
    """The user's own sandbox keys, allow rules (their own `Bash` too) and settings stay;
    comm-node's scalars, paths and rules go; a second uninstall changes nothing."""
    root = tmp_path / "ws"
    for folder in ("api", "web"):
        (root / folder).mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "mono"\n[agents]\nsandbox = true\ncommand = "claude"\n'
        '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**"]\n'
        '[[domains]]\nname = "web"\npath = "."\nscope = ["web/**"]\n'
        '[[domains]]\nname = "lib"\npath = "lib"\n'
    )
    (root / "lib").mkdir()
    lib_claude = root / "lib" / ".claude"
    lib_claude.mkdir()
    mine = {
        "model": "opus",
        "permissions": {"allow": ["Read(~/notes/**)"], "deny": ["Bash(curl:*)"]},
        "sandbox": {
            "excludedCommands": ["docker *"],
            "filesystem": {"allowWrite": ["/srv/cache"], "denyRead": ["/srv/private"]},
        },
    }
    (lib_claude / "settings.json").write_text(json.dumps(mine))
    home = tmp_path / "claude-config"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["CLAUDE_CONFIG_DIR"] = str(home)
    assert run_cli("hooks", "install", "--all", cwd=root, env=env).returncode == 0
    shared = root / ".claude" / "settings.json"
    # the shared folder's user adds a Bash rule of their own after comm-node wrote
    data = json.loads(shared.read_text())
    data.setdefault("permissions", {}).setdefault("allow", []).append("Bash(make:*)")
    data["sandbox"]["network"] = {"allowedDomains": ["pypi.org"]}
    shared.write_text(json.dumps(data))
    assert (root / ".comm-node" / "sandbox" / "api.json").exists()
    lib_box = json.loads((lib_claude / "settings.json").read_text())["sandbox"]
    assert lib_box["enabled"] and lib_box["filesystem"]["denyRead"][0] == "/srv/private"

    res = run_cli("hooks", "uninstall", "--all", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    assert f"api: comm-node's sandbox taken out ({shared})" in res.stdout
    assert json.loads((lib_claude / "settings.json").read_text()) == mine  # exactly theirs
    left = json.loads(shared.read_text())
    assert left == {
        "permissions": {"allow": ["Bash(make:*)"]},
        "sandbox": {"network": {"allowedDomains": ["pypi.org"]}},
    }
    assert not list((root / ".comm-node").rglob("sandbox.json"))  # the records
    assert not (root / ".comm-node" / "sandbox" / "api.json").exists()
    assert not (root / ".comm-node" / "sandbox" / "web.json").exists()
    # again: nothing to take out, nothing written
    before = {p: p.read_text() for p in (shared, lib_claude / "settings.json")}
    backups = sorted(root.rglob("settings.json.bak-*"))
    res = run_cli("hooks", "uninstall", "--all", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    assert "sandbox taken out" not in res.stdout
    assert {p: p.read_text() for p in before} == before
    assert sorted(root.rglob("settings.json.bak-*")) == backups


def test_a_real_start_applies_the_limits_this_machine_offers_and_doctor_says_which(
    tmp_path, monkeypatch
):
    """Without a user systemd (a container: "Failed to connect to bus") the agent runs
    below `nice` and its memory limit is reported as not applied; with one, in a scope of
    its own. The doctor names the one that applies."""
    from comm_node_tui.panes.limits import NICE, user_systemd
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.workspace.discovery import load_workspace
    from tests.waiting import wait_for

    root = tmp_path / "ws"
    (root / "api").mkdir(parents=True)
    agent = tmp_path / "agent.sh"  # stands in for claude: records its priority and cgroup
    agent.write_text(
        '#!/bin/sh\n{ nice; cat /proc/self/cgroup; } > "$AGENT_OUT.tmp"\n'
        'mv "$AGENT_OUT.tmp" "$AGENT_OUT"\nexec sleep 600\n'
    )
    agent.chmod(0o755)
    (root / "comm-node.toml").write_text(
        f'[project]\nname = "lim"\n[agents]\ncommand = "{agent}"\n'
        'memory_max = "1G"\ncpu_quota = "50%"\n'
        '[[domains]]\nname = "api"\npath = "api"\n'
    )
    out = tmp_path / "out"
    monkeypatch.setenv("AGENT_OUT", str(out))  # the tmux server started below inherits it
    systemd = user_systemd()
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    lines = wait_for(lambda: out.exists() and out.read_text().splitlines(), timeout=30,
                     what="the agent's priority")  # fmt: skip
    events = [json.loads(line) for line in (root / ".comm-node" / "events.jsonl").open()]
    notes = [e["msg"] for e in events if e["type"] == "limits.unavailable"]
    _code, checks, text = doctor(root)
    if systemd:
        assert int(lines[0]) == os.nice(0) and "comm-node-api-" in "\n".join(lines[1:])
        assert notes == [] and checks["limits"]["status"] == "OK", text
        assert checks["limits"]["detail"].startswith("a systemd scope per agent")
    else:
        assert int(lines[0]) == min(19, os.nice(0) + NICE), lines
        assert notes == [
            "api: memory_max 1G not applied: no user systemd here (systemd-run --user); the "
            "agent runs without a memory limit"
        ]
        assert checks["limits"]["status"] == "WARN", text
        assert checks["limits"]["detail"] == (
            f"no user systemd here (systemd-run --user): cpu_quota as a lower priority (nice "
            f"{NICE}) for api; memory_max not applied for api"
        )


def _monorepo(tmp_path: Path, web: str = "") -> tuple[Path, dict, dict]:
    """api and web sharing one folder, the user's own settings there already; (root, env,
    the user's settings)."""
    root = tmp_path / "ws"
    for folder in ("api", "web"):
        (root / folder).mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "mono"\n[agents]\nsandbox = true\ncommand = "claude"\n'
        '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**"]\n'
        f'[[domains]]\nname = "web"\npath = "."\nscope = ["web/**"]\n{web}'
    )
    mine = {
        "model": "opus",
        "permissions": {"allow": ["Bash(make:*)"]},
        "sandbox": {"network": {"allowedDomains": ["pypi.org"]}},
    }
    (root / ".claude").mkdir()
    (root / ".claude" / "settings.json").write_text(json.dumps(mine))
    home = tmp_path / "claude-config"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["CLAUDE_CONFIG_DIR"] = str(home)
    return root, env, mine


def test_uninstalling_one_domain_of_a_shared_folder_keeps_what_its_peer_needs(tmp_path):
    """The security bug of issue 23: `hooks uninstall --domain api` took the shared sandbox
    out from under web (whichever of them had written it first held it in its record), so
    web's next agent ran unwalled and unhooked. Now only api's own file goes; the shared
    part goes with the last domain."""
    root, env, mine = _monorepo(tmp_path)
    shared = root / ".claude" / "settings.json"
    own = {n: root / ".comm-node" / "sandbox" / f"{n}.json" for n in ("api", "web")}
    assert run_cli("hooks", "install", "--all", cwd=root, env=env).returncode == 0
    installed = json.loads(shared.read_text())
    assert installed["sandbox"]["enabled"] and "PreToolUse" in installed["hooks"]
    assert str(root / "api") in json.loads(own["web"].read_text())["sandbox"]["filesystem"][
        "denyWrite"
    ]
    web_own = own["web"].read_text()

    res = run_cli("hooks", "uninstall", "--domain", "api", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        f"api: comm-node's hooks and sandbox kept in {shared} for web (sharing the folder)",
        f"api: its own settings file taken out ({own['api']})",
    ]
    assert json.loads(shared.read_text()) == installed  # web's sandbox, hooks and rules
    assert not own["api"].exists() and own["web"].read_text() == web_own
    # web's next start (`up` writes its sandbox first) finds its walls as they were
    res = run_cli("hooks", "install", "--domain", "web", "--json", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    assert not json.loads(res.stdout)[0]["sandbox"]["changed"]
    assert json.loads(shared.read_text()) == installed

    # the last one: everything comm-node wrote goes, the user's keys stay
    res = run_cli("hooks", "uninstall", "--domain", "web", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    assert f"web: comm-node's sandbox taken out ({shared})" in res.stdout
    assert json.loads(shared.read_text()) == mine
    assert not list((root / ".comm-node").rglob("sandbox.json"))  # the records
    assert not own["web"].exists()

    # installed again, then the other one leaves first: the same, the other way round
    assert run_cli("hooks", "install", "--all", cwd=root, env=env).returncode == 0
    assert json.loads(shared.read_text()) == installed
    res = run_cli("hooks", "uninstall", "--domain", "web", cwd=root, env=env)
    assert "for api (sharing the folder)" in res.stdout
    assert json.loads(shared.read_text()) == installed and own["api"].exists()
    assert run_cli("hooks", "uninstall", "--domain", "api", cwd=root, env=env).returncode == 0
    assert json.loads(shared.read_text()) == mine


def test_a_record_from_before_the_shared_one_is_folded_in(tmp_path):
    """A shared folder installed before the record was one per settings file: the first
    domain's record held all of comm-node's part, the second's none. Its uninstall keeps
    web's walls, and the last one still takes out everything comm-node wrote."""
    root, env, mine = _monorepo(tmp_path)
    shared = root / ".claude" / "settings.json"
    assert run_cli("hooks", "install", "--all", cwd=root, env=env).returncode == 0
    installed = json.loads(shared.read_text())
    record = root / ".comm-node" / "sandbox.json"
    (root / ".comm-node" / "api").mkdir(exist_ok=True)
    record.rename(root / ".comm-node" / "api" / "sandbox.json")  # as the old code left it
    assert run_cli("hooks", "uninstall", "--domain", "api", cwd=root, env=env).returncode == 0
    assert json.loads(shared.read_text()) == installed
    assert run_cli("hooks", "uninstall", "--domain", "web", cwd=root, env=env).returncode == 0
    assert json.loads(shared.read_text()) == mine
    assert not list((root / ".comm-node").rglob("sandbox.json"))


def test_sandbox_false_on_one_domain_of_a_shared_folder_keeps_the_peers_walls(tmp_path):
    """One settings file cannot be both: the sandbox stays while a domain of the folder
    wants it, and the one with sandbox = false is told it runs walled."""
    root, env, mine = _monorepo(tmp_path, web="sandbox = false\n")
    shared = root / ".claude" / "settings.json"
    res = run_cli("hooks", "install", "--all", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    installed = json.loads(shared.read_text())
    assert installed["sandbox"]["enabled"] and installed["sandbox"]["failIfUnavailable"]
    assert (
        "web: sandbox: sandbox = false, but it runs walled: it shares its folder's settings "
        "with api (sandbox = true)"
    ) in res.stderr.splitlines()
    # web written alone (its agent's start, an install of it) takes nothing of api's
    for _ in range(2):
        res = run_cli("hooks", "install", "--domain", "web", cwd=root, env=env)
        assert res.returncode == 0, res.stderr
        assert json.loads(shared.read_text()) == installed
    _code, checks, text = doctor(root)
    assert checks["sandbox: web"]["status"] == "WARN", text
    assert checks["sandbox: web"]["detail"] == (
        "sandbox = false, but its agent runs walled: it shares its folder's "
        ".claude/settings.json with api (sandbox = true)"
    )
    assert checks["sandbox: api"]["status"] != "FAIL", text
    # api leaves: no one wants the sandbox, web keeps its hooks and rules
    res = run_cli("hooks", "uninstall", "--domain", "api", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    left = json.loads(shared.read_text())
    assert "sandbox" in left and left["sandbox"] == mine["sandbox"]
    assert "PreToolUse" in left["hooks"] and "Bash" not in left["permissions"]["allow"]
    assert "Bash(comm-node send:*)" in left["permissions"]["allow"]
    _code, checks, text = doctor(root)
    assert checks["sandbox: web"]["detail"] == "off (this domain's sandbox = false)", text
    assert run_cli("hooks", "uninstall", "--domain", "web", cwd=root, env=env).returncode == 0
    assert json.loads(shared.read_text()) == mine


def test_turning_the_sandbox_off_for_the_domain_that_wrote_it_first_keeps_the_peers(tmp_path):
    """web wrote the shared sandbox first (so its record once held all of it); web's
    sandbox = false must not take api's walls with it."""
    root, env, _mine = _monorepo(tmp_path)
    shared = root / ".claude" / "settings.json"
    for name in ("web", "api"):
        res = run_cli("hooks", "install", "--domain", name, cwd=root, env=env)
        assert res.returncode == 0, res.stderr
    installed = json.loads(shared.read_text())
    toml = root / "comm-node.toml"
    toml.write_text(toml.read_text() + "sandbox = false\n")  # the last domain: web
    res = run_cli("hooks", "install", "--domain", "web", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(shared.read_text())["sandbox"] == installed["sandbox"]
    assert not (root / ".comm-node" / "sandbox" / "web.json").exists()  # web has no walls
    assert (root / ".comm-node" / "sandbox" / "api.json").exists()
