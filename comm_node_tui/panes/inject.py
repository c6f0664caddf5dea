"""Type a message into an agent's pane and submit it, reliably, literally and never into a
dialog. The screen is read, and the text made safe, by the agent CLI (adapters/agent_cli.py).

Real Claude Code (2.1.330) makes typing dangerous in three ways, each observed:
- Enter pressed while a dialog is open picks its highlighted choice: into a permission
  dialog that is "1. Yes" (the tool runs, the text is lost); into the trust dialog "No, exit".
  So text is typed only when the screen shows the input box with the agent at rest, and
  Enter is pressed only after a fresh capture shows our text in the box and no dialog.
- A leading `!` runs the rest as a shell command (no permission prompt, no hook) and a
  leading `/` is a slash command (`/clear`, `/exit`). Unless the operator asks for a
  command explicitly, the CLI's `prompt_text` decides how such text is typed, or refuses it
  with one line (adapters/claude/cli.py: a `!` goes after a space; no prefix protects a `/`).
- Text typed while busy is queued, and a dialog can open at any moment while it works: a
  delivery waits for the agent to be at rest.
Text always goes as one bracketed paste from a uniquely named buffer: one event for the
application (a dialog that opens mid-way cannot take it key by key), never interpreted as
tmux key names or formats. Text the operator is typing in the box is never touched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from comm_node_tui.adapters.agent_cli import AgentCli, Unsafe
from comm_node_tui.adapters.screen import Screen
from comm_node_tui.adapters.tmux import Tmux
from comm_node_tui.errors import CommNodeError

ENTER_DELAY_S = 0.25  # Claude Code needs the paste processed before Enter (0.2-0.3 s seen)
REDRAW_S = 0.6  # it redraws about 0.33 s after Enter; wait longer before a retry
POLL_S = 0.1


class NotDelivered(CommNodeError):
    """The text was not typed (or not submitted): why, in one line; `reason` is a word."""

    def __init__(self, message: str, reason: str, typed: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.typed = typed
        self.receipt: str | None = None  # its receipt's id, once it has one


@dataclass
class Delivery:
    method: str
    attempts: int
    confirmed: bool
    waited_s: float
    protected: bool  # a leading space kept `!` or `/` from acting

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "attempts": self.attempts,
            "confirmed": self.confirmed,
            "waited_s": round(self.waited_s, 2),
            "protected": self.protected,
        }


def protect(cli: AgentCli, text: str) -> tuple[str, bool]:
    """Text the CLI cannot take as a shell or slash command; NotDelivered for text that
    cannot be made so."""
    try:
        return cli.prompt_text(text)
    except Unsafe as exc:
        raise NotDelivered(f"not delivered: {exc}", exc.reason) from None


def type_text(tmux: Tmux, pane_id: str, text: str) -> str:
    """Put `text` in the pane's input, unsubmitted, as one bracketed paste."""
    name = f"cn-{os.getpid()}-{os.urandom(6).hex()}"
    tmux.run_stdin(["load-buffer", "-b", name, "-"], text.encode("utf-8"))
    # -p: bracketed paste (the app sees one paste, newlines included); -r: keep LF as LF;
    # -d: delete the buffer afterwards.
    tmux.cmd("paste-buffer", "-p", "-r", "-d", "-b", name, "-t", pane_id)
    return "paste"


def _why_not(cli: AgentCli, screen: Screen) -> tuple[str, str] | None:
    """(reason, sentence) when text must not be typed now, else None."""
    if screen.state == "waiting":
        kind = screen.dialog or "choice"
        how = (
            "`comm-node approve` or `deny` answers it"
            if kind == "permission"
            else "it is for a person: answer it in the pane (`comm-node attach`)"
        )
        return "dialog", f"a {kind} dialog is open; {how}"
    if screen.state == "busy":
        return "busy", "the agent is busy (its prompt is not free)"
    if screen.input is None:
        return "no_prompt", f"no {cli.label} input box on screen"
    if screen.input.strip():
        return "occupied", "its input box holds text comm-node did not type (someone is typing)"
    return None


# A step of one delivery as it happens: ("waiting", reason) each time what stands in the way
# changes, ("typed", None) after the paste, ("submitted", None) when the box emptied after Enter.
OnStep = Callable[[str, "str | None"], None]


def _no_step(step: str, reason: str | None) -> None:
    pass


