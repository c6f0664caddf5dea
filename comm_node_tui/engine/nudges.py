"""Nudging idle agents about new mail, and the thread that types into their panes.

PaneActions runs blocking tmux actions (a nudge, a pause) one at a time on its own worker
thread, off the engine's loop. What it learns goes back as plain data: a nudge the prompt
refused is put on `refused`, a nudge typed and submitted on `sent` with its receipt (deques:
append and popleft are atomic across threads), which the Nudger drains on the loop thread; a
failure is an event (emit is safe from any thread).

A submitted nudge counts as done only when the agent's own hook proved its turn started
(protocol/receipts.py); one that started none within NUDGE_START_S is marked failed and tried
again on the next cycle (never typed twice into a box that still holds it: the typist
refuses a box that holds text).

Mail is paced (one nudge per agent every `every_s`), work is not: a message that makes work
ready for the agent (a task ready for it, a task the operator assigned it, an artifact it
imports) wakes it at its next rest even when it was nudged a moment ago, once that earlier
nudge's turn has started. Measured with real Claude Code (bench/ready_to_turn.py): the pacing
alone made the p95 from "ready" to "turn started" ~25 s. The nudge names that work, so the
turn it starts is about it.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from comm_node_tui.coordination.pause import NOT_PAUSED, read_pause
from comm_node_tui.engine.agent_state import shown_state
from comm_node_tui.engine.context import EngineContext
from comm_node_tui.engine.world import heartbeat_age
from comm_node_tui.protocol.events import Event

if TYPE_CHECKING:
    from comm_node_tui.panes.manager import AgentPanes

NUDGE_RETRY_S = 5.0  # a nudge refused (dialog, busy, someone typing) is tried again after
NUDGE_START_S = 20.0  # a submitted nudge whose turn did not start by then is tried again
# Messages that make work ready for the agent: they wake it without waiting out the pacing.
WORK_TYPES = ("task_ready", "assignment", "artifact_ready")
MAX_HEADER_BYTES = 64 * 1024  # a message file is read this far to learn its type
NAMED_MAX = 3  # work items named in one nudge


class PaneActions:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.refused: deque[str] = deque()  # agents whose nudge could not be typed
        self.sent: deque[tuple[str, str]] = deque()  # (agent, receipt id) submitted nudges
        self._pool: ThreadPoolExecutor | None = None
        self._panes: AgentPanes | None = None  # used on the worker thread only

    def nudge(self, name: str, text: str) -> None:
        self._submit(self._nudge, name, text)

    def pause(self, name: str) -> None:
        """Interrupt the agent (Escape), as a spent work budget asks under policy "pause"."""
        self._submit(self._pause, name)

    def start(self, name: str, failed: Callable[[str, Exception], None]) -> None:
        """Start (or adopt) the agent's pane as `comm-node up NAME` does; `failed` hears
        why it could not (the integration coordinator: engine/integration_monitor.py)."""

        def up() -> None:
            try:
                self._agent_panes().up([name])
            except Exception as exc:
                failed(name, exc)

        self._submit(up)

    def drain(self) -> None:
        """Wait until every action asked for so far is done (at stop, and in tests)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _submit(self, fn: Callable[..., None], *args: str) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cn-tmux")

        def run() -> None:
            try:
                fn(*args)
            except Exception as exc:
                self.ctx.emit(
                    Event("tmux.action_failed", f"{fn.__name__} {args}: {exc}", level="warn")
                )

        self._pool.submit(run)

    # ---- on the worker thread -------------------------------------------------------------
    def _agent_panes(self) -> AgentPanes:
        if self._panes is None:
            from comm_node_tui.panes.manager import AgentPanes

            self._panes = AgentPanes(self.ctx.ws, self.ctx.coord)
        return self._panes

    def _pause(self, name: str) -> None:
        self._agent_panes().interrupt(name)

    def _nudge(self, name: str, text: str) -> None:
        """Never waits for the prompt and never types over a dialog or someone's text: a
        nudge that cannot go now is handed back, to be tried again a few seconds later."""
        from comm_node_tui.panes.inject import NotDelivered

        try:
            out = self._agent_panes().inject(name, text, ready_timeout_s=0.0, why="nudge")
        except NotDelivered as exc:
            if not exc.typed:
                self.refused.append(name)
            return
        self.sent.append((name, out["receipt"]))


