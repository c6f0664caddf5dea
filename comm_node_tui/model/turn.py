"""What a scripted model "sees" in one Messages API request: a prompt, tool results or a side
request.

Claude Code 2.1.330 does not send the human's words as a plain last message. The last role
"user" message that has text holds them, next to `<system-reminder>` blocks it adds; role
"system" entries (environment, hook context) may follow it; after a rejected tool, one user
message holds the tool_result, "[Request interrupted by user for tool use]" and the new
prompt. A background task's completion arrives as a user message holding only a
`<system-reminder>` with a `<task-notification>`: a notification turn.

Side requests are Claude Code's own errands, not the conversation: requests without `tools`
(session titles, labels) and the forks that reuse the conversation with one fixed prompt
(`/compact`, the away recap, the agent progress line). Claude Code writes none of them to its
transcripts, so they are told apart here and logged as side requests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

# Text Claude Code adds around the human's words: not part of what they typed.
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
_INTERRUPTED = re.compile(r"\[Request interrupted by user(?: for tool use)?\]")

# The fixed prompts of Claude Code 2.1.330's forks (requests that carry the conversation and
# its tools but are side errands; see the module docstring).
_FORK_PROMPTS = re.compile(
    r"CRITICAL: Respond with TEXT ONLY\. Do NOT call any tools\."  # /compact, auto-compact
    r"|\AThe user stepped away and is coming back\. Recap"  # away summary
    r"|\ADescribe (?:your|the agent's) most recent action in 3-5 words"  # agent progress
)
_SUBAGENT = re.compile(r"\bcc_is_subagent=true\b")

Kind = Literal["prompt", "tool_result", "notification", "side"]


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    tool: str | None  # the name of the tool that was called, from the assistant's tool_use
    text: str
    is_error: bool


@dataclass(frozen=True)
class Turn:
    kind: Kind
    prompt: str  # the human's words; in a tool-result turn, those that began the turn
    text: str  # what rules match: the prompt, the tool results' text, or the side request's
    results: tuple[ToolResult, ...] = ()
    tools: tuple[str, ...] = ()  # the tool names the request offers
    session_id: str | None = None
    subagent: bool = False  # a sub-agent's request (Claude Code's billing line says so)
    schema: dict[str, Any] | None = None  # the JSON schema the reply must follow, if any
    # the words of the person's earlier prompts the request carries (the conversation so
    # far, oldest first): a resumed session carries those of before its restart
    earlier: tuple[str, ...] = ()


def _blocks(content: Any) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def human_text(content: Any) -> str:
    """The words a person typed in one message's content, without Claude Code's additions."""
    parts = []
    for block in _blocks(content):
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            text = _INTERRUPTED.sub("", _REMINDER.sub("", block["text"])).strip()
            if text:
                parts.append(text)
    return "\n".join(parts)


def result_text(block: dict) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(
        b["text"]
        for b in _blocks(content)
        if b.get("type") == "text" and isinstance(b.get("text"), str)
    )


def session_id(body: dict) -> str | None:
    """The session id Claude Code puts in `metadata.user_id` (a JSON string)."""
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str):
        return None
    try:
        data = json.loads(user_id)
    except ValueError:
        return None
    sid = data.get("session_id") if isinstance(data, dict) else None
    return sid if isinstance(sid, str) else None


def reminder_text(content: Any) -> str:
    """The text of a message that holds only Claude Code's reminders, tags removed."""
    parts = []
    for block in _blocks(content):
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            text = re.sub(r"</?system-reminder>", "", block["text"]).strip()
            if text:
                parts.append(text)
    return "\n".join(parts)


def _is_subagent(body: dict) -> bool:
    system = body.get("system")
    first = system[0] if isinstance(system, list) and system else system
    if isinstance(first, dict):
        first = first.get("text")
    return isinstance(first, str) and bool(_SUBAGENT.search(first))


def output_schema(body: dict) -> dict[str, Any] | None:
    """The JSON schema of a structured-output request (output_config.format, or the
    deprecated output_format)."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        fmt = body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def _tool_names(body: dict) -> tuple[str, ...]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return ()
    return tuple(t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str))


def _called_tools(messages: list[dict]) -> dict[str, str]:
    """tool_use id -> tool name, over every assistant message."""
    out = {}
    for m in messages:
        if m.get("role") == "assistant":
            for b in _blocks(m.get("content")):
                if b.get("type") == "tool_use" and isinstance(b.get("id"), str):
                    out[b["id"]] = str(b.get("name"))
    return out


def read_turn(body: dict) -> Turn:
    """The turn a request asks the model to take (body: a parsed /v1/messages request)."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user"]
    common: dict[str, Any] = {
        "tools": _tool_names(body),
        "session_id": session_id(body),
        "subagent": _is_subagent(body),
        "schema": output_schema(body),
    }
    prompt = ""
    at = len(users)
    for at in range(len(users) - 1, -1, -1):
        prompt = human_text(users[at].get("content"))
        if prompt:
            break
    common["earlier"] = tuple(t for m in users[:at] if (t := human_text(m.get("content"))))
    last = users[-1].get("content") if users else None
    last_text = human_text(last)
    if not common["tools"] or _FORK_PROMPTS.search(last_text):
        return Turn("side", prompt=prompt, text=last_text or reminder_text(last), **common)
    if last_text:
        return Turn("prompt", prompt=prompt, text=prompt, **common)
    called = _called_tools(messages)
    results = tuple(
        ToolResult(
            tool_use_id=str(b.get("tool_use_id")),
            tool=called.get(str(b.get("tool_use_id"))),
            text=result_text(b),
            is_error=bool(b.get("is_error")),
        )
        for b in _blocks(last)
        if b.get("type") == "tool_result"
    )
    if results:
        text = "\n".join(r.text for r in results)
        return Turn("tool_result", prompt=prompt, text=text, results=results, **common)
    return Turn("notification", prompt=prompt, text=reminder_text(last), **common)


MAX_REMINDERS = 20  # per request: what a log entry keeps of Claude Code's added context


def reminders(body: dict) -> tuple[str, ...]:
    """The context Claude Code added to a request beside the person's words, oldest first:
    `<system-reminder>` blocks in user messages and role "system" entries (environment,
    CLAUDE.md, hook `additionalContext`), tags removed; at most MAX_REMINDERS (the first:
    a session's start context comes first and is what a hand-off is checked by)."""
    out: list[str] = []
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        for block in _blocks(m.get("content")):
            if block.get("type") != "text" or not isinstance(block.get("text"), str):
                continue
            if m.get("role") == "system":
                found = [block["text"]]
            else:
                found = _REMINDER.findall(block["text"])
            for text in found:
                text = re.sub(r"</?system-reminder>", "", text).strip()
                if text and text not in out:
                    out.append(text)
                if len(out) >= MAX_REMINDERS:
                    return tuple(out)
    return tuple(out)
