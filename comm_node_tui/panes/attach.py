"""Going to an agent's pane: one implementation for the room (`enter`) and `comm-node attach`.

Where the operator is decides how (docs/tmux.md, "Attaching"):

- outside tmux: a tmux client attaches to the agents' server in this terminal (the room
  gives it the terminal and comes back when it detaches);
- inside the agents' own tmux server ($TMUX names the same socket; real paths compared, as
  `-L NAME` lives in $TMUX_TMPDIR or /tmp/tmux-UID): this client switches to the agent's
  window, nothing nests; prefix `L` (tmux's last session) comes back;
- inside another tmux server, the usual case since comm-node keeps its agents on a private
  socket: a popup of the operator's tmux (`display-popup -E`, tmux 3.2+) runs the attach to
  comm-node's server. A popup takes every key, so the prefix and `d` reach comm-node's tmux
  and detach it; the popup closes and the operator is where they were (the room keeps running
  under it). Nested in place instead, both tmux had the same prefix and `prefix d` detached
  the operator's own tmux: the trap this avoids. With an older tmux outside: nested, $TMUX
  unset, and the way back is the prefix pressed twice, then `d`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from comm_node_tui.adapters.tmux import Pane, Tmux, TmuxError, tmux_version

POPUP_FROM = (3, 2)  # display-popup
POPUP_TITLE_FROM = (3, 3)  # display-popup -T


@dataclass(frozen=True)
class AttachPlan:
    how: str  # "attach" (this terminal), "switch" (same server), "popup", "nested"
    command: tuple[str, ...]
    back: str  # what the operator presses to come back, for a notice
    env: Mapping[str, str] | None = None  # None: this process's environment
    # the command needs this terminal: the room suspends for it, the CLI execs it
    takes_terminal: bool = False
    prepare: tuple[tuple[str, ...], ...] = field(default=())  # tmux commands on our server


def socket_path(tmux: Tmux) -> str:
    """The real path of the agents' server's socket (the server is running: it has panes)."""
    lines = tmux.cmd("display-message", "-p", "#{socket_path}")
    if not lines or not lines[0]:
        raise TmuxError(f"tmux did not say where its socket is ({tmux.where})")
    return os.path.realpath(lines[0])


def prefix_of(tmux: Tmux) -> str:
    """The agents' server's prefix key as tmux writes it (C-b unless configured)."""
    try:
        lines = tmux.cmd("show-options", "-gv", "prefix", check=False)
    except TmuxError:
        return "C-b"
    return lines[0].strip() if lines and lines[0].strip() else "C-b"


def plan(tmux: Tmux, pane: Pane, name: str, env: Mapping[str, str] | None = None) -> AttachPlan:
    """How to go to `pane` (of agent `name`) from where this process runs."""
    env = os.environ if env is None else env
    target = f"={tmux.session}:{pane.window}"
    inner = socket_path(tmux)
    prepare = (("select-window", "-t", target), ("select-pane", "-t", pane.id))
    outer = env.get("TMUX", "").split(",")[0]
    prefix = prefix_of(tmux)
    # A client of our server, wherever it runs: by socket path, so that the popup's shell
    # (with the operator's tmux environment) finds the same server.
    attach = (tmux.binary, "-S", inner, "attach-session", "-t", target)
    untmuxed = {k: v for k, v in env.items() if k != "TMUX"}
    if not outer:
        return AttachPlan(
            "attach",
            attach,
            f"{prefix} d",
            env=untmuxed,
            takes_terminal=True,
            prepare=prepare,
        )
    if os.path.realpath(outer) == inner:
        return AttachPlan(
            "switch",
            (tmux.binary, "-S", inner, "switch-client", "-t", target),
            f"{prefix} L (tmux's last session)",
            prepare=prepare,
        )
    if tmux_version(tmux.binary) >= POPUP_FROM:
        popup = [tmux.binary, "-S", outer, "display-popup", "-E", "-w", "100%", "-h", "100%"]
        if tmux_version(tmux.binary) >= POPUP_TITLE_FROM:
            popup += ["-T", f" {name} · {prefix} d: back "]
        return AttachPlan(
            "popup",
            (*popup, "env -u TMUX " + shlex.join(attach)),
            f"{prefix} d",
            prepare=prepare,
        )
    return AttachPlan(
        "nested",
        attach,
        f"{prefix} {prefix} d (the prefix twice: the first goes to your own tmux)",
        env=untmuxed,
        takes_terminal=True,
        prepare=prepare,
    )


def make_ready(tmux: Tmux, p: AttachPlan) -> None:
    """The agent's window and pane selected on our server (what the client will show)."""
    for args in p.prepare:
        tmux.cmd(*args)


def go(p: AttachPlan) -> None:
    """Run the plan's command (make_ready first) until the operator comes back: a client
    in this terminal until it detaches, a popup until it closes; a switch at once."""
    env = dict(p.env) if p.env is not None else None
    if p.takes_terminal:
        subprocess.run(p.command, env=env, check=False)
        return
    # A popup or a switch does not use this terminal: what tmux says on failure is kept
    # (no current client, a server gone) for the operator.
    res = subprocess.run(p.command, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        why = " ".join(res.stderr.split()) or f"exit status {res.returncode}"
        raise TmuxError(f"tmux {p.command[3]}: {why}")
