"""Type a message into an agent's pane and submit it, reliably and literally.

Short single lines go with `send-keys -l`; anything else (several lines, long text, a tab,
a trailing `;` that tmux would take as a command separator, control characters) goes through
a uniquely named buffer and a bracketed paste. Enter follows as a separate key after a short
delay; then the screen is checked and Enter retried with backoff while the text still sits
in the input box. Text is never interpreted: not as key names, not as tmux formats.
"""

from __future__ import annotations

import os
import time

from comm_node_tui.adapters.claude_screen import input_pending
from comm_node_tui.adapters.tmux import Tmux

SHORT = 200


def method_for(text: str) -> str:
    if "\n" in text or len(text) > SHORT or text.endswith(";") or not text.isprintable():
        return "paste"
    return "keys"


def type_text(tmux: Tmux, pane_id: str, text: str) -> str:
    """Put `text` in the pane's input, unsubmitted; returns the method used."""
    method = method_for(text)
    if method == "keys":
        tmux.cmd("send-keys", "-t", pane_id, "-l", "--", text)
        return method
    name = f"cn-{os.getpid()}-{os.urandom(6).hex()}"
    tmux.run_stdin(["load-buffer", "-b", name, "-"], text.encode("utf-8"))
    # -p: bracketed paste (the app sees one paste, newlines included); -r: keep LF as LF;
    # -d: delete the buffer afterwards.
    tmux.cmd("paste-buffer", "-p", "-r", "-d", "-b", name, "-t", pane_id)
    return method


def inject(
    tmux: Tmux, pane_id: str, text: str, *, enter_delay: float = 0.2, retries: int = 4
) -> dict:
    """Type and submit; {"method", "attempts", "confirmed"}."""
    method = type_text(tmux, pane_id, text)
    time.sleep(enter_delay)
    before = tmux.capture(pane_id)
    attempts = 0
    wait = 0.15
    while attempts <= retries:
        tmux.cmd("send-keys", "-t", pane_id, "Enter")
        attempts += 1
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            time.sleep(0.03)
            after = tmux.capture(pane_id)
            if after != before and not input_pending(after, text):
                return {"method": method, "attempts": attempts, "confirmed": True}
        after = tmux.capture(pane_id)
        if not input_pending(after, text) and after != before:
            return {"method": method, "attempts": attempts, "confirmed": True}
        if not input_pending(after, text) and after == before:
            # Nothing visible changed and nothing is pending: an app that does not echo.
            return {"method": method, "attempts": attempts, "confirmed": False}
        wait *= 2
    return {"method": method, "attempts": attempts, "confirmed": False}
