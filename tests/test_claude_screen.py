"""Claude Code's screen, read by its input box (fast checks on screens in 2.1.330's shape;
tests/test_real_claude_tmux.py reads the real CLI's screens)."""

from __future__ import annotations

import pytest

from comm_node_tui.adapters.claude.cli import ClaudeCode
from comm_node_tui.adapters.claude.screen import highlighted_choice, input_pending, read_screen
from comm_node_tui.adapters.screen import ScreenState, clean

RULE = "─" * 60
NB = "\u00a0"


def screen(above: list[str], box: list[str] | None, footer: str = "  ⏸ manual mode on") -> str:
    """A capture: scrollback lines, then the input box (None: no box), then the footer."""
    lines = [" ▐▛███▜▌   Claude Code v2.1.330", "", *above]
    if box is not None:
        lines += [RULE, f"❯{NB}{box[0]}", *(f"  {b}" for b in box[1:]), RULE, footer]
    return "\n".join(lines)


IDLE = screen(["❯ hello", "● ECHO: hello", "✻ Crunched for 0s · done 1:50 PM"], [""])
BUSY = screen(["❯ CN_SLOW 30", "✢ Harmonizing… (4s · ↓ 24 tokens)"], [""], "  ⏸ · esc to interrupt")
BUSY_LONG = screen(
    ["❯ CN_SLOW 150", "· Frosting… (2m 12s · ↓ 1.0k tokens)"], ["typed but not sent"]
)
BUSY_TIP = screen(
    ["✶ Pontificating… (2s · ↓ 17 tokens)", "  ⎿  Tip: Run /focus to hide the steps"], [""]
)
BACKGROUND = screen(["✻ Waiting for 1 background agent to finish"], [""])
QUEUED = screen(
    ["❯ queued while busy", "  ⎿  Queued · ctrl+x ctrl+s to send now", "* Flambéing… (2s)"],
    ["Press up to edit queued messages"],
)
PERMISSION = "\n".join(
    [
        "● I will use Bash.",
        RULE,
        " Bash command",
        " touch src/x.txt",
        " Do you want to proceed?",
        " ❯ 1. Yes",
        "   2. Yes, and don't ask again for: touch *",
        "   3. No",
        " Esc to cancel · Tab to amend",
    ]
)
TRUST = "\n".join(
    [
        RULE,
        " Accessing workspace:",
        " /home/dev/ws3",
        " Quick safety check: Is this a project you created or one you trust?",
        " ❯ No, exit",
        "   Yes, I trust this folder",
        " Enter to confirm · Esc to cancel",
    ]
)
MODEL_SWITCH = "\n".join(
    [
        "▔" * 60,
        "  Switch model?",
        "  ❯ 1. Yes, switch to Sonnet 5.5",
        "    2. No, go back",
        "  Enter to confirm · Esc to cancel",
    ]
)
# The scrollback quotes a dialog and a spinner: the box says idle.
QUOTING = screen(
    [
        "● The docs say: Do you want to proceed?",
        "  ❯ 1. Yes",
        "✻ Thinking… (12s · ↓ 3 tokens)",
        "● done",
        "✻ Worked for 3s · done 2:00 PM",
    ],
    [""],
)


@pytest.mark.parametrize(
    ("text", "state", "dialog"),
    [
        (IDLE, "idle", None),
        (BUSY, "busy", None),
        (BUSY_LONG, "busy", None),  # past a minute, text in the box, no "esc to interrupt"
        (BUSY_TIP, "busy", None),
        (BACKGROUND, "busy", None),
        (QUEUED, "busy", None),
        (PERMISSION, "waiting", "permission"),
        (TRUST, "waiting", "trust"),
        (MODEL_SWITCH, "waiting", "model_switch"),
        (QUOTING, "idle", None),
        ("$ ls\nfile.txt\n$ ", "unknown", None),
        ("", "unknown", None),
    ],
)
def test_read_screen(text, state, dialog):
    got = read_screen(text)
    assert (got.state, got.dialog) == (state, dialog)
    assert read_screen("\x1b[1m" + text.replace("❯", "\x1b[38;5;1m❯\x1b[0m")).state == state