class Nudger:
    """Types "You have N new messages" into agents that got mail, once they are idle (at
    most once every `every_s` per agent)."""

    def __init__(self, ctx: EngineContext, actions: PaneActions, every_s: float = 30.0) -> None:
        self.ctx = ctx
        self.actions = actions
        self.every_s = every_s
        self._pending: set[str] = set()
        self._nudged: dict[str, float] = {}  # when each agent was last nudged (monotonic)
        self._unproved: dict[str, str] = {}  # receipt id -> agent: submitted, turn not seen
        # agent -> when its last nudge was handed to the typist, until its turn is proved (or
        # the nudge refused or failed): no work nudge goes on top of one still on its way
        self._inflight: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}  # agent -> no nudge before (refused, unstarted)
        self._told: dict[str, set[str]] = {}  # agent -> inbox files its last nudge counted
        self._told_before: dict[str, set[str]] = {}  # and those the nudge before it counted
        self._kinds: dict[str, tuple[str, str]] = {}  # message path -> (type, what it names)
        self.watch = ReceiptWatch(ctx)

    def last_nudge(self, name: str) -> float | None:
        """When `name` was last nudged (the clock's monotonic time); None: never."""
        return self._nudged.get(name)

    def tick(self) -> None:
        ctx = self.ctx
        self.watch.tick()
        # ([cluster]) Never another machine's agent: its engine nudges it (a pane of the
        # same name seen here, in a tmux shared by two machines' engines, is not ours to type
        # into); the monitors that add names (tasks, artifacts, conflicts) do not filter.
        self._pending |= ctx.router.delivered_to - ctx.router.remote_domains
        ctx.router.delivered_to.clear()
        now = ctx.clock.monotonic()
        while self.actions.refused:
            name = self.actions.refused.popleft()
            self._pending.add(name)
            # again in NUDGE_RETRY_S, not at once: the prompt was not free
            self._nudged[name] = now - self.every_s + NUDGE_RETRY_S
            self._retry_at[name] = now + NUDGE_RETRY_S
            self._inflight.pop(name, None)
            self._untell(name)  # that mail was not told: the retry counts it as new
        while self.actions.sent:
            name, rid = self.actions.sent.popleft()
            self._unproved[rid] = name
        if self._unproved:
            for name in self._unstarted():
                self._pending.add(name)
                self._nudged[name] = now - self.every_s + NUDGE_RETRY_S
                self._retry_at[name] = now + NUDGE_RETRY_S
                self._untell(name)
        if not ctx.ws.settings.agents.nudge_idle_agents:
            self._pending.clear()
            return
        # A paused agent is typed nothing: its nudge waits (still pending) for the resume.
        stop = read_pause(ctx.ws.paths.state) if self._pending else NOT_PAUSED
        for name in sorted(self._pending):
            dom = ctx.ws.domains.get(name)
            if dom is None:
                self._pending.discard(name)
                continue
            if stop.covers(name):
                continue
            if not self._idle(name):
                continue
            try:
                files = {
                    f for f in os.listdir(dom.paths.inbox) if f.endswith(".md") and f[0] != "."
                }
            except OSError:
                files = set()
            new = sorted(files - self._told.get(name, set()))
            work = self._work(dom.paths.inbox, new)
            if now - self._nudged.get(name, -1e9) < self.every_s and not (
                work and self._may_wake(name, now)
            ):
                continue
            self._pending.discard(name)
            # Only mail its last nudge did not count: one delivery can reach the pending set
            # twice (the router's or a monitor's own count, then the watcher seeing the file)
            # and must not wake the agent twice (the bench had 100 turns for 90 events: the
            # extra ones 30 s later, "You have N new messages" with nothing new).
            if new:
                self._nudged[name] = now
                self._inflight[name] = now
                self._told_before[name] = self._told.get(name, set())
                self._told[name] = files
                self.actions.nudge(name, nudge_text(len(files), work))
            inbox = dom.paths.inbox  # forget what this inbox no longer holds
            self._kinds = {
                p: k
                for p, k in self._kinds.items()
                if os.path.dirname(p) != inbox or os.path.basename(p) in files
            }

    def _untell(self, name: str) -> None:
        """The last nudge did not reach the agent (refused, or no turn started)."""
        if name in self._told_before:
            self._told[name] = self._told_before.pop(name)

    def _may_wake(self, name: str, now: float) -> bool:
        """Work may nudge before the pacing allows: not while a refused or unstarted nudge
        waits out NUDGE_RETRY_S, nor while the last one's turn is not proved yet (typing on
        top of it would start a second turn for the same mail)."""
        if now < self._retry_at.get(name, -1e9):
            return False
        since = self._inflight.get(name)
        return since is None or now - since >= NUDGE_START_S + NUDGE_RETRY_S

    def _work(self, inbox: str, names: list[str]) -> list[str]:
        """What the new messages make ready for the agent, one short phrase each."""
        from comm_node_tui.protocol.messages import MessageFormatError, read_message_file

        out = []
        for f in names:
            path = os.path.join(inbox, f)
            if path not in self._kinds:
                try:
                    meta, _body = read_message_file(path, MAX_HEADER_BYTES)
                except (OSError, MessageFormatError, ValueError):
                    meta = {}
                kind = str(meta.get("type") or "")
                if kind == "task_ready":
                    what = f"task {safe_word(meta.get('task'))} is ready for you"
                elif kind == "assignment":
                    what = "the operator assigned you a task"
                elif kind == "artifact_ready":
                    what = (
                        f"{safe_word(meta.get('publisher'))} published "
                        f"{safe_word(meta.get('artifact'))}"
                    )
                else:
                    what = ""
                self._kinds[path] = (kind, what)
            kind, what = self._kinds[path]
            if kind in WORK_TYPES and what not in out:
                out.append(what)
        return out

    def _unstarted(self) -> list[str]:
        """Agents whose submitted nudge started no turn (failed, or NUDGE_START_S passed with
        no UserPromptSubmit carrying it); proved ones are done and forgotten."""
        from comm_node_tui.protocol import receipts as rc

        path = rc.path_in(self.ctx.ws.paths.state)
        known = {r["id"]: r for r in rc.receipts(path)}
        now = self.ctx.clock.time()
        again = []
        for rid, name in list(self._unproved.items()):
            rec = known.get(rid)
            if rec is None:  # rotated away: nothing more will be learnt about it
                del self._unproved[rid]
                continue
            if rec["state"] in rc.PROVED:
                del self._unproved[rid]
                self._inflight.pop(name, None)
                continue
            typed = rec["times"].get("typed") or now
            if rec["state"] != rc.FAILED and now - typed < NUDGE_START_S:
                continue
            del self._unproved[rid]
            self._inflight.pop(name, None)
            if (self.ctx.statuses.get(name) or {}).get("updated_by") != "hook":
                # Its hooks never report (not installed, or another CLI): no nudge can be
                # proved, and typing it again every half minute would only repeat it.
                continue
            if rec["state"] != rc.FAILED:
                rc.append(path, rid, name, rc.FAILED, reason=rc.NOT_STARTED)
            self.ctx.emit(
                Event(
                    "agent.nudge_unstarted",
                    f"{name}: the nudge about mail started no turn; tried again [{rid}]",
                    agent=name,
                    level="warn",
                    data={"receipt": rid, "reason": rec["reason"] or rc.NOT_STARTED},
                )
            )
            again.append(name)
        return again

    def _idle(self, name: str) -> bool:
        """At rest at its prompt: the screen says so (it is what a nudge is typed into)."""
        ctx = self.ctx
        status = ctx.statuses.get(name) or {}
        pane = ctx.panes.get(name)
        if pane is None or pane.get("screen_state") != "idle":
            return False
        now = ctx.clock.time()
        state = shown_state(status, pane, heartbeat_age(status, now), now)
        return state in ("idle", "done", "blocked")