def wait_until_ready(
    cli: AgentCli, tmux: Tmux, pane_id: str, timeout_s: float, on_step: OnStep = _no_step
) -> tuple[Screen, float]:
    """The first screen at rest with an empty input box, within `timeout_s`; NotDelivered
    naming what stood in the way otherwise."""
    start = time.monotonic()
    told = None
    while True:
        screen = cli.read_screen(tmux.capture(pane_id))
        why = _why_not(cli, screen)
        if why is None:
            return screen, time.monotonic() - start
        if time.monotonic() - start >= timeout_s:
            reason, sentence = why
            raise NotDelivered(f"not delivered: {sentence}", reason)
        if why[0] != told:
            told = why[0]
            on_step("waiting", told)
        time.sleep(POLL_S)


def inject(
    tmux: Tmux,
    pane_id: str,
    text: str,
    *,
    cli: AgentCli,
    ready_timeout_s: float = 0.0,
    allow_command: bool = False,
    retries: int = 3,
    on_step: OnStep = _no_step,
) -> Delivery:
    """Wait (up to `ready_timeout_s`) for the prompt, type, check, submit, confirm.
    "Submitted" means the box emptied after Enter: only the agent's own hook can say that a
    turn started (protocol/receipts.py)."""
    sent, protected = (text, False) if allow_command else protect(cli, text)
    _screen, waited = wait_until_ready(cli, tmux, pane_id, ready_timeout_s, on_step)
    method = type_text(tmux, pane_id, sent)
    on_step("typed", None)
    _wait_for_text(cli, tmux, pane_id, sent)
    attempts = 0
    while True:
        screen_text = tmux.capture(pane_id)
        pending = cli.input_pending(screen_text, sent)
        if attempts and not pending:
            # Gone from the box after our Enter: submitted (a dialog that opens now is the
            # turn we started asking for a tool, not a place our text went).
            on_step("submitted", None)
            return Delivery(method, attempts, True, waited, protected)
        screen = cli.read_screen(screen_text)
        if screen.state == "waiting":
            raise _dialog_opened(screen)  # never press Enter into a dialog
        if attempts and _dead(tmux, pane_id):
            raise NotDelivered("the agent exited after Enter", "exited", typed=True)
        if attempts > retries:
            raise NotDelivered(
                f"typed, but still in the input box after {attempts} Enter",
                "unsubmitted",
                typed=True,
            )
        tmux.cmd("send-keys", "-t", pane_id, "Enter")
        attempts += 1
        deadline = time.monotonic() + REDRAW_S * attempts
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
            if not cli.input_pending(tmux.capture(pane_id), sent):
                break


def _dialog_opened(screen: Screen) -> NotDelivered:
    return NotDelivered(
        f"not submitted: a {screen.dialog} dialog opened; Enter was not pressed",
        "dialog",
        typed=True,
    )


def _dead(tmux: Tmux, pane_id: str) -> bool:
    """The pane's process has exited (the pane stays, remain-on-exit, with its last frame)."""
    out = tmux.cmd("display-message", "-p", "-t", pane_id, "#{pane_dead}")
    return bool(out) and out[0].strip() == "1"


def _wait_for_text(
    cli: AgentCli, tmux: Tmux, pane_id: str, sent: str, timeout_s: float = 2.0
) -> None:
    """Until the pasted text shows in the input box (Claude Code needs a moment to take a
    paste before Enter counts; 0.2-0.3 s seen): NotDelivered if it never does."""
    time.sleep(ENTER_DELAY_S)
    deadline = time.monotonic() + timeout_s
    while True:
        screen_text = tmux.capture(pane_id)
        if cli.input_pending(screen_text, sent):
            if not cli.input_is(screen_text, sent):
                # Someone else's text is in the box with ours (typed meanwhile): Enter would
                # send both as one prompt. Never press it.
                raise NotDelivered(
                    "not submitted: the input box holds more than this text (someone typed "
                    "meanwhile); Enter was not pressed",
                    "occupied",
                    typed=True,
                )
            return
        screen = cli.read_screen(screen_text)
        if screen.state == "waiting":
            raise _dialog_opened(screen)
        if time.monotonic() >= deadline:
            raise NotDelivered(
                "not submitted: the text did not appear in the input box",
                "not_typed",
                typed=True,
            )
        time.sleep(POLL_S)