def test_the_input_box_and_what_it_holds():
    assert read_screen(IDLE).input == ""
    assert read_screen(BUSY_LONG).input == "typed but not sent"
    assert read_screen(QUEUED).input == "" and read_screen(QUEUED).queued
    assert read_screen(PERMISSION).input is None  # a dialog: no box at all
    multi = screen([], ["line one", "line two", "  indented three"])
    assert read_screen(multi).input == "line one\nline two\n  indented three"


def test_pending_input_ignores_wrapping_and_notices_pastes():
    long = "word " * 40
    wrapped = screen([], [long[:50], long[50:120], long[120:]])
    assert input_pending(wrapped, long)
    assert not input_pending(IDLE, long)
    assert input_pending(screen([], ["[Pasted text #1 +30 lines]"]), "anything")
    assert not input_pending(PERMISSION, "1")


def test_highlighted_choice():
    assert highlighted_choice(PERMISSION) == "1. Yes"
    assert highlighted_choice(TRUST) == "No, exit"
    assert highlighted_choice(IDLE) is None


def test_clean_strips_ansi_osc_and_nbsp():
    raw = "\x1b]0;title\x07\x1b[1;31mred\x1b[0m\u00a0text\x1b(B  \r"
    assert clean(raw) == "red text"


def test_idle_is_debounced_after_busy_and_stillness_is_measured():
    s = ScreenState(ClaudeCode(), idle_s=2.0)
    assert s.update(BUSY, now=0) == "busy"
    assert s.update(IDLE, now=1) == "busy"  # idle for 0 s: not believed yet
    assert s.update(IDLE, now=2.5) == "busy"
    assert s.update(IDLE, now=3.1) == "idle"  # held for 2.1 s
    assert s.update(PERMISSION, now=4) == "waiting"
    # A spinner whose clock ticks is not progress: only new text is.
    s.update(BUSY, now=10)
    s.update(BUSY.replace("4s", "9s").replace("24", "99").replace("✢", "✶"), now=20)
    assert s.unchanged_for(now=20) == 10
    s.update(BUSY.replace("Harmonizing", "Reading"), now=21)
    assert s.unchanged_for(now=21) == 0
    # After a tool call Claude Code blinks the call's bullet while the next answer is
    # awaited: a blink is not progress either (the real demo's stall was never "stuck").
    tool = screen(["❯ CN_BASH ls", "● Bash(ls)", "  ⎿  a.txt"], [""], "  ⏸ · esc to interrupt")
    s.update(tool, now=22)
    s.update(tool.replace("● Bash", "  Bash"), now=23)
    s.update(tool, now=24)
    assert s.unchanged_for(now=24) == 2
    assert s.update("", dead=True, now=30) == "dead"


def test_the_screen_is_believed_at_once_after_comm_node_acted():
    from comm_node_tui.engine.agent_state import shown_state

    now = 1000.0
    hook = {"state": "busy"}
    pane = {"screen_state": "idle", "screen_since": now - 0.6}
    # the hooks said busy 5 s ago, the screen says idle for 0.6 s: not yet believed ...
    assert shown_state(hook, pane, 5.0, now) == "busy"
    # ... unless comm-node pressed Escape after the hooks' word and before the screen changed
    assert shown_state(hook, {**pane, "acted": now - 1.0}, 5.0, now) == "idle"
    # an action older than the hooks' last word changes nothing
    assert shown_state(hook, {**pane, "acted": now - 9.0}, 5.0, now) == "busy"
    # nor does one after which the screen has not changed yet
    assert shown_state(hook, {**pane, "acted": now - 0.2}, 5.0, now) == "busy"


def test_the_box_must_hold_exactly_our_text():
    from comm_node_tui.adapters.claude.screen import input_is

    mine = screen([], ["please review the contract"])
    merged = screen([], ["CN_BASH lock 'src/**'please review the contract"])
    assert input_is(mine, "please review the contract")
    assert not input_is(merged, "please review the contract")  # yet it ends with our text
    assert input_pending(merged, "please review the contract")
    assert input_is(screen([], ["[Pasted text #2 +30 lines]"]), "x\n" * 30)
