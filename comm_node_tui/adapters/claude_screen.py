"""TEMPORARY, for engine/ only: the old import path of Claude Code's screen reading.

engine/ is being rewritten in parallel and still imports `ScreenState` from here; it should
build `adapters.screen.ScreenState(agent_cli_for(ws), idle_s=...)` instead. Delete this file
when nothing imports it (tests/test_agent_cli.py names who still does).
"""

from __future__ import annotations

from comm_node_tui.adapters import screen
from comm_node_tui.adapters.claude.cli import ClaudeCode


class ScreenState(screen.ScreenState):
    """The debounce, reading Claude Code's screen (the signature engine/ calls)."""

    def __init__(self, idle_s: float = 2.0) -> None:
        super().__init__(ClaudeCode(), idle_s)
