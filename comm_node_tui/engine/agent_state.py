"""What an agent is doing, and whether it is alive: hooks, the screen and its process,
reconciled. The rules (docs/claude-code.md, "State and liveness"):

- Silence is healthy. Claude Code sends no hook while it sits idle at its prompt or streams
  one long reply, for hours if need be. Silence never makes an agent "lost".
- Lost means gone: its pane is dead or gone, or its recorded Claude Code process (pid and
  start time, written by the hook) no longer exists, for longer than `heartbeat_lost_s`
  (time for a restart). Only then are its locks and task claims released.
- Stuck: alive, busy, no hook and a screen that has not changed (digits aside: a spinner's
  clock is not progress) for `stuck_after_s`. An alert; nothing is released.
- Silent: an agent comm-node cannot see (no pane, no recorded process) that has said
  nothing for `heartbeat_stale_s` while busy. An alert; nothing is released.
- The screen corrects the hooks. Escape, "No" on a permission prompt and API errors end a
  turn without a Stop hook; when the screen has contradicted the hooks' last word for
  CONTRADICTION_S, the screen wins, and at once when comm-node itself acted on the pane
  (typed, pressed Escape, answered) after that word and the screen changed since (the pane
  option @cn_acted carries the time across processes). A dialog on screen is "waiting" at
  once; a "waiting" from the hooks with no dialog on screen gives way to the screen at once
  (the dialog is not drawn yet, or already answered). An "idle" from the hooks over a busy
  screen keeps the contradiction grace: Stop lands within a poll of the spinner going down,
  so the hooks are the fresher word there (measured: believing the screen at once lost
  0.16 points of agreement in the real soak).
"""

from __future__ import annotations

from enum import StrEnum

from comm_node_tui.protocol.procs import is_alive

TYPE_CHECKING = False
if TYPE_CHECKING:
    from comm_node_tui.workspace.settings import AgentsSettings

CONTRADICTION_S = 1.5
# States the agent declares itself (`comm-node status set`): kept while its screen is at rest.
DECLARED = ("done", "blocked", "error")


class AgentState(StrEnum):
    """The one state the room and `comm-node status` show: what an agent declares
    (protocol/status.py STATES), and what only the screen or the engine can tell (dead,
    unknown)."""

    STARTING = "starting"
    BUSY = "busy"
    IDLE = "idle"
    WAITING = "waiting"  # a dialog on its screen: it needs someone
    BLOCKED = "blocked"
    DONE = "done"
    ERROR = "error"
    ENDED = "ended"
    DEAD = "dead"  # its pane's process exited
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, value: object) -> AgentState:
        """The state a status file or a screen reading names; UNKNOWN for anything else (a
        status.json is the agent side's to write, and may hold any JSON)."""
        try:
            return cls(value) if isinstance(value, str) else cls.UNKNOWN
        except (ValueError, TypeError):
            return cls.UNKNOWN


class Health(StrEnum):
    OK = "ok"
    SILENT = "silent"  # cannot be seen, and says nothing while busy
    STUCK = "stuck"  # busy, no hook, a screen that does not move
    GONE = "gone"  # its process or pane is gone (locks kept for a restart, for a while)
    LOST = "lost"  # gone for longer than heartbeat_lost_s: locks and claims released


def shown_state(status: dict, pane: dict | None, hook_age_s: float | None, now: float) -> str:
    """The one state the room and `comm-node status` show."""
    hook = (status or {}).get("state") or "unknown"
    if pane is None:
        return hook
    screen = pane.get("screen_state") or "unknown"
    if screen == "dead" or pane.get("dead"):
        return "dead"
    if screen == "waiting":
        return "waiting"  # a dialog is on screen: certain, and it needs someone
    if screen not in ("idle", "busy"):
        return hook  # the screen cannot tell: the hooks' word stands
    if pane.get("screen_raw") == hook:
        return hook  # the latest capture agrees with the hooks; the debounced state lags
    if screen == hook or hook in ("unknown", "starting"):
        return screen
    if hook in DECLARED and screen == "idle":
        return hook
    if hook == "waiting":
        # The hooks say a dialog is up and the screen shows none: not drawn yet
        # (PermissionRequest fires before Claude Code draws it; the real soak saw the screen
        # "busy" for up to half a second after the hook) or gone (answered, refused,
        # interrupted: none of which fires a hook). Either way the screen says what is there.
        return screen
    since = now - float(pane.get("screen_since") or now)
    if hook_age_s is None:
        return screen
    seen_at = pane.get("screen_at")
    if (
        hook == "idle"
        and screen == "busy"
        and pane.get("screen_raw") == "busy"
        and isinstance(seen_at, (int, float))
        and seen_at > now - hook_age_s
    ):
        # The newer word wins: a look taken after the hooks said "idle" still shows the
        # agent at work. Stop fires before Claude Code takes its spinner down (the hook runs
        # first), or a new turn has begun; the engine looks again within BURST_S of a hook.
        return screen
    acted = pane.get("acted")
    if isinstance(acted, (int, float)) and now - hook_age_s < acted <= now - since + 0.05:
        # comm-node acted on the pane after the hooks' last word (Escape, an answer, typed
        # text), and the screen has shown this state since then: nothing hook-side is
        # pending that the screen does not already show.
        return screen
    if hook_age_s >= CONTRADICTION_S and since >= CONTRADICTION_S:
        return screen
    return hook


def process_gone(status: dict, pane: dict | None) -> bool | None:
    """True when the agent's pane or process is gone, False when it is there, None when
    there is nothing to look at."""
    if pane is not None:
        return bool(pane.get("dead")) or pane.get("screen_state") == "dead"
    pid, start = (status or {}).get("agent_pid"), (status or {}).get("agent_start")
    if isinstance(pid, int):
        alive = is_alive(pid, start if isinstance(start, int) else None)
        return None if alive is None else not alive
    return None


def judge(
    status: dict,
    pane: dict | None,
    *,
    shown: str,
    hook_age_s: float | None,
    still_s: float | None,
    gone_for_s: float | None,
    agents: AgentsSettings,
) -> Health:
    """The agent's health now; `gone_for_s`: how long it has been gone (None: not gone)."""
    if gone_for_s is not None:
        return Health.LOST if gone_for_s >= agents.heartbeat_lost_s else Health.GONE
    if shown != "busy" or hook_age_s is None:
        return Health.OK
    visible = pane is not None or process_gone(status, None) is False
    if visible:
        stuck_s = agents.stuck_after_s
        screen_still = pane is None or (still_s is not None and still_s >= stuck_s)
        return Health.STUCK if hook_age_s >= stuck_s and screen_still else Health.OK
    return Health.SILENT if hook_age_s >= agents.heartbeat_stale_s else Health.OK
