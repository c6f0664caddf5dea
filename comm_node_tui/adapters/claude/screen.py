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

from comm_node_tui.adapters.screen import NBSP, Screen, strip_ansi

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
BULLETS = re.compile(r"[●○]")  # a tool call's bullet, which blinks while its answer is awaited
QUEUED = re.compile(r"⎿\s+Queued\b|Press up to edit queued messages")


def read_screen(screen: str) -> Screen:
    """Read one capture of a Claude Code pane."""
    lines = strip_ansi(screen).split("\n")
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
    lines = strip_ansi(screen).split("\n")[-30:]
    picked = [ln.strip()[1:].strip() for ln in lines if CHOICE.match(ln)]
    return picked[-1] if picked else None


def _visible(text: str) -> str:
    import unicodedata

    return "".join(c for c in "".join(text.split()) if unicodedata.category(c) != "Cf")


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


def progress_key(screen: str) -> str:
    """The capture with digits, spinner glyphs and tool bullets masked: a spinner turns and
    its clock ticks every second even when Claude Code is hung, and while it waits for the
    next answer after a tool call it blinks that call's `●` (seen by the real demo: the
    blink alone kept a stalled agent from ever being "stuck"), so only other changes are
    progress."""
    return GLYPHS.sub("*", DIGITS.sub("#", BULLETS.sub(" ", screen)))
