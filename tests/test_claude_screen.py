"""Claude Code's screen marks, on screens shaped like the real ones (ANSI, NBSP, boxes)."""

from __future__ import annotations

import pytest

from comm_node_tui.adapters.claude_screen import (
    ScreenState,
    classify,
    clean,
    input_pending,
    prompt_line,
)

BOX = "╭" + "─" * 40 + "╮"
BOTTOM = "╰" + "─" * 40 + "╯"

IDLE = f"""⏺ I've updated the handler and the tests pass.

{BOX}
│ ❯\u00a0                                      │
{BOTTOM}
  ? for shortcuts"""

BUSY_SPINNER = """⏺ Reading src/api/users.ts

\x1b[38;5;174m✻\x1b[39m Thinking… (12s · ↓ 340 tokens · esc to interrupt)

╭────────────────────────────────────────╮
│ ❯                                      │
╰────────────────────────────────────────╯"""

BUSY_OLD = """✶ Compacting conversation… (8s · ctrl+c to interrupt)
> """

WAITING = """╭────────────────────────────────────────────────────────╮
│ Bash command                                            │
│   npm test                                              │
│ Do you want to proceed?                                 │
│ ❯ 1. Yes                                                │
│   2. Yes, and don't ask again for npm test commands     │
│   3. No, and tell Claude what to do differently (esc)   │
╰────────────────────────────────────────────────────────╯"""

EDIT = """Do you want to make this edit to users.ts?
❯ 1. Yes
  2. Yes, allow all edits during this session (shift+tab)
  3. No, and tell Claude what to do differently (esc)"""


@pytest.mark.parametrize(
    ("screen", "state"),
    [
        (IDLE, "idle"),
        (BUSY_SPINNER, "busy"),
        (BUSY_OLD, "busy"),
        (WAITING, "waiting"),  # has a ❯ too: waiting wins
        (EDIT, "waiting"),
        ("$ ls\nfile.txt\n$ ", "unknown"),
        ("", "unknown"),
    ],
)
def test_classify(screen, state):
    assert classify(screen) == state


def test_clean_strips_ansi_osc_and_nbsp():
    raw = "\x1b]0;title\x07\x1b[1;31mred\x1b[0m\u00a0text\x1b(B  \r"
    assert clean(raw) == "red text"


def test_prompt_and_pending_input():
    typed = IDLE.replace("❯\u00a0", "❯ please review the contract")
    assert prompt_line(typed).startswith("please review the contract")
    assert input_pending(typed, "please review the contract")
    assert not input_pending(IDLE, "please review the contract")
    pasted = IDLE.replace("❯\u00a0", "❯ [Pasted text #1 +12 lines]")
    assert input_pending(pasted, "anything")


def test_idle_is_debounced_after_busy():
    s = ScreenState(idle_s=2.0)
    assert s.update(BUSY_SPINNER, now=0) == "busy"
    assert s.update(IDLE, now=1) == "busy"  # idle for 0 s: not believed yet
    assert s.update(IDLE, now=2.5) == "busy"
    assert s.update(IDLE, now=3.1) == "idle"  # held for 2.1 s
    assert s.update(WAITING, now=4) == "waiting"
    assert s.update("", dead=True, now=5) == "dead"
