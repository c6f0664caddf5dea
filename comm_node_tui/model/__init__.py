"""The scripted model: a local stand-in for the Anthropic Messages API that real Claude Code
talks to (ANTHROPIC_BASE_URL) and that plays a script (docs/model.md).

- `script`: the script format (TOML, typed), `load_script`, `parse_script`
- `turn`: what a request asks the model to do (prompt, tool results, side request)
- `directives`: the built-in `CN_*` directives that answer what no rule matches
- `player`: rule matching, `times`, multi-step turns
- `sse`: message, usage and server-sent event payloads
- `log`: the request log
- `server`: `ScriptedModel`, the HTTP server
- `claude_home`: a private, offline HOME for Claude Code pointed at the model

Never imported by `cli.py` at start-up: only `comm-node model ...` and tests load it.
"""

from __future__ import annotations

from comm_node_tui.model.claude_home import ClaudeHome, prepare_claude_home
from comm_node_tui.model.log import LogEntry
from comm_node_tui.model.script import Script, ScriptError, load_script, parse_script
from comm_node_tui.model.server import ScriptedModel

__all__ = [
    "ClaudeHome",
    "LogEntry",
    "Script",
    "ScriptError",
    "ScriptedModel",
    "load_script",
    "parse_script",
    "prepare_claude_home",
]
