"""The request log: every request a scripted model answered, in memory and as JSON lines.

Tests compare it with what Claude Code recorded (its transcripts hold the same message ids,
request ids and usage), and a person rehearsing a workspace reads it to see which rule
answered what.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

PREVIEW = 500  # characters of a prompt or tool result kept in the log


def preview(text: str | None) -> str | None:
    if text is None or len(text) <= PREVIEW:
        return text
    return text[:PREVIEW] + "…"


@dataclass
class LogEntry:
    time: float  # when the request arrived (seconds since the epoch)
    method: str
    path: str
    status: int = 0
    request_id: str = ""
    kind: str = "other"  # prompt | tool_result | notification | side | count_tokens | other
    side: bool = False  # one of Claude Code's own errands (never in its transcripts)
    subagent: bool = False  # asked by a sub-agent
    session_id: str | None = None
    stream: bool | None = None
    model: str | None = None
    prompt: str | None = None  # the human's words (side, notification: the request's text)
    earlier: list[str] = field(default_factory=list)  # earlier prompts carried (the last few)
    tool: str | None = None  # tool_result turns: the tool(s) whose result came back
    tool_result: str | None = None  # tool_result turns: the result text (truncated)
    rule: str | None = None  # which rule answered
    message_id: str | None = None
    usage: dict[str, int] | None = None
    stop_reason: str | None = None
    tool_calls: list[str] = field(default_factory=list)  # tools the reply called
    text: str | None = None  # the reply's text (truncated)
    error: str | None = None  # the error sent, or what went wrong
    completed: bool = False  # the whole response reached the client
    seconds: float = 0.0  # how long answering took
    seq: int = 0  # arrival order (entries are kept in it: requests can finish out of order)
    # the context Claude Code added (system reminders, hook additionalContext), each cut to
    # PREVIEW characters (model/turn.py `reminders`)
    reminders: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """Thread safe; the file (optional) gets one JSON object per line, flushed per entry."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.Condition()
        self._entries: list[LogEntry] = []
        self.path = os.fspath(path) if path is not None else None
        self._fh = open(self.path, "a", encoding="utf-8") if self.path else None  # noqa: SIM115

    def add(self, entry: LogEntry) -> None:
        line = json.dumps(entry.to_json(), ensure_ascii=False) + "\n"
        with self._lock:
            # In arrival order, not completion order: a request answered quickly can finish
            # before an earlier one logs (seen under load), and tests read the log as the
            # sequence of what the client asked.
            at = len(self._entries)
            while at and self._entries[at - 1].seq > entry.seq:
                at -= 1
            self._entries.insert(at, entry)
            if self._fh is not None:
                self._fh.write(line)
                self._fh.flush()
            self._lock.notify_all()

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def wait(self, count: int, timeout: float) -> list[LogEntry]:
        """The entries once there are at least `count` (or as many as came in `timeout`)."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._entries) >= count, timeout)
            return list(self._entries)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
