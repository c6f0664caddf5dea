"""The agents' screens, read from tmux: the fallback (and the correction) for what the hooks
say, a dead pane as an alert, and agents.json for `comm-node status` and viewers.

Screens are read twice a second (only panes tmux saw activity in are captured): the screen
corrects the hooks when a turn ends without one (Escape, "No", errors), and the real soak
showed the room's state lagging the screen by the poll interval.

read() blocks on tmux and runs in a worker thread; it returns a ScreenRead (plain data) that
apply() takes in on the engine's loop thread. Nothing else here runs off that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.event_types import EventType
from comm_node_tui.protocol.events import Event

if TYPE_CHECKING:
    from comm_node_tui.adapters.screen import ScreenState
    from comm_node_tui.panes.manager import AgentPanes


@dataclass(frozen=True)
class ScreenRead:
    """One look at tmux: the panes' states, or None when there is no session to read."""

    states: dict[str, dict] | None
    problem: str | None = None  # tmux did not answer (its error), states is None then
    # When the look began (wall clock): every capture in it is at least this new. The hooks'
    # word and the screen are compared by age (engine/agent_state.py).
    at: float | None = None


# With a control-mode client a look at tmux costs a line on a pipe (0.2 ms for list-panes,
# 0.05 ms a capture, bench/tmux_control.py), not a tmux process (25-30 ms each): the screens
# are then read five times a second (only panes with activity are captured), and the room
# follows the screen within ~0.1 s. Not faster: at ten a second the real soak's agreement
# fell from 99.0 to 98.4 % (more of the idle-looking frames a busy Claude Code flickers
# through between steps were caught, and believed where they agreed with the hooks).
CONTROL_POLL_S = 0.2
CONTROL_RETRY_S = 5.0  # how often to try attaching the control client again
# After a hook changes an agent's state, its screen is read at once and then every BURST_S
# for BURST_FOR_S (through the control client only: a look costs a line on a pipe). The
# hooks lead the screen at a turn's end (Stop fires, then the spinner goes down; the real
# soak's largest remaining mismatch): a look taken after the hook that still shows the
# spinner is believed, and the burst sees the spinner go down within BURST_S.
BURST_S = 0.03
BURST_FOR_S = 1.5
INTERRUPT_TRUST_S = 5.0  # how long after comm-node's Escape an idle screen is believed at once


