"""The built-in script: `CN_*` directives in a prompt make Claude Code do one thing.

It answers whatever no script rule matches (and everything when there is no script), so a
test can drive real Claude Code by typing, without writing a script. The first directive in
the prompt wins, wherever it stands: a word `CN_NAME` at the start of a line or after
whitespace; its arguments are the rest of that line. Without one, the reply echoes the prompt.
docs/model.md lists them.
"""

from __future__ import annotations

import json
import re
import shlex

from comm_node_tui.model.script import ApiError, Block, Response, Rule, Stream
from comm_node_tui.model.turn import Turn

NAMES = ("BASH", "WRITE", "EDIT", "READEDIT", "READ", "AGENT", "SLOW", "ERROR", "SAY", "TOOL")
DIRECTIVE = re.compile(r"(?<!\S)CN_(" + "|".join(NAMES) + r")(?!\S)[ \t]*(.*)$", re.MULTILINE)
RESULT_PREVIEW = 200
SIDE_REPLY = "Scripted session"  # a title, or a label: short and harmless either way
COMPACT_REPLY = (
    "<analysis>A scripted session.</analysis>\n"
    "<summary>1. Primary Request and Intent: a rehearsal with a scripted model.</summary>"
)


def _tool(name: str, turn: Turn, tool_input: dict[str, object]) -> list[Block]:
    tool = tool_name(name, turn.tools)
    return [Block(text=f"I will use {tool}."), Block(tool=tool, input=tool_input)]


def tool_name(name: str, offered: tuple[str, ...]) -> str:
    """The sub-agent tool is `Agent` in 2.1.330 and was `Task` before: use the one offered."""
    aliases = {"Task": "Agent", "Agent": "Task"}
    if offered and name not in offered and aliases.get(name) in offered:
        return aliases[name]
    return name


def _unescape(text: str) -> str:
    # A prompt is one line; \n and \t let a CN_WRITE hold a multi-line file.
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _words(args: str, n: int) -> list[str] | None:
    try:
        words = shlex.split(args)
    except ValueError:  # an unbalanced quote: plain words
        words = args.split()
    return words if len(words) == n else None


def _say(text: str, name: str) -> Rule:
    return Rule(name=name, reply=[Block(text=text)])


def echo_rule(turn: Turn) -> Rule:
    return _say(f"ECHO: {turn.prompt}", "builtin:echo")


def directive_rule(turn: Turn) -> Rule:
    """The built-in answer to a prompt: a directive's action, or an echo."""
    m = DIRECTIVE.search(turn.prompt)
    if m is None:
        return echo_rule(turn)
    name, args = m.group(1), m.group(2).strip()
    rule_name = f"builtin:CN_{name}"
    usage = {
        "BASH": "CN_BASH <command>",
        "WRITE": "CN_WRITE <path> <content, \\n for a new line>",
        "EDIT": "CN_EDIT <path> <old> <new>",
        "READEDIT": "CN_READEDIT <path> <old> <new>",
        "READ": "CN_READ <path>",
        "AGENT": "CN_AGENT <prompt>",
        "SLOW": "CN_SLOW <seconds>",
        "ERROR": "CN_ERROR <status 400-599>",
        "SAY": "CN_SAY <text>",
        "TOOL": "CN_TOOL <name> <JSON input>",
    }[name]
    bad = _say(f"usage: {usage}", rule_name)
    if name == "BASH":
        if not args:
            return bad
        return Rule(
            name=rule_name,
            reply=_tool(
                "Bash", turn, {"command": args, "description": "Run the requested command"}
            ),
        )
    if name == "WRITE":
        path, _, content = args.partition(" ")
        if not path:
            return bad
        return Rule(
            name=rule_name,
            reply=_tool("Write", turn, {"file_path": path, "content": _unescape(content)}),
        )
    if name in ("EDIT", "READEDIT"):
        words = _words(args, 3)
        if words is None:
            return bad
        path, old, new = words
        edit = _tool("Edit", turn, {"file_path": path, "old_string": old, "new_string": new})
        if name == "EDIT":
            return Rule(name=rule_name, reply=edit)
        # Claude Code refuses to edit a file it has not read in the session.
        return Rule(
            name=rule_name,
            reply=_tool("Read", turn, {"file_path": path}),
            then=[Response(reply=edit)],
        )
    if name == "READ":
        return Rule(name=rule_name, reply=_tool("Read", turn, {"file_path": args})) if args else bad
    if name == "AGENT":
        if not args:
            return bad
        return Rule(
            name=rule_name,
            reply=_tool(
                "Agent",
                turn,
                {
                    "description": "Scripted sub-agent",
                    "prompt": args,
                    "subagent_type": "general-purpose",
                },
            ),
        )
    if name == "SLOW":
        try:
            seconds = float(args.split()[0]) if args else -1.0
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= 3600:
            return bad
        return Rule(
            name=rule_name,
            reply=[Block(text=f"SLOW: this reply streamed over {seconds:g} seconds.")],
            stream=Stream(seconds=seconds),
        )
    if name == "ERROR":
        try:
            status = int(args.split()[0]) if args else 0
        except ValueError:
            status = 0
        if not 400 <= status <= 599:
            return bad
        err = ApiError(status=status, message=f"scripted error (CN_ERROR {status})")
        return Rule(name=rule_name, error=err)
    if name == "SAY":
        return _say(_unescape(args), rule_name) if args else bad
    # TOOL
    tool, _, raw = args.partition(" ")
    try:
        tool_input = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return bad
    if not tool or not isinstance(tool_input, dict):
        return bad
    return Rule(name=rule_name, reply=_tool(tool, turn, tool_input))


def result_rule(turn: Turn) -> Rule:
    """The built-in answer to tool results: say what came back."""
    parts = [("ERROR " if r.is_error else "") + r.text for r in turn.results]
    preview = "\n".join(parts)[:RESULT_PREVIEW]
    return _say(f"Tool result received: {preview}", "builtin:tool_result")


def notification_rule(turn: Turn) -> Rule:
    """The built-in answer to a background task's notification: say which one ended."""
    m = re.search(r"<summary>(.*?)</summary>", turn.text, re.DOTALL)
    what = m.group(1).strip() if m else turn.text[:RESULT_PREVIEW]
    return _say(f"Notification received: {what}", "builtin:notification")


def side_rule(turn: Turn) -> Rule:
    """The built-in answer to a side request: JSON when a schema is asked for (session
    titles), a well-formed summary for compaction, else a short line."""
    if turn.schema is not None:
        text = json.dumps(example_for(turn.schema), ensure_ascii=False)
        return _say(text, "builtin:side")
    if "<summary>" in turn.text:
        return _say(COMPACT_REPLY, "builtin:side")
    return _say(SIDE_REPLY, "builtin:side")


def example_for(schema: object, depth: int = 0) -> object:
    """The smallest value that fits a JSON schema (the common keywords; strings say who
    wrote them)."""
    if not isinstance(schema, dict) or depth > 20:
        return SIDE_REPLY
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example_for(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    props = schema.get("properties")
    if kind == "object" or (kind is None and isinstance(props, dict)):
        props = props if isinstance(props, dict) else {}
        required = schema.get("required")
        names = required if isinstance(required, list) else list(props)
        return {n: example_for(props.get(n, {"type": "string"}), depth + 1) for n in names}
    if kind == "array":
        n = schema.get("minItems", 0)
        n = n if isinstance(n, int) and 0 <= n <= 100 else 0
        return [example_for(schema.get("items", {}), depth + 1) for _ in range(n)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        return low if isinstance(low, int | float) else 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return SIDE_REPLY