def safe_word(value: object) -> str:
    """A task id, artifact or domain name as it may be typed into a pane: letters, digits
    and . _ - : only, at most 40 characters (they come from Beads records and agents)."""
    if value is None or value == "":
        return "?"
    return "".join(c if c.isalnum() or c in "._-:" else "_" for c in str(value))[:40]


def nudge_text(n: int, work: list[str]) -> str:
    """The line typed into an idle agent: how much mail, and the work it makes ready."""
    named = ""
    if work:
        more = len(work) - NAMED_MAX
        named = " (" + "; ".join(work[:NAMED_MAX]) + (f"; {more} more" if more > 0 else "") + ")"
    return f"You have {n} new message{'s' if n != 1 else ''}{named}: run `comm-node inbox`"


UNSTARTED_S = 120.0  # a delivery typed this long ago whose turn never started has failed


class ReceiptWatch:
    """Puts what only the agents' hooks write into the receipts (a turn started, answered,
    a prompt the hook refused) into the event log, where the room shows it: one line per
    step, with the receipt's id. Reads the file only when it changed, and once a second
    judges deliveries left at typed/submitted for UNSTARTED_S as failed (a room injection
    has nobody waiting on it; a hook that comes later still turns it into `started`)."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._told: dict[str, str] | None = None  # receipt id -> the state already logged

    def tick(self) -> None:
        from comm_node_tui.protocol import receipts as rc

        found = rc.receipts(rc.path_in(self.ctx.ws.paths.state))
        if self._told is None:  # at start: what happened before is history, not news
            self._told = {r["id"]: r["state"] for r in found}
            return
        told = self._told
        now = self.ctx.clock.time()
        path = rc.path_in(self.ctx.ws.paths.state)
        for r in found:
            since = r["times"].get("typed") or r["times"].get("queued") or now
            if r["state"] in ("typed", "submitted") and now - since > UNSTARTED_S:
                rc.append(path, r["id"], r["agent"] or "?", rc.FAILED, reason=rc.NOT_STARTED)
                self.ctx.emit(
                    Event(
                        "agent.inject_refused",
                        f"{r['agent']}: submitted, but no turn started within "
                        f"{UNSTARTED_S:.0f}s [{r['id']}]",
                        agent=r["agent"],
                        level="warn",
                        data={"receipt": r["id"], "reason": rc.NOT_STARTED, "by": r["by"]},
                    )
                )
            rid, state = r["id"], r["state"]
            before = told.get(rid)
            if before == state:
                continue
            told[rid] = state
            name = r["agent"] or "?"
            times = r["times"]
            # a turn can start and end between two ticks: both steps are logged
            if state in rc.PROVED and before not in rc.PROVED:
                took = (times.get("started") or 0) - (times.get("typed") or 0)
                self.ctx.emit(
                    Event(
                        "agent.turn_started",
                        f"{name}: turn started {took:.1f}s after typing ({r['by']}) [{rid}]",
                        agent=name,
                        data={"receipt": rid, "by": r["by"], "started_s": round(took, 3)},
                    )
                )
            if state == "answered":
                self.ctx.emit(
                    Event(
                        "agent.answered",
                        f"{name}: answered ({r['by']}) [{rid}]",
                        agent=name,
                        data={"receipt": rid, "by": r["by"]},
                    )
                )
        if len(told) > 4 * rc.TAIL_BYTES // 64:
            keep = {r["id"] for r in found}
            self._told = {k: v for k, v in told.items() if k in keep}
