"""Claude Code behind the `AgentCli` interface (adapters/agent_cli.py).

The knowledge itself is in the modules beside this one (screen.py: its screen; settings.py:
its hooks in .claude/settings.json; trust.py: its folder trust), in usage/ (its transcripts)
and in comm_node_tui/claude_code.py (the pinned version). This class only says which of it
answers which question, plus the few rules that had no module: how the command line is
completed, which keys answer a prompt, what a leading `!` or `/` does, the first-run hints.
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

from comm_node_tui.adapters.agent_cli import FolderTrust, Unsafe, UsageSource
from comm_node_tui.adapters.claude import screen, settings
from comm_node_tui.adapters.screen import Screen
from comm_node_tui.claude_code import TESTED_VERSION

if TYPE_CHECKING:
    from comm_node_tui.workspace.model import Domain, Workspace

# First-run dialogs wait for a person, and a restart would only show them again: the
# kickoff reports them with what to do (it never answers them).
DIALOG_HINTS = {
    "trust": "Claude Code asks whether to trust its folder: `comm-node trust {name}` (it "
    "restarts the agent), or answer in its pane (`comm-node attach {name}`)",
    "api_key": "Claude Code asks whether to use the API key in its environment: answer in its "
    "pane (`comm-node attach {name}`)",
    "other": "Claude Code shows a {dialog} dialog: answer it in its pane "
    "(`comm-node attach {name}`)",
}
# Options with which a command already picks its conversation: comm-node adds no --resume.
SESSION_FLAGS = frozenset(
    {"--resume", "-r", "--continue", "-c", "--session-id", "--fork-session", "--from-pr"}
)
# `claude --version` of the native build answers in well under a second; the npm stub that
# starts Node can take a few on a cold, busy machine.
VERSION_TIMEOUT_S = 30


class ClaudeCode:
    name = "claude-code"
    label = "Claude Code"
    version = TESTED_VERSION
    program = "claude"
    instructions_file = "CLAUDE.md"
    # install_hooks backs the user's settings.json up beside it before changing it
    ignore_lines: tuple[str, ...] = (".claude/settings.json.bak-*",)
    # One Escape stops the turn; a second one soon after opens the rewind history.
    interrupt_keys: tuple[str, ...] = ("Escape",)

    def command(self, dom: Domain, resume: str | None = None) -> str:
        """The domain's command, with `--model` added when it runs `claude` and names none,
        and `--resume ID` when asked to resume. That one is added whatever the command's
        first word: a session is only kept when Claude Code's hooks reported it from this
        domain's command, so it runs Claude Code (often through a wrapper that passes its
        arguments on); a command that already chooses its session keeps its choice."""
        from comm_node_tui.coordination.sessions import valid_session_id

        cmd = dom.command
        words = shlex.split(cmd) if cmd else []
        if (
            dom.model
            and words
            and os.path.basename(words[0]) == "claude"
            and "--model" not in words
        ):
            cmd += f" --model {shlex.quote(dom.model)}"
        if resume is not None:
            if not valid_session_id(resume):
                raise Unsafe(f"{resume[:40]!r} is not a Claude Code session id", "session_id")
            if not SESSION_FLAGS & {w.split("=", 1)[0] for w in words}:
                cmd += f" --resume {shlex.quote(resume)}"
        return cmd

    def resume_problem(self, dom: Domain, session: dict) -> str | None:
        """Claude Code resumes a session from its transcript and fails without one: the file
        the hooks named, else `<config dir>/projects/<folder>/<id>.jsonl` in the config
        dirs this process or the domain's command use."""
        from comm_node_tui.usage.paths import claude_home, config_dirs_in_command
        from comm_node_tui.usage.paths import project_dir_name as folder

        sid = session["session_id"]
        path = session.get("transcript_path")
        if path:
            return None if os.path.isfile(path) else f"its transcript {path} is gone"
        homes = [*config_dirs_in_command(dom.command), claude_home()]
        for home in homes:
            if os.path.isfile(os.path.join(home, "projects", folder(dom.path), f"{sid}.jsonl")):
                return None
        return f"no transcript of it under {' or '.join(h + '/projects' for h in homes)}"

    def read_screen(self, capture: str) -> Screen:
        return screen.read_screen(capture)

    def progress_key(self, capture: str) -> str:
        return screen.progress_key(capture)

    def input_pending(self, capture: str, text: str) -> bool:
        return screen.input_pending(capture, text)

    def input_is(self, capture: str, text: str) -> bool:
        return screen.input_is(capture, text)

    def prompt_text(self, text: str) -> tuple[str, bool]:
        """A leading `!` runs the line as a shell command (no prompt, no hook): sent after a
        space, Claude Code takes it as prompt text and drops the space. No prefix protects a
        leading `/` (it strips blanks and zero-width characters and still runs the slash
        command), so such text is refused."""
        first = text.lstrip()[:1]
        if first == "/":
            raise Unsafe(
                "text starting with / runs as a Claude Code slash command; "
                "reword it, or pass --command to run the command",
                "slash_command",
            )
        if first == "!":
            return " " + text.lstrip(), True
        return text, False

    def answer_keys(self, capture: str, allow: bool) -> tuple[str, ...]:
        """Enter picks the highlighted choice, so it allows only while that is "1. Yes" (allow
        once); Escape denies."""
        if not allow:
            return ("Escape",)
        choice = screen.highlighted_choice(capture) or ""
        if not choice.startswith("1. Yes"):
            raise Unsafe(f"the dialog's highlighted choice is {choice!r}, not '1. Yes'", "choice")
        return ("Enter",)

    def dialog_hint(self, dialog: str, name: str) -> str:
        return DIALOG_HINTS.get(dialog, DIALOG_HINTS["other"]).format(name=name, dialog=dialog)

    def hooks_file(self, dom: Domain) -> str:
        return settings.settings_path(dom)

    def hooks_preview(self, dom: Domain) -> str:
        _now, merged, _kept = settings.merged_settings(settings.settings_path(dom))
        return settings.settings_text(merged)

    def install_hooks(self, dom: Domain) -> dict:
        return settings.install_hooks(dom)

    def uninstall_hooks(self, dom: Domain) -> dict:
        return settings.uninstall_hooks(dom)

    def write_sandbox(self, ws: Workspace, dom: Domain) -> dict:
        from comm_node_tui.adapters.claude import sandbox

        return sandbox.write_sandbox(ws, dom)

    def remove_sandbox(self, ws: Workspace, dom: Domain, leaving: tuple[str, ...] = ()) -> dict:
        from comm_node_tui.adapters.claude import sandbox

        return sandbox.remove_sandbox(ws, dom, leaving)

    def sandbox_unavailable(self, path: str | None = None) -> str | None:
        from comm_node_tui.adapters.claude import sandbox

        return sandbox.unavailable_reason(path)

    def sandbox_preview(self, ws: Workspace, dom: Domain) -> dict:
        from comm_node_tui.adapters.claude import sandbox

        return sandbox.preview(ws, dom)

    def sandbox_probe(self, path: str | None = None) -> str | None:
        from comm_node_tui.adapters.claude import sandbox

        return sandbox.probe(path)

    def program_version(self, executable: str, env: dict[str, str]) -> str | None:
        """`claude --version` prints `2.1.330 (Claude Code)` and exits: no session, no
        dialog, no auto-update (asked not to, in case a build would)."""
        import re
        import subprocess

        try:
            out = subprocess.run(
                [executable, "--version"],
                capture_output=True,
                text=True,
                timeout=VERSION_TIMEOUT_S,
                env={**env, "DISABLE_AUTOUPDATER": "1"},
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        m = re.search(r"\b(\d+\.\d+\.\d+)\b", out.stdout)
        return m.group(1) if out.returncode == 0 and m else None

    def usage(self, ws: Workspace) -> UsageSource:
        # On demand: only the engine and `comm-node usage` read transcripts.
        from comm_node_tui.usage.transcripts import UsageTracker

        return UsageTracker(ws)

    @property
    def trust(self) -> FolderTrust:
        from comm_node_tui.adapters.claude import trust

        return trust  # the module's functions are the interface's methods
