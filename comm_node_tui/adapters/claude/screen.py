"""What Claude Code's screen says about its state, judged by its input box.

Every pattern that depends on Claude Code's screen lives here (they change between versions;
tests run the real CLI, see tests/test_real_claude_tmux.py). Observed on 2.1.330:

- The input box is the region between the last two horizontal rules (`────`) above the
  footer; its first line starts with `❯` and a NO-BREAK SPACE. `❯` followed by an ordinary
  space starts other things: echoed prompts in the scrollback, queued input, and the
  highlighted choice of a dialog. So the box is found by that NBSP, never by `❯` alone, and
  text in the scrollback (an agent quoting "Do you want to proceed?") never decides a state.
- While a dialog is open (permission, trust, API key, model switch, rewind) there is no input
  box: the dialog takes its place, with a numbered or highlighted choice and "Enter to
  confirm" / "Esc to cancel". Enter typed into it picks the highlighted choice.
- Busy: a spinner line just above the box, "✻ Frosting… (12s · ↓ 340 tokens)", past a minute
  "(2m 12s · …)", or "Waiting for N background agent(s)"; the footer's "esc to interrupt"
  (gone while the box holds text). A finished turn leaves "✻ Crunched for 0s · done 1:50 PM".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, hyperlinks
    r"|\x1b[()*+][0-9A-Za-z]"  # charset designation, e.g. ESC ( B
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
)
NBSP = "\u00a0"
BOX_PROMPT = "❯" + NBSP
RULE = re.compile(r"^\s*[─━]{8,}\s*$")
# The spinner: a glyph, a word with an ellipsis, then the elapsed time.
SPINNER = re.compile(r"^\s*[✻✳✢✶✽·*⏺]\s+\S[^\n]*…\s*\((?:\d+h\s*)?(?:\d+m\s*)?\d+s\b")
BACKGROUND = re.compile(r"^\s*[✻✳✢✶✽·*]\s+Waiting for \d+ background (agent|task)")
ESC_TO_INTERRUPT = re.compile(r"\besc to interrupt\b", re.I)
# Dialog marks: only looked for where the input box would be (below the last rule that
# opens the dialog), never in the scrollback.
CHOICE = re.compile(r"^\s*❯ (\d+\.\s|Yes\b|No\b)")
CONFIRM = re.compile(r"Enter to confirm|Esc to cancel|Tab to amend", re.I)
DIALOG_KINDS = [
    ("trust", re.compile(r"Is this a project you created or one you trust|trust this fold", re.I)),
    ("api_key", re.compile(r"Do you want to use this API key", re.I)),
    ("model_switch", re.compile(r"Switch model\?", re.I)),
    ("rewind", re.compile(r"\bRewind\b|Restore the code", re.I)),
    (
        "permission",
        re.compile(
            r"Do you want to (proceed|make this edit|create|allow|run)|requires approval", re.I
        ),
    ),
]
PASTED = re.compile(r"\[Pasted text #\d+")
PASTED_ONLY = re.compile(r"^\[Pasted text #\d+(?: \+\d+ lines)?\]$")
DIGITS = re.compile(r"\d+")
GLYPHS = re.compile(r"[✻✳✢✶✽·*⏺]")
QUEUED = re.compile(r"⎿\s+Queued\b|Press up to edit queued messages")


@dataclass(frozen=True)
class Screen:
    """One capture, read: the state, the dialog if one is open, the text in the input box."""

    state: str  # busy | idle | waiting | unknown
    dialog: str | None = None  # permission | trust | api_key | model_switch | rewind | choice
    input: str | None = None  # the input box's text ("" when empty); None: no box shown
    queued: bool = False  # input typed while busy waits in Claude Code's queue

    @property
    def has_prompt(self) -> bool:
        return self.input is not None


def clean(text: str) -> str:
    """ANSI stripped, non-breaking spaces as spaces, trailing blanks trimmed."""
    return _strip(text).replace(NBSP, " ")


def _strip(text: str) -> str:
    """ANSI stripped and trailing blanks trimmed, NBSP kept (it marks the input box)."""
    text = ANSI.sub("", text).replace("\r", "")
    lines = [line.rstrip(" \t") for line in text.split("\n")]
    return "\n".join(lines).rstrip("\n")


def read_screen(screen: str) -> Screen:
    """Read one capture of a Claude Code pane."""
    lines = _strip(screen).split("\n")
    rules = [i for i, line in enumerate(lines) if RULE.match(line)]
    box = _input_box(lines, rules)
    if box is not None:
        top, bottom = box
        text = _box_text(lines[top + 1 : bottom])
        above = [ln for ln in lines[max(0, top - 8) : top] if ln.strip()]
        # The status line is the nearest line above the box that starts in column 0 (tips
        # and "Queued" notes under it are indented); a spinner further up is history.
        status = next((ln for ln in reversed(above) if not ln[:1].isspace()), "")
        footer = "\n".join(lines[bottom + 1 : bottom + 4])
        busy = bool(SPINNER.match(status) or BACKGROUND.match(status)) or bool(
            ESC_TO_INTERRUPT.search(footer)
        )
        queued = any(QUEUED.search(ln) for ln in above) or bool(QUEUED.search(text))
        if QUEUED.search(text):
            text = ""  # the box's grey hint while input waits in the queue, not input
        return Screen("busy" if busy else "idle", input=text, queued=queued)
    # No input box: a dialog took its place, or this is not (yet) Claude Code's screen.
    start = rules[-1] + 1 if rules else max(0, len(lines) - 30)
    tail = lines[start:] if len(lines) - start >= 3 else lines[-30:]
    tail_text = "\n".join(tail)
    choice = any(CHOICE.match(ln) for ln in tail)
    if choice or CONFIRM.search(tail_text):
        for kind, pattern in DIALOG_KINDS:
            if pattern.search(tail_text):
                return Screen("waiting", dialog=kind)
        return Screen("waiting", dialog="choice")
    # A permission dialog taller than the pane may have scrolled its own rule away.
    bottom_text = "\n".join(lines[-30:])
    if CONFIRM.search(bottom_text) and any(CHOICE.match(ln) for ln in lines[-30:]):
        return Screen("waiting", dialog="choice")
    return Screen("unknown")


def _input_box(lines: list[str], rules: list[int]) -> tuple[int, int] | None:
    """(top rule, bottom rule) of the input box: the last pair of rules whose first line
    inside starts with `❯` + NBSP, near the bottom of the screen."""
    for k in range(len(rules) - 1, 0, -1):
        top, bottom = rules[k - 1], rules[k]
        if bottom - top < 2:
            continue
        first = lines[top + 1].lstrip(" │|")
        # Only the box at the bottom counts (a footer is at most a few lines).
        footer = [ln for ln in lines[bottom + 1 :] if ln.strip()]
        if (first.startswith(BOX_PROMPT) or first == "❯") and len(footer) <= 8:
            return top, bottom
        return None
    return None


def _box_text(inner: list[str]) -> str:
    first = inner[0].lstrip(" │|")[1:]  # after the `❯`
    rest = [ln.rstrip("│| ") for ln in inner[1:]]
    # Continuation lines are indented by two columns under the `❯`.
    rest = [ln[2:] if ln.startswith("  ") else ln for ln in rest]
    text = "\n".join([first.lstrip(NBSP).rstrip("│| "), *rest]).replace(NBSP, " ")
    return text.rstrip()


def input_is(screen: str, text: str) -> bool:
    """True when the input box holds exactly `text` (whitespace and invisible characters
    aside), or only Claude Code's placeholder for one paste: nothing anyone else typed."""
    box = read_screen(screen).input
    if box is None:
        return False
    if PASTED_ONLY.match(box.strip()):
        return True
    return _visible(box) == _visible(text)


