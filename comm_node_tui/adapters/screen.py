"""What comm-node reads off any agent CLI's screen: the typed reading (`Screen`), the
debounce that turns captures into a state (`ScreenState`), and text cleaned for people.

How a capture is read is the agent CLI's business (`AgentCli.read_screen`, e.g.
adapters/claude/screen.py); what comm-node does with the reading is the same for every CLI.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from comm_node_tui.adapters.agent_cli import AgentCli

ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, hyperlinks
    r"|\x1b[()*+][0-9A-Za-z]"  # charset designation, e.g. ESC ( B
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
)
NBSP = "\u00a0"


@dataclass(frozen=True)
class Screen:
    """One capture, read: the state, the dialog if one is open, the text in the input box."""

    state: str  # busy | idle | waiting | unknown
    # permission (comm-node may answer it) | trust | api_key | model_switch | rewind | choice
    dialog: str | None = None
    input: str | None = None  # the input box's text ("" when empty); None: no box shown
    queued: bool = False  # input typed while busy waits in the CLI's queue

    @property
    def has_prompt(self) -> bool:
        return self.input is not None


def strip_ansi(text: str) -> str:
    """ANSI stripped and trailing blanks trimmed (NBSP kept: a CLI may mark things with it)."""
    text = ANSI.sub("", text).replace("\r", "")
    lines = [line.rstrip(" \t") for line in text.split("\n")]
    return "\n".join(lines).rstrip("\n")


def clean(text: str) -> str:
    """A capture as people read it: ANSI stripped, non-breaking spaces as spaces."""
    return strip_ansi(text).replace(NBSP, " ")


class ScreenState:
    """Debounced screen state: idle is only believed after it held for `idle_s` (a busy
    agent's screen flickers through idle-looking frames between steps)."""

    def __init__(self, cli: AgentCli, idle_s: float = 2.0) -> None:
        self.cli = cli
        self.idle_s = idle_s
        self.state = "unknown"
        self.screen = Screen("unknown")
        self._idle_since: float | None = None
        self._text = ""
        self.changed_at: float | None = None  # when the capture last differed

    def update(
        self,
        screen: str,
        dead: bool = False,
        now: float | None = None,
        believe_idle: bool = False,
    ) -> str:
        """The state after one capture; `believe_idle`: an idle capture needs no debounce
        (the agent was just interrupted: nothing runs that could flicker)."""
        now = time.monotonic() if now is None else now
        if dead:
            self.state, self._idle_since = "dead", None
            self.screen = Screen("unknown")
            return self.state
        # What moves on a screen while nothing happens (a spinner, its clock) is masked by
        # the CLI: progress is new text or a new state.
        fingerprint = self.cli.progress_key(screen)
        if fingerprint != self._text or self.changed_at is None:
            self._text = fingerprint
            self.changed_at = now
        seen = self.cli.read_screen(screen)
        self.screen = seen
        if seen.state == "idle":
            if self._idle_since is None:
                self._idle_since = now
            # From a dialog, idle is believed at once: a dialog does not flicker (seen in the
            # real soak: "waiting" lingered while idle was being confirmed).
            if (
                believe_idle
                or now - self._idle_since >= self.idle_s
                or self.state
                in (
                    "unknown",
                    "idle",
                    "waiting",
                )
            ):
                self.state = "idle"
        else:
            self._idle_since = None
            self.state = seen.state
        return self.state

    def unchanged_for(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return 0.0 if self.changed_at is None else now - self.changed_at