class ScreenMonitor:
    def __init__(
        self,
        ctx: EngineContext,
        poll_s: float = 0.5,
        idle_s: float = 0.5,
        control_poll_s: float | None = CONTROL_POLL_S,
    ) -> None:
        self.ctx = ctx
        self.poll_s = poll_s  # reading through a tmux process per command
        # reading through the quiet control client (None: never use one)
        self.control_poll_s = control_poll_s
        self._control_at: float | None = None  # when attaching was last tried (monotonic)
        self._control_problem: str | None = None  # the last attach failure told
        self._closed = False  # the engine stopped: a read still under way attaches nothing
        self.idle_s = idle_s  # how long an idle screen must hold before it is believed
        self._trackers: dict[str, ScreenState] = {}
        self._panes: AgentPanes | None = None  # used by read() only, in its worker thread
        self._tmux_problem: str | None = None
        self._session_lost = False
        self._poke = asyncio.Event()  # a hook changed a state: look now
        self._burst_until: float | None = None  # monotonic

    # ---- in a worker thread ---------------------------------------------------------------
    def read(self) -> ScreenRead:
        """Blocking tmux reads; touches no engine state."""
        from comm_node_tui.adapters.tmux import TmuxError

        try:
            if self._panes is None:
                from comm_node_tui.panes.manager import AgentPanes

                self._panes = AgentPanes(self.ctx.ws, self.ctx.coord)
            if not self._panes.tmux.has_session():
                return ScreenRead(None)
            self._attach_control()
            at = self.ctx.clock.time()
            return ScreenRead(self._panes.states(), at=at)
        except TmuxError as exc:
            return ScreenRead(None, str(exc))

    def _attach_control(self) -> None:
        """Get (back) a quiet control client for the reads, at most every CONTROL_RETRY_S."""
        assert self._panes is not None
        tmux = self._panes.tmux
        if self._closed or self.control_poll_s is None:
            return
        if tmux.control is not None and tmux.control.alive:
            return
        now = self.ctx.clock.monotonic()
        if self._control_at is not None and now - self._control_at < CONTROL_RETRY_S:
            return
        self._control_at = now
        if tmux.use_control():
            self._control_problem = None
        elif tmux.control_problem != self._control_problem:  # once per reason, not per try
            self._control_problem = tmux.control_problem
            self.ctx.emit(
                Event(
                    EventType.TMUX_CONTROL_FAILED,
                    f"no quiet tmux control client ({tmux.control_problem}): "
                    f"reading the panes through tmux processes, trying again every "
                    f"{CONTROL_RETRY_S:g} s",
                    level="debug",
                )
            )

    @property
    def period_s(self) -> float:
        """How long until the next look: quicker while the control client answers, and
        quickest just after a hook changed a state."""
        panes = self._panes
        control = panes.tmux.control if panes is not None else None
        if control is not None and control.alive and self.control_poll_s is not None:
            burst = self._burst_until
            if burst is not None and self.ctx.clock.monotonic() < burst:
                return min(BURST_S, self.control_poll_s)
            return self.control_poll_s
        return self.poll_s

    def poke(self) -> None:
        """A hook changed an agent's state: look at the screens now, and closely for a
        moment (on the loop thread)."""
        self._burst_until = self.ctx.clock.monotonic() + BURST_FOR_S
        self._poke.set()

    def close(self) -> None:
        """Detach the control client (the engine stops)."""
        self._closed = True
        if self._panes is not None:
            self._panes.tmux.close()

    # ---- on the loop thread ---------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Read the screens every poll_s until `stop`."""
        idle_rounds = 0
        while not stop.is_set():
            # No tmux session: look again only every fifth round (each look spawns tmux).
            # A poke (a hook's new word) ends the wait early.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.period_s * (5 if idle_rounds else 1))
            self._poke.clear()
            try:
                seen = await asyncio.to_thread(self.read)
            except Exception as exc:
                self.ctx.emit(
                    Event("engine.fault", f"pane poll: {type(exc).__name__}: {exc}", level="error")
                )
                continue
            idle_rounds = 0 if seen.states is not None else 1
            self.apply(seen)

    def apply(self, seen: ScreenRead) -> None:
        """Take in one read: tmux's health, the session lost or back, the panes' states."""
        ctx = self.ctx
        if seen.problem is not None:
            if seen.problem != self._tmux_problem:
                self._tmux_problem = seen.problem
                ctx.emit(Event("tmux.unavailable", seen.problem, level="warn"))
        elif seen.states is not None and self._tmux_problem is not None:
            self._tmux_problem = None
            ctx.emit(Event("tmux.available", "tmux answers again"))
        ctx.panes_polled = True
        if seen.states is None:
            self.session_gone()
            return
        if self._session_lost:
            self._session_lost = False
            ctx.emit(Event("tmux.session_back", "the agents' tmux session is back"))
        self.apply_states(seen.states, seen.at)

    def session_gone(self) -> None:
        """The session that held the agents vanished (its tmux server killed, or `down`
        elsewhere): one alert, and every pane shown as gone until `comm-node up`."""
        ctx = self.ctx
        if self._session_lost or not ctx.panes:
            return
        self._session_lost = True
        session = ctx.ws.settings.tmux.session_for(ctx.ws.project)
        ctx.emit(
            Event(
                "tmux.session_lost",
                f"the agents' tmux session {session} is gone (server killed?); "
                "`comm-node up` starts the agents again",
                level="error",
                data={"alert": True, "agents": sorted(ctx.panes)},
            )
        )
        # New dicts, not edits in place: a snapshot taken a moment ago keeps what it saw.
        for name, info in list(ctx.panes.items()):
            ctx.panes[name] = {**info, "dead": True, "screen_state": "dead"}
        self._trackers.clear()
        self.publish()
        ctx.changed()

    def apply_states(self, states: dict[str, dict], at: float | None = None) -> None:
        """Debounce the screen states and log what changed (a dead pane is an alert)."""
        from comm_node_tui.adapters.agent_cli import agent_cli_for
        from comm_node_tui.adapters.screen import ScreenState

        ctx = self.ctx
        ctx.panes_polled = True
        states = dict(states)
        # A pane that vanished from a live session (killed by hand, its window closed) is
        # as gone as a dead one.
        for name in list(ctx.panes):
            if name not in states and not ctx.panes[name].get("dead"):
                states[name] = {**ctx.panes[name], "dead": True, "screen": ""}
        changed = False
        mono, wall = ctx.clock.monotonic(), ctx.clock.time()
        for name, info in states.items():
            if name not in ctx.ws.domains:
                continue
            tracker = self._trackers.get(name)
            if tracker is None:
                cli = agent_cli_for(ctx.ws)
                tracker = self._trackers[name] = ScreenState(cli, idle_s=self.idle_s)
            acted = info.get("acted")
            # Just interrupted by comm-node (Escape): nothing runs any more, so an idle screen
            # is not a flicker between steps and needs no debounce (the real soak's largest
            # remaining lag: "busy" shown for the debounce after every Escape).
            interrupted = (
                info.get("acted_kind") == "interrupt"
                and isinstance(acted, (int, float))
                and 0 <= wall - acted < INTERRUPT_TRUST_S
            )
            state = tracker.update(
                info.get("screen", ""), dead=info["dead"], now=mono, believe_idle=interrupted
            )
            before = ctx.panes.get(name, {})
            pane = {k: v for k, v in info.items() if k != "screen"}
            pane["screen_state"] = state
            pane["dialog"] = tracker.screen.dialog
            pane["screen_raw"] = tracker.screen.state  # the latest capture
            pane["screen_at"] = wall if at is None else at  # ... and how new it is
            # When the screen began to say what it says (the hooks give way to it after a
            # few seconds of contradiction: engine/agent_state.py).
            pane["screen_since"] = (
                before.get("screen_since", wall) if state == before.get("screen_state") else wall
            )
            ctx.panes[name] = pane
            # A new look alone (screen_at) is no change: the world is rebuilt and agents.json
            # written only when something the room shows moved.
            if {**pane, "screen_at": None} != {**before, "screen_at": None}:
                changed = True
                ctx.changed()
            if state == before.get("screen_state"):
                continue
            if state == "dead":
                ctx.emit(
                    Event(
                        "agent.dead",
                        f"{name}: its process exited (status "
                        f"{info.get('exit_status')}); `comm-node restart {name}`",
                        agent=name,
                        level="error",
                        data={"exit_status": info.get("exit_status"), "alert": True},
                    )
                )
            elif state != "unknown" or before:
                ctx.emit(
                    Event(
                        "agent.screen",
                        f"{name}: {state} (from the screen)",
                        agent=name,
                        data={"state": state},
                    )
                )
        if changed:
            self.publish()

    def publish(self) -> None:
        """The engine's view of every pane and every agent's health, for `comm-node status`
        and viewers (what the room shows, without a second reading of the screens)."""
        ctx = self.ctx
        data = {
            "updated": ctx.clock.time(),
            "panes": ctx.panes,
            "health": {k: str(v) for k, v in ctx.health.items()},
        }
        with contextlib.suppress(OSError, TypeError, ValueError):
            ctx.coord.store.write("agents.json", data)

    def still_s(self, name: str) -> float | None:
        """How long an agent's screen has shown nothing new (digits aside); None: no pane."""
        tracker = self._trackers.get(name)
        return None if tracker is None else tracker.unchanged_for(self.ctx.clock.monotonic())
