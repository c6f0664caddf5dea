"""Text from agents, made safe to show: never markup, never control characters, bounded."""

from __future__ import annotations

import re

from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.")


def plain(value: object, limit: int = 200) -> str:
    """One line of text: ANSI and control characters shown as visible marks, cut at limit."""
    s = "" if value is None else str(value)
    s = _ANSI.sub("␛", s)
    s = s.replace("\t", " ").replace("\r", " ").replace("\n", " ⏎ ")
    s = _CONTROL.sub("�", s)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def safe(value: object, limit: int = 200, style: str = "") -> Text:
    """A Rich Text that shows the string as it is (a `[bold]` stays literal)."""
    return Text(plain(value, limit), style=style, no_wrap=True, overflow="ellipsis")


def block(value: object, max_lines: int = 400, width: int = 400) -> Text:
    """Several lines (a pane screen, a message body), each cleaned and cut."""
    lines = ("" if value is None else str(value)).split("\n")[-max_lines:]
    out = Text(no_wrap=True, overflow="crop")
    for i, line in enumerate(lines):
        if i:
            out.append("\n")
        out.append(plain(line.replace("⏎", ""), width))
    return out
