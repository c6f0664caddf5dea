"""The sandbox settings comm-node writes for each domain (adapters/claude/sandbox.py): merged
with the user's own, built from scopes, peers denied in a shared repository, taken out again;
the refusals read from a Bash call's output; the limits put on an agent's command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from comm_node_tui.adapters.claude.sandbox import (
    missing_tools,
    sandbox_block,
    unavailable_reason,
    write_sandbox,
)
from comm_node_tui.adapters.claude.settings import install_hooks
from comm_node_tui.hooks.refusals import output_text, refused_paths
from comm_node_tui.panes.limits import limited
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, run_cli, write_workspace


@pytest.fixture(autouse=True)
def claude_config(tmp_path, monkeypatch) -> Path:
    """The user's Claude settings comm-node checks for excludedCommands: a private folder,
    never the real ~/.claude."""
    folder = tmp_path / "claude-config"
    folder.mkdir()
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(folder))
    return folder


def settings(ws, name: str) -> dict:
    return json.loads((Path(ws.domains[name].path) / ".claude" / "settings.json").read_text())


def test_the_sandbox_is_merged_with_the_users_settings_and_their_hooks_kept(tmp_path):
    root = write_workspace(tmp_path / "ws", agents="sandbox = true")
    claude = root / "backend" / ".claude"
    claude.mkdir()
    mine = {
        "model": "x",
        "sandbox": {
            "excludedCommands": ["docker *"],
            "filesystem": {"denyRead": ["/srv/private"], "allowWrite": ["/srv/cache"]},
        },
    }
    (claude / "settings.json").write_text(json.dumps(mine))
    ws = load_workspace(str(root))
    install_hooks(ws.domains["backend"])
    done = write_sandbox(ws, ws.domains["backend"])
    assert done["enabled"] and done["changed"]
    data = settings(ws, "backend")
    assert data["model"] == "x" and "PreToolUse" in data["hooks"]
    box = data["sandbox"]
    assert box["enabled"] is True and box["failIfUnavailable"] is True
    assert box["autoAllowBashIfSandboxed"] is True and box["allowUnsandboxedCommands"] is False
    assert box["excludedCommands"] == ["docker *"]
    fs = box["filesystem"]
    assert fs["allowWrite"][0] == "/srv/cache"  # the user's first, comm-node's added
    assert ws.paths.state in fs["allowWrite"]
    assert fs["denyRead"][0] == "/srv/private" and "~/.ssh" in fs["denyRead"]
    # the user's excludedCommands run outside the walls: the Bash tool is not allowed whole
    assert "Bash" not in data["permissions"]["allow"]
    assert (
        done["prompts"] == f"sandbox.excludedCommands in {claude / 'settings.json'} run "
        "outside the sandbox"
    )
    # a second write changes nothing
    assert write_sandbox(ws, ws.domains["backend"])["changed"] is False


def test_turning_it_off_takes_out_exactly_what_comm_node_added(tmp_path):
    root = write_workspace(tmp_path / "ws", agents="sandbox = true")
    claude = root / "backend" / ".claude"
    claude.mkdir()
    mine = {
        "permissions": {"allow": ["Bash(make:*)"]},
        "sandbox": {"filesystem": {"denyRead": ["/srv/private", "~/.ssh"]}},
    }
    (claude / "settings.json").write_text(json.dumps(mine))
    ws = load_workspace(str(root))
    done = write_sandbox(ws, ws.domains["backend"])
    # every command walled: the whole Bash tool allowed, so compound commands do not ask
    assert done["prompts"] is None
    assert settings(ws, "backend")["permissions"]["allow"] == ["Bash(make:*)", "Bash"]
    text = (root / "comm-node.toml").read_text().replace("sandbox = true", "sandbox = false")
    (root / "comm-node.toml").write_text(text)
    ws = load_workspace(str(root))
    done = write_sandbox(ws, ws.domains["backend"])
    assert done["changed"] and not done["enabled"]
    # "~/.ssh" was the user's before comm-node listed it too: it stays
    assert settings(ws, "backend") == mine


def test_the_bash_tool_is_allowed_whole_only_while_every_command_is_walled(tmp_path, claude_config):
    root = write_workspace(tmp_path / "ws", agents="sandbox = true")
    ws = load_workspace(str(root))
    dom = ws.domains["backend"]
    claude = root / "backend" / ".claude"
    assert write_sandbox(ws, dom)["prompts"] is None
    assert settings(ws, "backend")["permissions"]["allow"] == ["Bash"]
    # the user excludes a command in their own settings: it would run unwalled and unasked
    (claude_config / "settings.json").write_text(
        json.dumps({"sandbox": {"excludedCommands": ["docker *"]}})
    )
    done = write_sandbox(ws, dom)
    assert done["changed"] and "permissions" not in settings(ws, "backend")
    assert done["prompts"] == (
        f"sandbox.excludedCommands in {claude_config / 'settings.json'} run outside the sandbox"
    )
    (claude_config / "settings.json").unlink()
    (claude / "settings.local.json").write_text(
        json.dumps({"sandbox": {"excludedCommands": ["make *"]}})
    )
    assert "settings.local.json" in write_sandbox(ws, dom)["prompts"]
    # settings.local.json takes precedence over settings.json: switched off there, the
    # sandbox is off, and a whole-tool rule would let every command run unwalled, unasked
    for key, value in (("enabled", False), ("allowUnsandboxedCommands", True)):
        (claude / "settings.local.json").write_text(json.dumps({"sandbox": {key: value}}))
        done = write_sandbox(ws, dom)
        assert done["prompts"] == (
            f"sandbox.{key} is {json.dumps(value)} in {claude / 'settings.local.json'}"
        )
        assert "permissions" not in settings(ws, "backend")
    (claude / "settings.local.json").unlink()
    assert write_sandbox(ws, dom)["prompts"] is None
    # the user's own fail-open switch wins over comm-node's: then no whole-tool rule either
    data = settings(ws, "backend")
    data["sandbox"]["failIfUnavailable"] = False
    (claude / "settings.json").write_text(json.dumps(data))
    done = write_sandbox(ws, dom)
    assert done["prompts"] == f"sandbox.failIfUnavailable is false in {claude / 'settings.json'}"
    assert "permissions" not in settings(ws, "backend")
    # the user's own "Bash" rule is theirs: kept when the sandbox goes off
    data = settings(ws, "backend")
    data["sandbox"]["failIfUnavailable"] = True
    data["permissions"] = {"allow": ["Bash"]}
    (claude / "settings.json").write_text(json.dumps(data))
    assert write_sandbox(ws, dom)["prompts"] is None
    text = (root / "comm-node.toml").read_text().replace("sandbox = true", "sandbox = false")
    (root / "comm-node.toml").write_text(text)
    ws = load_workspace(str(root))
    write_sandbox(ws, ws.domains["backend"])
    after = settings(ws, "backend")
    assert after["permissions"] == {"allow": ["Bash"]}
    assert "enabled" not in after.get("sandbox", {})


def test_a_domain_can_turn_its_own_sandbox_off(tmp_path):
    root = write_workspace(
        tmp_path / "ws", agents="sandbox = true", domain_extra={"docs": "sandbox = false"}
    )
    ws = load_workspace(str(root))
    assert ws.domains["backend"].sandbox and not ws.domains["docs"].sandbox
    write_sandbox(ws, ws.domains["docs"])
    assert not (root / "docs" / ".claude" / "settings.json").exists()


def test_domains_sharing_a_folder_are_walled_by_their_own_settings_files_and_gaps_said(
    tmp_path,
):
    """Domains in one folder share its .claude/settings.json: denying each other's scopes
    there walled every agent out of its own scope too (the union of their denies). So the
    shared file denies no sharing peer (a nested peer's folder, yes); each agent's own file
    in the store's denied part, passed with `--settings`, denies its peers' scope folders;
    a scope that names no one folder (`**/*.md`, a bare `web/`) or one not there yet is
    said and keeps Claude Code's own prompts; once every peer is walled, the agent's own
    file allows it the whole Bash tool (the shared file never does)."""
    from comm_node_tui.adapters.claude.sandbox import agent_settings_path

    root = tmp_path / "ws"
    root.mkdir()
    (root / "comm-node.toml").write_text(
        '[project]\nname = "mono"\n[agents]\nsandbox = true\n'
        '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**", "shared/api.ts"]\n'
        '[[domains]]\nname = "docs"\npath = "."\nscope = ["**/*.md", "guide/"]\n'
        '[[domains]]\nname = "web"\npath = "."\nscope = ["/web/"]\n'
        '[[domains]]\nname = "lib"\npath = "lib"\n'
    )
    for folder in ("lib", "api", "web"):
        (root / folder).mkdir()
    ws = load_workspace(str(root))
    for name in ("api", "docs", "web"):
        deny = sandbox_block(ws, ws.domains[name])["filesystem"]["denyWrite"]
        assert str(root / "lib") in deny  # a peer's folder inside this one's
        assert not any(p.startswith((str(root / "api"), str(root / "web"))) for p in deny)
    done = write_sandbox(ws, ws.domains["api"])
    own = agent_settings_path(ws, ws.domains["api"])
    assert own == str(root / ".comm-node" / "sandbox" / "api.json")
    assert done["launch_args"] == ["--settings", own]
    assert json.loads(Path(own).read_text()) == {
        "sandbox": {"filesystem": {"denyWrite": [str(root / "web")]}}
    }  # only denyWrite: other sandbox keys there make Claude Code drop project values
    assert done["partial"] == [
        "docs's scope **/*.md is a pattern (Claude Code ignores globs in denyWrite): not "
        "walled from api by the sandbox",
        "docs's scope guide/ matches a guide at any depth (gitignore rules; `/guide/` or "
        "`guide/**` names one folder): not walled from api by the sandbox",
    ]
    # not walled from a peer: Claude Code's own prompts stay (no whole-tool Bash rule)
    assert done["prompts"] == done["partial"][0]
    assert "permissions" not in json.loads((root / ".claude" / "settings.json").read_text())
    # web: api's folder denied, api's file scope not there yet (said); the agents' files
    # are denied to every agent in the shared settings
    web = write_sandbox(ws, ws.domains["web"])
    assert json.loads(Path(web["launch_args"][1]).read_text())["sandbox"]["filesystem"] == {
        "denyWrite": [str(root / "api")]
    }
    assert web["partial"][0] == (
        "api's scope shared/api.ts does not exist yet (walled once it does, at the next "
        "start): not walled from web by the sandbox"
    )
    (root / "shared").mkdir()
    (root / "shared" / "api.ts").write_text("x\n")
    web = write_sandbox(ws, ws.domains["web"])
    assert web["changed"] and web["launch_args"] == [
        "--settings",
        str(root / ".comm-node" / "sandbox" / "web.json"),
    ]
    assert json.loads(Path(web["launch_args"][1]).read_text())["sandbox"]["filesystem"] == {
        "denyWrite": [str(root / "api"), str(root / "shared" / "api.ts")]
    }
    assert [line.split("'s scope ")[0] for line in web["partial"]] == ["docs", "docs"]
    assert "permissions" not in json.loads(Path(web["launch_args"][1]).read_text())
    # every gap closed: the whole Bash tool allowed in the agent's own file, beside its
    # walls (a claude started by hand there reads neither), never in the shared one
    toml = root / "comm-node.toml"
    toml.write_text(toml.read_text().replace('name = "docs"', 'name = "docs"\nsandbox = false'))
    toml.write_text(toml.read_text().replace('["**/*.md", "guide/"]', '["/guide/"]'))
    (root / "guide").mkdir()
    ws = load_workspace(str(root), use_cache=False)
    web = write_sandbox(ws, ws.domains["web"])
    assert web["partial"] == [] and web["prompts"] is None
    web_own = json.loads(Path(web["launch_args"][1]).read_text())
    assert str(root / "guide") in web_own["sandbox"]["filesystem"]["denyWrite"]
    assert web_own["permissions"] == {"allow": ["Bash"]}
    folder = json.loads((root / ".claude" / "settings.json").read_text())
    assert "Bash" not in folder.get("permissions", {}).get("allow", [])
    # a weakening anywhere Claude Code merges: the rule leaves the agent's file too
    local = root / ".claude" / "settings.local.json"
    local.write_text(json.dumps({"sandbox": {"excludedCommands": ["docker *"]}}))
    web = write_sandbox(ws, ws.domains["web"])
    assert web["changed"] and web["prompts"] == (
        f"sandbox.excludedCommands in {local} run outside the sandbox"
    )
    assert "permissions" not in json.loads(Path(web["launch_args"][1]).read_text())
    local.unlink()
    assert write_sandbox(ws, ws.domains["web"])["prompts"] is None
    shared = json.loads((root / ".claude" / "settings.json").read_text())["sandbox"]
    assert str(root / ".comm-node" / "sandbox") in shared["filesystem"]["denyWrite"]
    assert not any(p.startswith(str(root / "api")) for p in shared["filesystem"]["denyWrite"])
    # a domain alone in its folder: no file of its own
    lib = write_sandbox(ws, ws.domains["lib"])
    assert lib["partial"] == [] and lib["launch_args"] == []
    assert not os.path.exists(agent_settings_path(ws, ws.domains["lib"]))
    # sandbox off: the agent's own file goes with the rest
    toml.write_text(toml.read_text().replace("sandbox = true", "sandbox = false"))
    ws = load_workspace(str(root), use_cache=False)
    off = write_sandbox(ws, ws.domains["web"])
    assert off["launch_args"] == [] and not os.path.exists(web["launch_args"][1])


def test_a_scope_walls_one_path_only_when_it_names_one(tmp_path):
    from comm_node_tui.adapters.claude.sandbox import scope_wall

    base = str(tmp_path)
    assert scope_wall(base, "api/**") == (f"{base}/api", None)
    assert scope_wall(base, "/web/") == (f"{base}/web", None)
    assert scope_wall(base, "src/api/") == (f"{base}/src/api", None)
    assert scope_wall(base, "docs/guide.md") == (f"{base}/docs/guide.md", None)
    assert scope_wall(base, "**")[0] is None
    assert scope_wall(base, "src/*.py")[0] is None
    assert scope_wall(base, "src/**/x")[0] is None
    assert scope_wall(base, "web/")[1].startswith("matches a web at any depth")
    assert scope_wall(base, "*.md")[1] == "is a pattern (Claude Code ignores globs in denyWrite)"


def test_the_store_files_the_engine_owns_are_denied_and_the_rest_of_the_store_allowed(tmp_path):
    root = write_workspace(tmp_path / "ws", agents='sandbox = true\nsandbox_network = ["pypi.org"]')
    ws = load_workspace(str(root))
    state = Path(ws.paths.state)
    (state / "bin").mkdir(parents=True, exist_ok=True)
    box = sandbox_block(ws, ws.domains["backend"])
    assert str(state) in box["filesystem"]["allowWrite"]
    deny = box["filesystem"]["denyWrite"]
    assert str(state / "bin") in deny and str(state / "guarded") in deny
    # a file that does not exist is not listed: Claude Code would bind /dev/null there
    assert str(state / "paused.json") not in deny
    assert box["network"] == {"allowedDomains": ["pypi.org"]}


def test_a_worktree_gets_its_git_folders_outside_it_writable(tmp_path):
    main = tmp_path / "main"
    subprocess.run(["git", "init", "-q", str(main)], check=True)
    subprocess.run(["git", "-C", str(main), "commit", "-q", "--allow-empty", "-m", "i"], check=True)
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "-C", str(main), "worktree", "add", "-q", str(root / "api")], check=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "w"\n[agents]\nsandbox = true\n[[domains]]\nname = "api"\npath = "api"\n'
    )
    ws = load_workspace(str(root))
    allow = sandbox_block(ws, ws.domains["api"])["filesystem"]["allowWrite"]
    git = (main / ".git").resolve()
    assert str(git / "worktrees" / "api") in allow and str(git) in allow


def test_bad_sandbox_keys_are_one_line_each_naming_the_field(tmp_path):
    from comm_node_tui.errors import ConfigError
    from comm_node_tui.workspace.config import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config(
            '[project]\nname = "x"\n[agents]\nsandbox_network = ["a b"]\nmemory_max = "2Q"\n'
            'sandbox_deny_read = ["relative"]\n[[domains]]\nname = "a"\npath = "."\n'
            'cpu_quota = "half"\n'
        )
    problems = err.value.problems
    assert len(problems) == 4
    for field in ("agents.sandbox_network", "agents.memory_max", "agents.sandbox_deny_read"):
        assert any(f"comm-node.toml: {field}:" in p for p in problems), problems
    assert any("domains[0] (a).cpu_quota" in p for p in problems)


def test_missing_tools_are_named_with_the_packages_to_install(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    assert missing_tools(str(empty)) == ["bwrap", "socat"]
    why = unavailable_reason(str(empty))
    assert why == "bwrap, socat not installed (apt install bubblewrap socat)"


def test_refusals_are_read_from_the_commands_errors():
    text = output_text(
        {
            "error": "Exit code 1\ntouch: cannot touch '/w/web/src/x': Read-only file system\n"
            "mkdir: cannot create directory ‘/w/web/y’: Read-only file system\n"
            "/bin/bash: line 1: ../web/z.ts: Read-only file system\n"
            "cp: cannot create regular file 'a': Operation not permitted\n"
            "ls: fine"
        }
    )
    found = refused_paths(text, cwd="/w/api")
    assert [p for p, _ in found] == ["/w/web/src/x", "/w/web/y", "/w/web/z.ts", "/w/api/a"]
    assert found[-1][1] == "Operation not permitted"
    assert refused_paths("all good\n", cwd="/w") == []
    response = output_text(
        {"tool_response": {"stdout": "", "stderr": "x: '/p\x1b[31m': Read-only file system"}}
    )
    assert refused_paths(response) == [("/p?[31m", "Read-only file system")]


def test_a_relative_refused_path_after_a_cd_is_resolved_where_the_command_went():
    """Claude Code 2.1.330's payload holds the agent's folder (`cwd`), not where a `cd` in
    the command went: a leading `cd DIR &&` / `;` chain is followed, any other directory
    change leaves the path as printed (relative to a folder nobody knows)."""
    from comm_node_tui.hooks.refusals import start_folder

    text = output_text(
        {
            "hook_event_name": "PostToolUseFailure",
            "tool_name": "Bash",
            "cwd": "/w/api",
            "error": "Exit code 1\n/bin/bash: line 1: x.ts: Read-only file system",
        }
    )

    def path(command: str) -> str:
        return refused_paths(text, cwd="/w/api", command=command)[0][0]

    assert path("echo x > x.ts") == "/w/api/x.ts"
    assert path("cd ../web/src && echo x > x.ts") == "/w/web/src/x.ts"
    assert path("cd ../web; cd 'src' && echo x > x.ts") == "/w/web/src/x.ts"
    assert path("cd /w/web && echo x > x.ts") == "/w/web/x.ts"
    for unsure in (
        "echo a && cd ../web && echo x > x.ts",  # not leading
        "(cd ../web && echo x > x.ts)",  # a subshell
        "cd ../web || exit; echo x > x.ts",
        "cd $DIR && echo x > x.ts",
        "cd ~/web && echo x > x.ts",
        "cd - && echo x > x.ts",
        "pushd ../web && echo x > x.ts",
        "cd ../web && cd - && echo x > x.ts",
        "cd '../web && echo x > x.ts",  # unbalanced: not read
    ):
        assert path(unsure) == "x.ts", unsure
        assert start_folder(unsure, "/w/api") is None, unsure
    # absolute paths need no folder; no cwd, nothing guessed
    assert refused_paths("touch: cannot touch '/w/web/a': Read-only file system",
                         cwd="/w/api", command="cd $X && touch /w/web/a") == [
        ("/w/web/a", "Read-only file system")]  # fmt: skip
    assert start_folder("cd x && ls", None) is None


def test_the_hook_reports_a_refusal_after_a_cd_with_the_folder_it_went_to(tmp_path):
    """The hook, run as Claude Code runs it, on a real PostToolUseFailure payload's shape."""
    root = write_workspace(tmp_path / "ws", agents="sandbox = true")
    ws = load_workspace(str(root))
    install_hooks(ws.domains["backend"])
    backend = str(root / "backend")

    def refusal(command: str) -> dict:
        payload = {
            "session_id": "f04d9f91-70f3-498b-970c-61183871d2f9",
            "transcript_path": str(tmp_path / "t.jsonl"),
            "cwd": backend,
            "permission_mode": "default",
            "hook_event_name": "PostToolUseFailure",
            "tool_name": "Bash",
            "tool_input": {"command": command, "description": "Run the requested command"},
            "tool_use_id": "toolu_fake2696520002",
            "error": "Exit code 1\n/bin/bash: line 1: src/x.ts: Read-only file system",
            "is_interrupt": False,
            "duration_ms": 51,
        }
        env = cli_env(COMM_NODE_WORKSPACE=str(root), COMM_NODE_DOMAIN="backend")
        res = run_cli("hook", cwd=backend, input=json.dumps(payload), env=env)
        assert res.returncode == 0, res.stderr
        lines = (root / ".comm-node" / "events.jsonl").read_text().splitlines()
        found = [
            e for line in lines if (e := json.loads(line))["type"] == "boundary.sandbox_refused"
        ]
        return found[-1]

    event = refusal("cd ../frontend && echo x > src/x.ts")
    assert event["agent"] == "backend" and event["data"]["domain"] == "backend"
    assert event["data"]["path"] == str(root / "frontend" / "src" / "x.ts")
    event = refusal("echo go; cd ../frontend && echo x > src/x.ts")
    assert event["data"]["path"] == "src/x.ts"
    assert "src/x.ts (relative to a folder it changed to)" in event["msg"]


def test_limits_wrap_the_command_in_a_scope_or_below_nice(tmp_path):
    root = write_workspace(
        tmp_path / "ws",
        agents='memory_max = "2G"\ncpu_quota = "50%"',
        domain_extra={"docs": 'cpu_quota = "25%"\nmemory_max = ""'},
    )
    ws = load_workspace(str(root))
    cmd, note = limited("claude --model x", ws.domains["backend"], systemd=True)
    assert note is None
    assert cmd.startswith("systemd-run --user --scope")
    assert "-p MemoryMax=2G -p CPUQuota=50% -- sh -c 'claude --model x'" in cmd
    cmd, note = limited("claude", ws.domains["backend"], systemd=False)
    assert cmd == "nice -n 10 sh -c claude"
    assert note and "memory_max 2G not applied" in note
    cmd, note = limited("claude", ws.domains["docs"], systemd=False)
    assert cmd == "nice -n 10 sh -c claude" and note and "lower priority" in note
    plain = load_workspace(str(write_workspace(tmp_path / "plain")))
    assert limited("claude", plain.domains["docs"], systemd=False) == ("claude", None)


def test_a_niced_command_really_runs_at_the_lower_priority(tmp_path):
    root = write_workspace(tmp_path / "ws", agents='cpu_quota = "50%"')
    ws = load_workspace(str(root))
    cmd, _note = limited("cat /proc/self/stat", ws.domains["docs"], systemd=False)
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout
    nice = int(out[out.rfind(")") + 2 :].split()[16])  # field 19 of proc(5)
    assert nice == 10


def test_the_engine_samples_an_agents_process_tree_and_the_world_shows_it(tmp_path, engine_for):
    from comm_node_tui.engine.clock import ManualClock
    from comm_node_tui.engine.resources import ResourceMonitor
    from tests.waiting import wait_for

    root = write_workspace(tmp_path / "ws")
    clock = ManualClock(time=1_800_000_000.0)
    eng = engine_for(root, clock=clock)
    # a pane's process whose child burns CPU and holds ~40 MB: the tree is summed
    # in its own process group, so that the busy child is killed with it (killed after its
    # shell, it would be reparented and spin on after the test)
    tree = subprocess.Popen(
        ["sh", "-c", "python3 -c 'b = bytearray(40 << 20)\nwhile True: b[0] = 1' & wait"],
        start_new_session=True,
    )
    try:
        eng.panes["backend"] = {"pane": "%1", "pid": tree.pid, "dead": False}
        monitor = ResourceMonitor(eng.ctx, every_s=5.0)

        def sampled() -> tuple[float | None, int] | None:
            clock.advance(5.0)
            monitor.tick()
            got = monitor.latest.get("backend")
            return got if got and got[0] and got[1] > 40 << 20 else None

        cpu, rss = wait_for(sampled, timeout=30, every=0.2, what="a CPU and memory sample")
        assert cpu > 0 and rss > 40 << 20
        world = eng.snapshot()
        shown = {a.name: a for a in world.agents}
        assert shown["docs"].rss_bytes is None  # no pane: not measured
        eng.resources = monitor
        world = eng.snapshot()
        backend = next(a for a in world.agents if a.name == "backend")
        assert backend.rss_bytes == monitor.latest["backend"][1]
        assert "cpu_pct" not in backend.to_json()  # the JSON keys stay what they were
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        tree.wait()


def test_starting_an_agent_writes_its_sandbox_and_says_why_it_cannot_start(tmp_path, monkeypatch):
    from comm_node_tui.panes.manager import AgentPanes

    root = write_workspace(
        tmp_path / "ws",
        domains=("backend",),
        agents='sandbox = true\ncommand = "sleep 60"\ncpu_quota = "50%"',
    )
    ws = load_workspace(str(root))
    panes = AgentPanes(ws)
    bare = tmp_path / "bin"  # the system's programs but bwrap and socat
    bare.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in os.scandir(folder) if os.path.isdir(folder) else ():
            link = bare / entry.name
            if entry.name not in ("bwrap", "socat") and not link.exists():
                link.symlink_to(entry.path)
    monkeypatch.setenv("PATH", str(bare))
    panes._systemd = False  # no user systemd here either way: the nice fallback
    try:
        panes.up()
    finally:
        monkeypatch.undo()
    log = (root / ".comm-node" / "events.jsonl").read_text().splitlines()
    kinds = {json.loads(line)["type"]: json.loads(line) for line in log}
    assert kinds["sandbox.written"]["agent"] == "backend"
    assert kinds["sandbox.unavailable"]["msg"] == (
        "backend: sandbox cannot start: bwrap, socat not installed "
        "(apt install bubblewrap socat); the agent will not run"
    )
    assert "lower priority" in kinds["limits.unavailable"]["msg"]
    assert settings(ws, "backend")["sandbox"]["failIfUnavailable"] is True
    # the pane runs the command below nice
    pid = panes.tmux.panes()["backend"].pid
    stat = Path(f"/proc/{pid}/stat").read_text()
    assert int(stat[stat.rfind(")") + 2 :].split()[16]) == 10
    panes.down()


def test_the_wizard_proposes_the_sandbox_where_it_can_run_and_keeps_the_answer(tmp_path):
    from comm_node_tui.kickoff.wizard import WizardState

    state = WizardState(root=str(tmp_path), project="p")
    # bubblewrap and socat are installed here (.ci/run): proposed on
    assert missing_tools() == [] and state.sandbox_on()
    assert state.config_data()["agents"] == {"sandbox": True}
    state.sandbox = False
    assert "agents" not in state.config_data()  # off is the default: nothing written
    root = write_workspace(tmp_path / "ws", agents="sandbox = true\nstuck_after_s = 900")
    again = WizardState.load(str(root))
    assert again.sandbox is True
    assert again.config_data()["agents"] == {
        "budget_tokens": 0,
        "stuck_after_s": 900.0,
        "sandbox": True,
    }
    again.sandbox = False
    assert again.config_data()["agents"] == {"budget_tokens": 0, "stuck_after_s": 900.0}


def test_an_agent_of_its_own_folder_written_first_cannot_write_the_others_walls(tmp_path):
    """The folder of the agents' own --settings files is made (and denied) for every
    sandboxed agent: `lib` (a folder of its own) written before the agents sharing the
    workspace's folder had none denied, so its agent could rewrite their walls, or put a
    link there of its own. Where the shared events stand (cluster-events.json) moves into
    guarded/ before the agent starts, an older comm-node's file with it."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "comm-node.toml").write_text(
        '[project]\nname = "mono"\n[agents]\nsandbox = true\n'
        '[[domains]]\nname = "lib"\npath = "lib"\n'
        '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**"]\n'
        '[[domains]]\nname = "web"\npath = "."\nscope = ["web/**"]\n'
    )
    for folder in ("lib", "api", "web"):
        (root / folder).mkdir()
    state = root / ".comm-node"
    state.mkdir()
    (state / "cluster-events.json").write_text('{"ino": 1, "head": "", "offset": 0}')
    elsewhere = tmp_path / "lib-owned"
    elsewhere.mkdir()
    (state / "sandbox").symlink_to(elsewhere)  # a link put there before: never followed
    (state / "guarded").symlink_to(elsewhere)  # the same for the config cache's folder
    ws = load_workspace(str(root))
    assert not list(elsewhere.iterdir())  # the cache was not written through the link
    write_sandbox(ws, ws.domains["lib"])
    assert (state / "guarded").is_dir() and not (state / "guarded").is_symlink()
    assert str(state / "guarded") in settings(ws, "lib")["sandbox"]["filesystem"]["denyWrite"]
    deny = settings(ws, "lib")["sandbox"]["filesystem"]["denyWrite"]
    assert str(state / "sandbox") in deny
    moved = (state / "guarded" / "cluster-events.json").read_text()
    assert moved == '{"ino": 1, "head": "", "offset": 0}'
    assert not (state / "cluster-events.json").exists() and not list(elsewhere.iterdir())
    assert (state / "sandbox").is_dir() and not (state / "sandbox").is_symlink()
    write_sandbox(ws, ws.domains["api"])
    assert (state / "sandbox" / "api.json").exists() and not list(elsewhere.iterdir())


def test_a_refusal_names_only_a_path_and_dashs_wording_is_read():
    """`ping: socket: Operation not permitted` names no file (it was reported as
    <cwd>/socket); dash's redirect error (`sh: 1: cannot create X: ...`) names one."""
    assert refused_paths("ping: socket: Operation not permitted", "/ws", "ping x") == []
    assert refused_paths(
        "sh: 1: cannot create web/x.ts: Read-only file system", "/ws", "echo > web/x.ts"
    ) == [("/ws/web/x.ts", "Read-only file system")]
    assert refused_paths(
        "/bin/bash: line 1: web/x.ts: Read-only file system", "/ws", "echo > web/x.ts"
    ) == [("/ws/web/x.ts", "Read-only file system")]
