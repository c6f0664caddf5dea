"""The agent-CLI seam: everything Claude-Code-specific sits behind `AgentCli`, so a second CLI
is one more adapter; `[agents] cli` picks it, and an unknown value is one clear line."""

from __future__ import annotations

import ast
import json
import typing
from pathlib import Path

import pytest

from comm_node_tui.adapters.agent_cli import CLIS, AgentCli, Unsafe, agent_cli_for
from comm_node_tui.adapters.claude.cli import ClaudeCode
from comm_node_tui.errors import CommNodeError, ConfigError
from comm_node_tui.workspace.config import AgentsConfig
from comm_node_tui.workspace.discovery import load_workspace
from comm_node_tui.workspace.model import Workspace
from tests.conftest import run_cli, write_workspace
from tests.test_claude_screen import IDLE, PERMISSION, TRUST

PACKAGE = Path(__file__).resolve().parent.parent / "comm_node_tui"

# Modules that know one CLI: only its adapter may import them.
CLI_SPECIFIC = (
    "comm_node_tui.adapters.claude",  # the package and everything in it
    "comm_node_tui.claude_code",
    "comm_node_tui.usage.transcripts",
    "comm_node_tui.usage.paths",
)
# Who may import them anyway, and why.
ALLOWED = (
    "adapters/",  # the adapters themselves (agent_cli.py's registry names each one)
    "usage/",  # Claude Code's transcript reader, handed out by its adapter (AgentCli.usage)
    "cli.py",  # `--version` names the tested Claude Code; cli sits below the adapters
    "entry.py",  # the same `--version`, answered before argparse (the pre-commit guard's)
    "model/",  # the scripted Messages API is Claude Code's test double and prepares its home
    "demo/real",  # the demo on real Claude Code runs the pinned build against that double
)


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        # `from comm_node_tui.adapters import claude` imports comm_node_tui.adapters.claude
        return [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return []


def _specific(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in CLI_SPECIFIC)


def test_nothing_outside_the_adapters_imports_a_cli_specific_module():
    leaks = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [n for n in _imported(node) if _specific(n)]
            if names:
                leaks.append(f"{rel}:{node.lineno}: {names[0]}")
    assert not leaks, "ask agent_cli_for(ws) instead:\n" + "\n".join(leaks)


def test_the_scan_sees_every_spelling_of_such_an_import():
    """The check above would pass vacuously if it missed the forms the code uses."""
    forms = {
        "from comm_node_tui.adapters.claude.screen import read_screen": True,
        "from comm_node_tui.adapters.claude import screen": True,
        "from comm_node_tui.adapters import claude": True,
        "import comm_node_tui.usage.transcripts": True,
        "from comm_node_tui import claude_code": True,
        "from comm_node_tui.adapters.agent_cli import agent_cli_for": False,
        "from comm_node_tui.adapters.screen import clean": False,
        "from comm_node_tui.usage.prices import PriceTable": False,
    }
    for code, specific in forms.items():
        node = ast.parse(code).body[0]
        assert any(_specific(n) for n in _imported(node)) is specific, code


def test_claude_code_implements_every_member_of_the_interface():
    members = set(AgentCli.__annotations__) | {
        name for name in vars(AgentCli) if not name.startswith("_")
    }
    missing = sorted(m for m in members if not hasattr(ClaudeCode(), m))
    assert not missing


def test_the_config_and_the_registry_name_the_same_clis():
    assert set(typing.get_args(AgentsConfig.model_fields["cli"].annotation)) == set(CLIS)
    assert AgentsConfig().cli == "claude-code"


def test_claude_code_is_the_default(tmp_path):
    ws = load_workspace(write_workspace(tmp_path / "ws"))
    cli = agent_cli_for(ws)
    assert isinstance(cli, ClaudeCode) and cli.name == "claude-code"
    explicit = load_workspace(write_workspace(tmp_path / "ws2", agents='cli = "claude-code"'))
    assert agent_cli_for(explicit) is cli


def test_an_unknown_cli_in_comm_node_toml_is_one_line_naming_the_file_and_the_field(tmp_path):
    root = write_workspace(tmp_path / "ws", agents='cli = "codex"')
    with pytest.raises(ConfigError) as bad:
        load_workspace(root)
    line = str(bad.value)
    assert "\n" not in line
    assert line.startswith("comm-node.toml: agents.cli:") and "'codex'" in line
    # and so through the real CLI, for a command that starts agents
    res = run_cli("up", "--json", cwd=root)
    assert res.returncode != 0
    assert res.stderr.strip().count("\n") == 0
    assert "comm-node.toml: agents.cli:" in res.stderr and "codex" in res.stderr


def test_an_unknown_cli_that_skipped_validation_is_refused_by_the_lookup(tmp_path):
    """A workspace built from plain data (the agents' JSON cache, another version's) still
    cannot start the wrong program: the lookup refuses in one line."""
    root = write_workspace(tmp_path / "ws")
    data = json.loads(json.dumps(load_workspace(root).config))
    data["agents"]["cli"] = "gemini-cli"
    with pytest.raises(CommNodeError) as bad:
        agent_cli_for(Workspace(str(root), data))
    assert str(bad.value) == (
        "comm-node.toml: agents.cli: unknown agent CLI 'gemini-cli' (known: claude-code)"
    )


def test_claude_codes_answer_keys_and_prompt_text():
    cli = ClaudeCode()
    assert cli.answer_keys(PERMISSION, allow=True) == ("Enter",)
    assert cli.answer_keys(PERMISSION, allow=False) == ("Escape",)
    with pytest.raises(Unsafe) as refused:  # Enter on "No, exit" would make it quit
        cli.answer_keys(TRUST, allow=True)
    assert "'No, exit'" in str(refused.value)
    assert cli.prompt_text("! rm -rf build") == (" ! rm -rf build", True)
    assert cli.prompt_text("hello") == ("hello", False)
    with pytest.raises(Unsafe) as slash:
        cli.prompt_text("  /clear")
    assert slash.value.reason == "slash_command"
    assert cli.read_screen(IDLE).has_prompt and cli.read_screen(PERMISSION).dialog == "permission"
