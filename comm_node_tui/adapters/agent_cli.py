"""The agent-CLI seam: what comm-node needs from the program that runs in an agent's pane.

Everything specific to one CLI (its screen marks, keys, hook settings, transcripts, folder
trust, first-run dialogs, the file it reads its role from) sits behind `AgentCli`; panes/,
kickoff/, the hook install commands and `comm-node usage` ask `agent_cli_for(ws)` and never
import a CLI's own modules (tests/test_agent_cli.py checks it). Claude Code is the one CLI
today (adapters/claude/); another is one more package and one more entry in `CLIS`.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Protocol

from comm_node_tui.errors import CommNodeError
from comm_node_tui.workspace.settings import DEFAULTS

if TYPE_CHECKING:
    from comm_node_tui.adapters.screen import Screen
    from comm_node_tui.workspace.model import Domain, Workspace

# the CLI a workspace runs unless [agents] cli names another (`comm-node doctor` checks it
# without a workspace); the default itself lives with the others in workspace/settings.py
DEFAULT = DEFAULTS.agents.cli


class Unsafe(CommNodeError):
    """What comm-node was asked to type or press would do something else than meant; the
    message says why in one line, `reason` in one word (it goes into the event)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class UsageSource(Protocol):
    """Token use read from the CLI's own records (transcripts), polled by the engine."""

    def poll(self, extra: dict[str, str] | None = None) -> int:
        """Read what is new; `extra`: {transcript path a hook reported: domain}."""
        ...

    def summary(self, now: float | None = None) -> dict:
        """Totals per domain and for the workspace (docs/usage.md has the shape)."""
        ...


class FolderTrust(Protocol):
    """Where a CLI records that a person trusts a folder (`comm-node trust`)."""

    def config_file(self, env: Mapping[str, str] | None = None) -> str: ...
    def git_root(self, folder: str) -> str | None: ...
    def with_git_roots(self, folders: list[str]) -> list[str]: ...
    def untrusted(self, folders: list[str], path: str) -> list[str]: ...
    def record_trust(self, folders: list[str], path: str) -> dict: ...


