"""What Claude Code's screen says about its state: the fallback when hooks are absent.

Every pattern that depends on Claude Code's screen lives here (they change between versions;
tests feed real-looking screens). Input is a pane capture; ANSI is stripped and non-breaking
spaces normalised first.
"""

from __future__ import annotations

import re
import time

ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, hyperlinks
    r"|\x1b[()*+][0-9A-Za-z]"  # charset designation, e.g. ESC ( B
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
)

BUSY = [
    re.compile(r"\besc to interrupt\b", re.I),
    re.compile(r"\bctrl\+c to interrupt\b", re.I),
    # the spinner line: "✻ Thinking… (12s · ↓ 340 tokens)"
    re.compile(r"^\s*[✻✳✢✶✽·*⏺]\s+\S+…\s*\(\d+s\b", re.M),
]
WAITING = [
    re.compile(r"Do you want to (proceed|make this edit|create|allow)", re.I),
    re.compile(r"Yes, allow once", re.I),
    re.compile(r"No, and tell Claude what to do differently", re.I),
    re.compile(r"Yes, and don't ask again", re.I),
]
PROMPT = re.compile(r"^\s*[│|]?\s*❯(\s|$)", re.M)
PASTED = re.compile(r"\[Pasted text #\d+")


def clean(text: str) -> str:
    """ANSI stripped, non-breaking spaces as spaces, trailing blanks trimmed."""
    text = ANSI.sub("", text).replace("\u00a0", " ").replace("\r", "")
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")


def classify(screen: str) -> str:
    """busy | waiting | idle | unknown, from one capture (already cleaned or not)."""
    text = clean(screen)
    tail = "\n".join(text.split("\n")[-40:])
    if any(p.search(tail) for p in WAITING):
        return "waiting"
    if any(p.search(tail) for p in BUSY):
        return "busy"
    if PROMPT.search(tail):
        return "idle"
    return "unknown"


def prompt_line(screen: str) -> str | None:
    """The text after the last `❯` prompt, or None when there is no prompt."""
    lines = [ln for ln in clean(screen).split("\n") if PROMPT.match(ln)]
    if not lines:
        return None
    # The input box draws a right border: it is not part of the input.
    return lines[-1].split("❯", 1)[1].strip().rstrip("│|").strip()


def input_pending(screen: str, text: str) -> bool:
    """True while typed text still sits in the input box (it was not submitted)."""
    line = prompt_line(screen)
    if line is None:
        return False
    if PASTED.search(line):
        return True
    last = [ln for ln in text.strip().split("\n") if ln.strip()]
    tail = last[-1].strip()[-20:] if last else ""
    return bool(tail) and line.endswith(tail)


class ScreenState:
    """Debounced screen state: idle is only believed after it held for `idle_s`."""

    def __init__(self, idle_s: float = 2.0) -> None:
        self.idle_s = idle_s
        self.state = "unknown"
        self._idle_since: float | None = None

    def update(self, screen: str, dead: bool = False, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        if dead:
            self.state, self._idle_since = "dead", None
            return self.state
        seen = classify(screen)
        if seen == "idle":
            if self._idle_since is None:
                self._idle_since = now
            if now - self._idle_since >= self.idle_s or self.state in ("unknown", "idle"):
                self.state = "idle"
        else:
            self._idle_since = None
            self.state = seen
        return self.state
