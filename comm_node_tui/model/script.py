"""The script a scripted model plays: typed models, loaded from TOML (docs/model.md).

A script is an ordered list of rules; the first rule that matches a request answers it.
Everything is checked when the file loads (regexes compile, `{group}` placeholders name a
group of the rule's regex, a block is text or a tool call), so a typo is reported once, as
one line naming the file and the field, and never as a surprise in the middle of a rehearsal.
"""

from __future__ import annotations

import os
import re
import tomllib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from comm_node_tui.errors import CommNodeError

MAX_SCRIPT_BYTES = 4 * 1024 * 1024

# The error type Anthropic's API names for each status (what a client expects to see).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn", "refusal"]
Count = Annotated[int, Field(ge=0, le=10**9)]

# `{1}`, `{name}`; `{{` and `}}` are literal braces. Anything else with braces (JSON, code)
# is left alone, so only these exact shapes need escaping.
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(\w+)\}")


class ScriptError(CommNodeError):
    """A script that cannot be loaded; the message is one line naming the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Block(_Strict):
    """One block of a reply: `{text = "..."}` or `{tool = "Bash", input = {...}}`."""

    text: str | None = None
    tool: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    input: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Block:
        if (self.text is None) == (self.tool is None):
            raise ValueError("a block has either `text` or `tool` (with `input`), not both")
        if self.text is not None and self.input is not None:
            raise ValueError("`input` belongs to a `tool` block")
        return self


class Stream(_Strict):
    """How a reply is paced. Without it, every delta is sent at once."""

    seconds: Annotated[float, Field(ge=0, le=3600)] | None = None
    delay: Annotated[float, Field(ge=0, le=600)] | None = None
    chunks: Annotated[int, Field(ge=1, le=100_000)] | None = None
    wait: Annotated[float, Field(ge=0, le=3600)] = 0.0
    # A file the reply waits for (after `wait`, before the first delta): a test holds a turn
    # at a known point and lets it go by creating the file, instead of racing a timer.
    gate: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    gate_timeout: Annotated[float, Field(gt=0, le=3600)] = 120.0

    @model_validator(mode="after")
    def _seconds_or_delay(self) -> Stream:
        if self.seconds is not None and self.delay is not None:
            raise ValueError("give `seconds` (the whole reply) or `delay` (per chunk), not both")
        return self


class ApiError(_Strict):
    """Answer with an HTTP error in Anthropic's shape instead of a message."""

    status: Annotated[int, Field(ge=400, le=599)]
    type: str | None = None  # default: Anthropic's type for the status
    message: str = "scripted error"
    retry_after: Annotated[float, Field(ge=0, le=3600)] | None = None

    @property
    def error_type(self) -> str:
        return self.type or ERROR_TYPES.get(self.status, "api_error")


class Usage(_Strict):
    """Per-reply usage overrides; a field left out keeps its computed value."""

    input_tokens: Count | None = None
    output_tokens: Count | None = None
    cache_creation_input_tokens: Count | None = None
    cache_read_input_tokens: Count | None = None


class Response(_Strict):
    """What one request is answered with."""

    reply: list[Block] = Field(default_factory=list)
    stream: Stream | None = None
    error: ApiError | None = None
    usage: Usage | None = None
    stop_reason: StopReason | None = None

    @model_validator(mode="after")
    def _something(self) -> Response:
        if self.error is not None and self.reply:
            raise ValueError("a response has `reply` or `error`, not both")
        if self.error is None and not self.reply:
            raise ValueError("a response needs `reply` (a list of blocks) or `error`")
        return self