def highlighted_choice(screen: str) -> str | None:
    """The dialog choice the cursor is on ("1. Yes"), or None when no dialog is open."""
    lines = _strip(screen).split("\n")[-30:]
    picked = [ln.strip()[1:].strip() for ln in lines if CHOICE.match(ln)]
    return picked[-1] if picked else None


def _visible(text: str) -> str:
    import unicodedata

    return "".join(c for c in "".join(text.split()) if unicodedata.category(c) != "Cf")


def classify(screen: str) -> str:
    """busy | waiting | idle | unknown, from one capture."""
    return read_screen(screen).state


def input_pending(screen: str, text: str) -> bool:
    """True while typed text still sits in the input box (it was not submitted)."""
    box = read_screen(screen).input
    if not box:
        return False
    if PASTED.search(box):
        return True
    # Whitespace is ignored (the box wraps long lines and indents continuation lines), and
    # so are invisible format characters (a terminal shows them as blanks or not at all).
    want = _visible(text)[-20:]
    have = _visible(box)
    return bool(want) and have.endswith(want)


class ScreenState:
    """Debounced screen state: idle is only believed after it held for `idle_s` (a busy
    agent's screen flickers through idle-looking frames between steps)."""

    def __init__(self, idle_s: float = 2.0) -> None:
        self.idle_s = idle_s
        self.state = "unknown"
        self.screen = Screen("unknown")
        self._idle_since: float | None = None
        self._text = ""
        self.changed_at: float | None = None  # when the capture last differed

    def update(self, screen: str, dead: bool = False, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        if dead:
            self.state, self._idle_since = "dead", None
            self.screen = Screen("unknown")
            return self.state
        # Digits and spinner glyphs are ignored: a spinner turns and its clock ticks every
        # second even when Claude Code is hung; progress is new text or a new state.
        fingerprint = GLYPHS.sub("*", DIGITS.sub("#", screen))
        if fingerprint != self._text or self.changed_at is None:
            self._text = fingerprint
            self.changed_at = now
        seen = read_screen(screen)
        self.screen = seen
        if seen.state == "idle":
            if self._idle_since is None:
                self._idle_since = now
            # From a dialog, idle is believed at once: a dialog does not flicker (seen in the
            # real soak: "waiting" lingered while idle was being confirmed).
            if now - self._idle_since >= self.idle_s or self.state in (
                "unknown",
                "idle",
                "waiting",
            ):
                self.state = "idle"
        else:
            self._idle_since = None
            self.state = seen.state
        return self.state

    def unchanged_for(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return 0.0 if self.changed_at is None else now - self.changed_at
