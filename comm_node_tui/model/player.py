"""Plays a script: picks the rule that answers a turn and renders its reply.

State is small and guarded by one lock: how often each rule has fired (for `times`), and
which rule step issued each tool call (so the tool's result continues that rule's `then`).
A retried request (Claude Code retries 429 and 5xx with the same body) finds the same
continuation again, and a `times`-limited error rule lets the retry fall through to the next
rule: "fail once, then succeed" is two rules.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from comm_node_tui.model import directives
from comm_node_tui.model.script import (
    ApiError,
    Response,
    Rule,
    Script,
    Stream,
    Usage,
    fill,
    groups_of,
)
from comm_node_tui.model.turn import Turn

MAX_CONTINUATIONS = 100_000  # tool calls remembered; the oldest are forgotten first


@dataclass(frozen=True)
class Content:
    """A rendered reply block: text, or a tool call with its id."""

    text: str | None = None
    tool: str | None = None
    input: dict[str, Any] | None = None
    id: str | None = None

    def api(self) -> dict[str, Any]:
        if self.tool is None:
            return {"type": "text", "text": self.text or ""}
        return {"type": "tool_use", "id": self.id, "name": self.tool, "input": self.input or {}}


@dataclass(frozen=True)
class Reply:
    rule: str  # the rule's name, for the log
    content: tuple[Content, ...]
    stop_reason: str
    stream: Stream | None
    error: ApiError | None
    usage: Usage | None

    @property
    def tool_calls(self) -> list[str]:
        return [c.tool for c in self.content if c.tool is not None]


@dataclass(frozen=True)
class _Continuation:
    rule: Rule
    name: str
    then_index: int  # the tool results are answered with rule.then[then_index]
    groups: dict[str, str] | None


def new_tool_use_id() -> str:
    return "toolu_" + secrets.token_hex(12)


class Player:
    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self._lock = threading.Lock()
        self._fired = [0] * len(self.script.rules)
        self._pending: OrderedDict[str, _Continuation] = OrderedDict()

    def fired(self) -> dict[str, int]:
        """How often each rule has fired, by name."""
        with self._lock:
            return {self.script.rule_name(i): n for i, n in enumerate(self._fired)}

    def answer(self, turn: Turn) -> Reply:
        with self._lock:
            cont = self._continuation(turn)
            if cont is not None:
                return self._render(cont.rule, cont.name, cont.then_index + 1, cont.groups, turn)
            for i, rule in enumerate(self.script.rules):
                if rule.times is not None and self._fired[i] >= rule.times:
                    continue
                groups = _match(rule, turn)
                if groups is not None:
                    self._fired[i] += 1
                    return self._render(rule, self.script.rule_name(i), 0, groups, turn)
            rule = self._builtin(turn)
            return self._render(rule, rule.name or "builtin", 0, None, turn)

    def _builtin(self, turn: Turn) -> Rule:
        if turn.kind == "side":
            return directives.side_rule(turn)
        if turn.kind == "tool_result":
            return directives.result_rule(turn)
        if turn.kind == "notification":
            return directives.notification_rule(turn)
        if not self.script.directives:
            return directives.echo_rule(turn)
        return directives.directive_rule(turn)

    def _continuation(self, turn: Turn) -> _Continuation | None:
        for result in turn.results:
            cont = self._pending.get(result.tool_use_id)
            if cont is not None:
                return cont
        return None

    def _render(
        self, rule: Rule, name: str, step: int, groups: dict[str, str] | None, turn: Turn
    ) -> Reply:
        """Step `step` of `rule` (0: its own reply, n: then[n-1]) as a reply."""
        response: Response = rule if step == 0 else rule.then[step - 1]
        content = []
        for block in response.reply:
            if block.tool is None:
                content.append(Content(text=fill(block.text, groups)))
            else:
                tool = directives.tool_name(block.tool, turn.tools)
                tool_input = fill(block.input or {}, groups)
                content.append(Content(tool=tool, input=tool_input, id=new_tool_use_id()))
        if step < len(rule.then):  # the results of these tool calls continue with then[step]
            cont = _Continuation(rule, name, step, groups)
            for c in content:
                if c.id is not None:
                    self._pending[c.id] = cont
            while len(self._pending) > MAX_CONTINUATIONS:
                self._pending.popitem(last=False)
        default_stop = "tool_use" if any(c.tool for c in content) else "end_turn"
        return Reply(
            rule=name if step == 0 else f"{name}.then[{step - 1}]",
            content=tuple(content),
            stop_reason=response.stop_reason or default_stop,
            stream=response.stream,
            error=response.error,
            usage=response.usage,
        )


def _search(pattern: str | None, text: str) -> re.Match[str] | bool | None:
    """The match, or True when there is no pattern (matches anything), or None."""
    if pattern is None:
        return True
    return re.search(pattern, text)


def _match(rule: Rule, turn: Turn) -> dict[str, str] | None:
    """The placeholder values when `rule` answers `turn`, else None."""
    if rule.on != turn.kind:
        return None
    if turn.kind != "tool_result":
        m = _search(rule.match, turn.text)
        if m is None:
            return None
        return groups_of(m if isinstance(m, re.Match) else None)
    p = _search(rule.prompt, turn.prompt)
    if p is None:
        return None
    for result in turn.results:
        if rule.tool is not None and result.tool != rule.tool:
            continue
        m = _search(rule.match, result.text)
        if m is None:
            continue
        return groups_of(
            m if isinstance(m, re.Match) else None, p if isinstance(p, re.Match) else None
        )
    return None