class Rule(Response):
    """A response and when to give it; `then` continues a turn after each tool result."""

    name: str | None = None
    on: Literal["prompt", "tool_result", "notification", "side"] = "prompt"
    match: str | None = None  # regex, searched in the turn's text (docs/model.md)
    prompt: str | None = None  # tool_result rules: regex on the prompt that began the turn
    tool: str | None = None  # tool_result rules: the tool whose result this is
    times: Annotated[int, Field(ge=1)] | None = None  # at most this many firings
    then: list[Response] = Field(default_factory=list)

    @field_validator("then", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        # `then = [[{text = "..."}]]`: a bare list of blocks is a step with only a reply.
        if isinstance(v, list):
            return [{"reply": step} if isinstance(step, list) else step for step in v]
        return v

    @field_validator("match", "prompt")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"bad regex {v!r}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _fields_fit_on(self) -> Rule:
        if self.on != "tool_result":
            for field in ("prompt", "tool"):
                if getattr(self, field) is not None:
                    raise ValueError(f'`{field}` applies only to rules with on = "tool_result"')
        return self

    def groups(self) -> tuple[set[str], int]:
        """The placeholder names this rule's regexes define, and its numbered groups."""
        names: set[str] = set()
        count = 0
        if self.match is not None:
            pattern = re.compile(self.match)
            names |= set(pattern.groupindex)
            count = pattern.groups
        if self.prompt is not None:
            names |= set(re.compile(self.prompt).groupindex)
        return names, count


class Script(_Strict):
    description: str = ""
    directives: bool = True  # the built-in CN_* directives answer what no rule matches
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _placeholders_resolve(self) -> Script:
        for i, rule in enumerate(self.rules):
            names, count = rule.groups()
            steps = [("reply", rule)] + [(f"then[{j}].reply", r) for j, r in enumerate(rule.then)]
            for where, response in steps:
                for k, block in enumerate(response.reply):
                    for field, text in _strings(block):
                        bad = _unknown_placeholder(text, names, count)
                        if bad:
                            raise ValueError(
                                f"rules[{i}].{where}[{k}].{field}: {{{bad}}} names no group of "
                                "the rule's regex (write {{ and }} for literal braces)"
                            )
        return self

    def rule_name(self, index: int) -> str:
        return self.rules[index].name or f"rules[{index}]"


def _strings(block: Block) -> list[tuple[str, str]]:
    """(field path, text) for every string a placeholder may sit in."""
    if block.text is not None:
        return [("text", block.text)]
    out: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            out.append((path, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for j, v in enumerate(value):
                walk(v, f"{path}[{j}]")

    walk(block.input or {}, "input")
    return out


def _unknown_placeholder(text: str, names: set[str], count: int) -> str | None:
    for m in PLACEHOLDER.finditer(text):
        key = m.group(1)
        if key is None:
            continue
        if key.isdigit() and int(key) <= count:
            continue
        if key in names:
            continue
        return key
    return None


def fill(value: Any, groups: dict[str, str] | None) -> Any:
    """`value` (a string, or a tool input of nested dicts and lists) with placeholders filled."""
    if groups is None:
        return value
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: _fill_one(m, groups), value)
    if isinstance(value, dict):
        return {k: fill(v, groups) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, groups) for v in value]
    return value


def _fill_one(m: re.Match[str], groups: dict[str, str]) -> str:
    whole = m.group(0)
    if whole == "{{":
        return "{"
    if whole == "}}":
        return "}"
    return groups.get(m.group(1), whole)


def groups_of(*matches: re.Match[str] | None) -> dict[str, str]:
    """Placeholder values: numbered groups of the first match, named groups of all of them
    (the first match wins a name both define). A group that did not take part is ""."""
    out: dict[str, str] = {}
    for i, m in enumerate(matches):
        if m is None:
            continue
        if i == 0:
            out["0"] = m.group(0)
            for n, v in enumerate(m.groups(), start=1):
                out[str(n)] = v or ""
        for name, v in m.groupdict().items():
            out.setdefault(name, v or "")
    return out


def _loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _one_line(source: str, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    msg = first["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if msg.startswith("rules["):  # a script-level check names its own field
        where, _, msg = msg.partition(": ")
    else:
        where = _loc(tuple(p for p in first["loc"] if not str(p).startswith("function-")))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{source}: {where}: {msg}{more}".replace("\n", " ")


def parse_script(text: str, source: str = "<script>") -> Script:
    """A script from TOML text; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScriptError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Script.model_validate(data)
    except ValidationError as exc:
        raise ScriptError(_one_line(source, exc)) from None


def load_script(path: str | os.PathLike[str]) -> Script:
    """A script from a TOML file, or ScriptError (one line naming the file and the field)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SCRIPT_BYTES + 1)
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read the script: {exc.strerror or exc}") from None
    if len(raw) > MAX_SCRIPT_BYTES:
        raise ScriptError(f"{path}: the script is over {MAX_SCRIPT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScriptError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return parse_script(text, path)