class AgentCli(Protocol):
    """One agent CLI, as comm-node drives it in a tmux pane."""

    name: str  # the value of `[agents] cli` in comm-node.toml
    label: str  # how sentences shown to people name it ("Claude Code")
    version: str  # the version comm-node is tested with
    program: str  # the executable its default command runs (`comm-node doctor` checks it)
    instructions_file: str  # the file in a domain's folder it reads its role from
    ignore_lines: tuple[str, ...]  # .gitignore lines for files its set-up leaves behind
    interrupt_keys: tuple[str, ...]  # tmux keys that stop its turn

    def command(self, dom: Domain, resume: str | None = None) -> str:
        """The shell command that starts it for `dom` (the domain's command, completed);
        with `resume`, a session id (checked: coordination/sessions.py), the command that
        continues that conversation instead of starting a new one."""
        ...

    def resume_problem(self, dom: Domain, session: dict) -> str | None:
        """Why `session` (a record of coordination/sessions.py) cannot be resumed in `dom`,
        in a few words (its transcript is gone); None when it can."""
        ...

    # ---- its screen ----------------------------------------------------------------------
    def read_screen(self, capture: str) -> Screen:
        """One pane capture, read: state, open dialog, input box text, queued input."""
        ...

    def progress_key(self, capture: str) -> str:
        """The capture with what moves while nothing happens (a spinner) masked."""
        ...

    def input_pending(self, capture: str, text: str) -> bool:
        """`text`, typed, still sits in the input box (not submitted yet)."""
        ...

    def input_is(self, capture: str, text: str) -> bool:
        """The input box holds `text` and nothing anyone else typed."""
        ...

    # ---- typing and answering ------------------------------------------------------------
    def prompt_text(self, text: str) -> tuple[str, bool]:
        """`text` as it must be typed so the CLI takes it as prompt text, and whether it was
        changed for that; Unsafe when no spelling of it is safe."""
        ...

    def answer_keys(self, capture: str, allow: bool) -> tuple[str, ...]:
        """The tmux keys that answer the open permission prompt (allow once, or deny);
        Unsafe when the screen does not show the expected choice."""
        ...

    def dialog_hint(self, dialog: str, name: str) -> str:
        """What the operator does about `dialog` (a first-run dialog) on agent `name`."""
        ...

    # ---- set-up, records -----------------------------------------------------------------
    def hooks_file(self, dom: Domain) -> str:
        """The settings file that holds comm-node's hooks for `dom`."""
        ...

    def hooks_preview(self, dom: Domain) -> str:
        """That file's text as `install_hooks` would write it (for `init`'s review)."""
        ...

    def install_hooks(self, dom: Domain) -> dict:
        """Merge comm-node's hooks (and the agent's allow rules) into the settings."""
        ...

    def uninstall_hooks(self, dom: Domain) -> dict:
        """Take comm-node's hooks out again, the user's kept."""
        ...

    def write_sandbox(self, ws: Workspace, dom: Domain) -> dict:
        """Before `dom`'s agent starts: its OS sandbox written from the config (or taken out
        when off), merged with the user's settings; {"enabled", "changed", "path",
        "launch_args": what its command takes to read walls of its own, ...}."""
        ...

    def remove_sandbox(self, ws: Workspace, dom: Domain, leaving: tuple[str, ...] = ()) -> dict:
        """Take out what `write_sandbox` wrote for `dom`, the user's settings kept and what
        an installed peer sharing them still needs (`leaving`: the domains uninstalled with
        it); {"domain", "path", "removed": whether anything was, "backup", "kept_for": the
        peers the shared part stays for}."""
        ...

    def sandbox_unavailable(self, path: str | None = None) -> str | None:
        """Why the sandbox cannot run here (one line), None when it can; `path`: a PATH."""
        ...

    def sandbox_preview(self, ws: Workspace, dom: Domain) -> dict:
        """What `write_sandbox` would change, writing nothing: {"path", "enabled" (now),
        "stale", "prompts" (why commands may still ask), "partial" (peers not walled),
        "walled_by" (sandbox = false, yet in the sandbox of these peers sharing its settings)}."""
        ...

    def sandbox_probe(self, path: str | None = None) -> str | None:
        """Like `sandbox_unavailable`, and the sandbox tried once (user namespaces)."""
        ...

    def program_version(self, executable: str, env: dict[str, str]) -> str | None:
        """The version `executable` (this CLI's program) reports, run with `env`; None when
        it cannot be run or does not say. Never starts an agent."""
        ...

    def usage(self, ws: Workspace) -> UsageSource:
        """The reader of its token use for the workspace's agents."""
        ...

    @property
    def trust(self) -> FolderTrust | None:
        """Its folder-trust records, or None when it asks nothing of the kind."""
        ...


def _claude_code() -> AgentCli:
    # Imported on demand: the implementations import this module (Screen, Unsafe), and the
    # interface must not depend on any one of them.
    from comm_node_tui.adapters.claude.cli import ClaudeCode

    return ClaudeCode()


# `[agents] cli` value -> the adapter; workspace/config.py's Literal lists the same names.
CLIS: dict[str, Callable[[], AgentCli]] = {"claude-code": _claude_code}


@cache
def _adapter(name: str) -> AgentCli:
    return CLIS[name]()


def agent_cli_for(ws: Workspace) -> AgentCli:
    """The agent CLI the workspace's agents run (`[agents] cli`, default claude-code)."""
    name = ws.settings.agents.cli
    if name not in CLIS:
        raise CommNodeError(
            f"comm-node.toml: agents.cli: unknown agent CLI {name!r} "
            f"(known: {', '.join(sorted(CLIS))})"
        )
    return _adapter(name)


def comm_node_argv() -> list[str]:
    """The absolute command that runs this comm-node, as argv: the installed script beside
    this Python when there is one (`python -m comm_node_tui` costs ~5 ms more a call, in
    runpy, on a path agents take on nearly every step)."""
    script = os.path.join(os.path.dirname(sys.executable), "comm-node")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "comm_node_tui"]


def comm_node_command() -> str:
    """comm_node_argv() for a shell line (an agent CLI's hooks and the agents' PATH use it:
    the CLI's environment may not have comm-node on PATH)."""
    return shlex.join(comm_node_argv())
