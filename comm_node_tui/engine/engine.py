"""The comm node: one per workspace. Watches every outbox and status file and routes.

asyncio outside, plain synchronous work inside: a watch batch is handled in one go (local
file IO is fast), then budgets are flushed once per batch. A periodic rescan covers anything
the OS watcher missed (inotify overflow, a directory created after start).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import deque
from collections.abc import Callable

from comm_node_tui.coordination.budgets import Budgets
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.coordination.ledger import Ledger
from comm_node_tui.engine.pidlock import EngineLock
from comm_node_tui.engine.router import Router
from comm_node_tui.engine.watchdog import Watchdog
from comm_node_tui.protocol.events import Event, EventLog
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir
from comm_node_tui.protocol.messages import now_iso
from comm_node_tui.protocol.status import read_status
from comm_node_tui.workspace.model import Workspace

RECENT_EVENTS = 500
LEDGER_COMPACT_AT = 5_000  # decisions kept in memory before the journal is compacted
NUDGE_RETRY_S = 5.0  # a nudge refused (dialog, busy, someone typing) is tried again after


class Engine:
    def __init__(
        self,
        ws: Workspace,
        *,
        debounce_ms: int = 30,
        step_ms: int = 5,
        rescan_s: float = 2.0,
        event_log_bytes: int | None = None,
    ) -> None:
        self.ws = ws
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.rescan_s = rescan_s
        ensure_dir(ws.paths.state)
        kwargs = {"max_bytes": event_log_bytes} if event_log_bytes else {}
        self.log = EventLog(ws.paths.events, **kwargs)
        self.lock = EngineLock(ws.paths.engine_lock)
        self.ledger = Ledger(ws.paths.ledger)
        self.budgets = Budgets(ws, self.ledger)
        self.router = Router(ws, self.ledger, self.budgets, self.emit)
        self.coord = Coordinator(ws)
        self.coord.emit = self.emit  # coordination events reach subscribers too
        self.watchdog = Watchdog(self)
        self.tick_s = 1.0
        self._tasks_stamp: object = None
        self._ready: set[str] = set()
        self._announced: dict[str, str] = {}
        self.panes: dict[str, dict] = {}  # tmux view per domain: pane, pid, dead, state
        # Screens are read twice a second (only panes tmux saw activity in are captured): the
        # screen corrects the hooks when a turn ends without one (Escape, "No", errors), and
        # the real soak showed the room's state lagging the screen by the poll interval.
        self.pane_poll_s = 0.5
        self._pane_tracker: dict[str, object] = {}
        self._pane_manager = None
        self._tmux_problem: str | None = None
        self.usage = None  # UsageTracker, made on first use
        self.usage_summary: dict | None = None
        self.tasks_view: tuple | None = None  # (tasks, Readiness, problems), on change only
        self.usage_poll_s = 5.0
        self._usage_at = 0.0
        self._exhausted: set[str] = set()
        self._nudged: dict[str, float] = {}  # when each agent was last nudged (monotonic)
        self._nudge_pending: set[str] = set()
        self._nudge_retry: deque[str] = deque()  # filled by the side thread
        self.nudge_every_s = 30.0
        self._side = None  # one worker thread for tmux side effects (nudges, pauses)
        self.agents: dict[str, dict] = {}
        self.recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._subscribers: list[Callable[[Event], None]] = []
        self._change_listeners: list[Callable[[], None]] = []
        self.tasks_version = 0
        self._graph_cache: tuple[int, dict] | None = None
        self._status_bad: set[str] = set()
        self._heartbeat_problems: dict[str, str | None] = {}
        self._missing: set[str] = set()  # domains whose directory is gone or unreadable
        self._session_lost = False
        # False from run() until the screens were read once: until then an agent is not
        # judged "silent" for want of a pane that simply was not looked at yet.
        self.panes_polled = True
        # Taken now, not after start-up: an edit made while the engine starts (after its
        # "engine.started" event) must still count as a change (a race seen under load).
        self._config_stamp: tuple | None = self._stamp_config()
        self.boundaries: dict | None = None  # the last boundary check, as plain data
        self._boundary_cache = None
        self.started = False

    # ---- events -------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Called (from the engine's thread) whenever the world changed, event or not."""
        self._change_listeners.append(callback)

    def changed(self) -> None:
        for callback in list(self._change_listeners):
            try:
                callback()
            except Exception:
                pass

    def emit(self, event: Event) -> None:
        try:
            self.log.append(event)
        except OSError:
            pass  # a full disk must not stop routing; the event still reaches subscribers
        self.recent.append(event)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a subscriber's bug must never stop the engine
                pass

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Take the workspace, recover, route what waited while no engine ran."""
        self.lock.acquire()
        self.ledger.load()
        for dom in self.ws.domains.values():
            if not os.path.isdir(dom.path):
                self.emit(
                    Event(
                        "domain.missing",
                        f"{dom.name}: {dom.path} does not exist",
                        agent=dom.name,
                        level="error",
                    )
                )
                self._missing.add(dom.name)
                continue
            try:
                dom.paths.ensure()
            except OSError as exc:
                self.emit(
                    Event("domain.unwritable", f"{dom.name}: {exc}", agent=dom.name, level="error")
                )
        self.write_registries()
        self.emit(
            Event(
                "engine.started",
                f"engine up for {self.ws.project} "
                f"({len(self.ws.domains)} domains, pid {os.getpid()})",
                data={"pid": os.getpid(), "domains": sorted(self.ws.domains)},
            )
        )
        self.scan()
        # Everything waiting has been routed: the journal can shrink to its totals.
        with contextlib.suppress(OSError):
            self.ledger.compact(keep_ids=set())
        self.budgets.flush(everything=True)
        self._load_announced()
        self.tick()
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        self.emit(
            Event(
                "engine.stopped",
                f"engine down (routed {self.router.routed}, bounced {self.router.bounced})",
            )
        )
        self.ledger.close()
        if self._side is not None:
            self._side.shutdown(wait=True)
            self._side = None
        self.log.close()
        self.lock.release()

    # ---- work ---------------------------------------------------------------------------
    def scan(self) -> int:
        """Route every outbox and refresh every status; the number of messages handled."""
        handled = 0
        for dom in self.ws.domains.values():
            handled += self.router.scan_outbox(dom)
            self.refresh_status(dom.name)
        self.budgets.flush()
        return handled

    def refresh_status(self, name: str) -> None:
        dom = self.ws.domains.get(name)
        if dom is None:
            return
        try:
            status = read_status(dom.paths.status)
        except (ValueError, OSError) as exc:
            if name not in self._status_bad:
                self._status_bad.add(name)
                self.emit(Event("status.invalid", str(exc), agent=name, level="warn"))
            return
        self._status_bad.discard(name)
        if not status:
            return
        from comm_node_tui.protocol.status import sane_heartbeat

        problem = sane_heartbeat(status, dom.paths.status)
        if problem and problem != self._heartbeat_problems.get(name):
            self.emit(Event("status.invalid", problem, agent=name, level="warn"))
        self._heartbeat_problems[name] = problem
        before = self.agents.get(name, {})
        self.agents[name] = status
        if status != before:
            self.changed()  # progress text and heartbeats are not events, but they show
        state, task = status.get("state"), status.get("task")
        if state != before.get("state") or task != before.get("task"):
            self.emit(
                Event(
                    "agent.state",
                    f"{name}: {state}" + (f" on {task}" if task else ""),
                    agent=name,
                    data={"state": state, "task": task, "progress": status.get("progress")},
                )
            )

    def compact_ledger(self) -> None:
        """Shrink the routing journal while running (it is compacted at start too): every
        decision whose message has left its outbox becomes part of the per-domain totals.
        Without this, memory and the file grow with every message of a long session."""
        archive = self.ws.paths.archive
        in_flight = {
            ident
            for ident in self.ledger.decisions
            if not os.path.exists(os.path.join(archive, "routed", f"{ident}.md"))
            and not os.path.exists(os.path.join(archive, "bounced", f"{ident}.md"))
        }
        try:
            self.ledger.compact(keep_ids=in_flight)
        except OSError as exc:
            self.emit(Event("ledger.compact_failed", str(exc), level="warn"))

    def check_domains(self) -> None:
        """A domain directory that disappears (or stops being a directory) mid-run is an
        alert; its mail waits in the senders' outboxes until it is back."""
        for dom in self.ws.domains.values():
            ok = os.path.isdir(dom.path) and os.access(dom.path, os.R_OK | os.X_OK)
            if ok and dom.name in self._missing:
                self._missing.discard(dom.name)
                self.emit(Event("domain.back", f"{dom.name}: {dom.path} is back", agent=dom.name))
                with contextlib.suppress(OSError):
                    dom.paths.ensure()
            elif not ok and dom.name not in self._missing:
                self._missing.add(dom.name)
                what = "is not readable" if os.path.isdir(dom.path) else "is gone"
                self.emit(
                    Event(
                        "domain.missing",
                        f"{dom.name}: {dom.path} {what}; its mail waits until it is back",
                        agent=dom.name,
                        level="error",
                        data={"alert": True},
                    )
                )

    def write_registries(self) -> None:
        """registry.json in every domain: its peers, their roles and what they export."""
        from comm_node_tui.workspace.registry import registry_for

        for dom in self.ws.domains.values():
            text = json.dumps(registry_for(self.ws, dom), indent=1) + "\n"
            with contextlib.suppress(OSError), open(dom.paths.registry, encoding="utf-8") as fh:
                if fh.read() == text:
                    continue  # unchanged: leave the file (and its mtime) alone
            with contextlib.suppress(OSError):
                atomic_write(dom.paths.registry, text)

    def _stamp_config(self) -> tuple | None:
        try:
            st = os.stat(self.ws.paths.config)
            return (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            return None

    def reload_config(self) -> None:
        """Pick up an edited comm-node.toml; a broken one is reported and the old one kept."""
        stamp = self._stamp_config()
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        from comm_node_tui.errors import CommNodeError
        from comm_node_tui.workspace.discovery import load_workspace

        try:
            ws = load_workspace(self.ws.root)
        except CommNodeError as exc:
            self.emit(
                Event("config.invalid", f"{exc}; keeping the previous configuration", level="error")
            )
            return
        self.ws = ws
        self.router.ws = ws
        self.budgets.ws = ws
        self.coord.ws = ws
        for dom in ws.domains.values():
            if os.path.isdir(dom.path):
                with contextlib.suppress(OSError):
                    dom.paths.ensure()
        self.write_registries()
        self.budgets.flush(everything=True)
        self.emit(
            Event(
                "config.reloaded",
                f"{len(ws.domains)} domains",
                data={"domains": sorted(ws.domains)},
            )
        )

    def _watch_paths(self) -> list[str]:
        paths = [self.ws.root]
        for dom in self.ws.domains.values():
            for p in (dom.paths.outbox, dom.paths.dir, dom.paths.artifacts):
                if os.path.isdir(p):
                    paths.append(p)
        return list(dict.fromkeys(paths))

    def handle_changes(self, changes: set[tuple[object, str]]) -> None:
        outboxes: set[str] = set()
        statuses: set[str] = set()
        config = False
        artifacts = False
        by_artifacts = {d.paths.artifacts for d in self.ws.domains.values()}
        by_outbox = {d.paths.outbox: d.name for d in self.ws.domains.values()}
        by_status = {d.paths.status: d.name for d in self.ws.domains.values()}
        for _change, path in changes:
            parent = os.path.dirname(path)
            if parent in by_outbox:
                outboxes.add(by_outbox[parent])
            elif path in by_status:
                statuses.add(by_status[path])
            elif path == self.ws.paths.config:
                config = True
            elif parent in by_artifacts:
                artifacts = True
        if config:
            self.reload_config()
        for name in sorted(outboxes):
            dom = self.ws.domains.get(name)
            if dom is not None:
                self.router.scan_outbox(dom)
        for name in sorted(statuses):
            self.refresh_status(name)
        if artifacts:
            self.announce_artifacts()
            self.refresh_tasks()
        self.budgets.flush()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Start, then route until `stop` is set (or the task is cancelled)."""
        from watchfiles import awatch

        stop = stop or asyncio.Event()
        if not self.started:
            self.start()
        self.panes_polled = False
        rescan = asyncio.create_task(self._rescan_loop(stop))
        pane_poll = asyncio.create_task(self._pane_loop(stop))
        bounds = asyncio.create_task(self._boundary_loop(stop))
        try:
            while not stop.is_set():
                paths = self._watch_paths()
                watched = set(paths)
                async for changes in awatch(
                    *paths,
                    debounce=self.debounce_ms,
                    step=self.step_ms,
                    stop_event=stop,
                    recursive=False,
                    watch_filter=None,
                    ignore_permission_denied=True,
                ):
                    try:
                        self.handle_changes(changes)
                    except Exception as exc:  # one bad batch must not stop the engine
                        self.emit(
                            Event("engine.fault", f"{type(exc).__name__}: {exc}", level="error")
                        )
                    if set(self._watch_paths()) != watched:
                        break  # a domain appeared or a directory was created: re-arm
        finally:
            for task in (rescan, pane_poll, bounds):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.stop()

    async def _rescan_loop(self, stop: asyncio.Event) -> None:
        last_scan = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await asyncio.sleep(self.tick_s)
            try:
                if loop.time() - last_scan >= self.rescan_s:
                    last_scan = loop.time()
                    self.reload_config()
                    self.scan()
                self.tick()
            except Exception as exc:  # keep routing; report the fault once per pass
                self.emit(
                    Event(
                        "engine.fault",
                        f"timer pass failed: {type(exc).__name__}: {exc}",
                        level="error",
                    )
                )

    # ---- timers: locks, heartbeats, tasks, artifacts --------------------------------------
    def tick(self) -> None:
        """Expire locks, check heartbeats, notice task, artifact and usage changes."""
        self.check_domains()
        if len(self.ledger.decisions) > LEDGER_COMPACT_AT:
            self.compact_ledger()
        self.coord.expire_locks()
        self.watchdog.check()
        self.announce_artifacts()
        self.refresh_tasks()
        self.refresh_usage()
        self.nudge_idle()

    # ---- real token use and work budgets --------------------------------------------------
    def refresh_usage(self, force: bool = False) -> dict | None:

        from comm_node_tui.usage.transcripts import UsageTracker

        if not force and time.monotonic() - self._usage_at < self.usage_poll_s:
            return None
        self._usage_at = time.monotonic()
        if self.usage is None:
            self.usage = UsageTracker(self.ws)
        # The hooks name each session's transcript (and a finished sub-agent's): that is
        # how token use follows an agent whose CLAUDE_CONFIG_DIR is not the room's.
        extra = {
            s[key]: name
            for name, s in self.agents.items()
            for key in ("transcript_path", "subagent_transcript_path")
            if isinstance(s.get(key), str) and s[key]
        }
        self.usage.poll(extra)
        summary = self.usage.summary()
        self.usage_summary = summary
        with contextlib.suppress(OSError):
            self.coord.store.write("usage.json", {"updated": now_iso(), **summary})
        policy = self.ws.agents.get("on_budget_exhausted", "alert")
        for name, d in summary["domains"].items():
            limit = d.get("work_budget_tokens")
            if not limit or name not in self.ws.domains:
                continue
            exhausted = d["total"] >= limit
            self.budgets.work[name] = {
                "limit": limit,
                "used": d["total"],
                "exhausted": exhausted,
                "policy": policy,
                "tokens_per_min": d["tokens_per_min"],
                "minutes_left": d["minutes_left"],
            }
            self.budgets.touched(name)
            if exhausted and name not in self._exhausted:
                self._exhausted.add(name)
                self.emit(
                    Event(
                        "budget.work_exhausted",
                        f"{name}: used {d['total']} of its "
                        f"{limit} work tokens" + ("; pausing it" if policy == "pause" else ""),
                        agent=name,
                        level="error",
                        data={"used": d["total"], "limit": limit, "alert": True, "policy": policy},
                    )
                )
                if policy == "pause":
                    self._side_effect(self._pause, name)
            elif not exhausted:
                self._exhausted.discard(name)
        self.budgets.flush()
        return summary

    def _side_effect(self, fn, *args) -> None:
        """Run a blocking tmux action off the event loop, one at a time, errors as events."""
        from concurrent.futures import ThreadPoolExecutor

        if self._side is None:
            self._side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cn-tmux")

        def run() -> None:
            try:
                fn(*args)
            except Exception as exc:
                self.emit(Event("tmux.action_failed", f"{fn.__name__} {args}: {exc}", level="warn"))

        self._side.submit(run)

    def _panes(self):
        if self._pane_manager is None:
            from comm_node_tui.panes.manager import AgentPanes

            self._pane_manager = AgentPanes(self.ws, self.coord)
        return self._pane_manager

    def _pause(self, name: str) -> None:
        self._panes().interrupt(name)

    # ---- nudging idle agents about new mail -----------------------------------------------
    def _agent_idle(self, name: str) -> bool:
        """At rest at its prompt: the screen says so (it is what a nudge is typed into)."""
        from comm_node_tui.engine.agent_state import shown_state
        from comm_node_tui.engine.world import heartbeat_age

        status = self.agents.get(name) or {}
        pane = self.panes.get(name)
        if pane is None or pane.get("screen_state") != "idle":
            return False
        state = shown_state(status, pane, heartbeat_age(status), time.time())
        return state in ("idle", "done", "blocked")

    def nudge_idle(self) -> None:
        """Type "You have N new messages" into agents that got mail, once they are idle
        (at most once every nudge_every_s per agent)."""

        self._nudge_pending |= self.router.delivered_to
        self.router.delivered_to.clear()
        while self._nudge_retry:
            name = self._nudge_retry.popleft()
            self._nudge_pending.add(name)
            # again in NUDGE_RETRY_S, not at once: the prompt was not free
            self._nudged[name] = time.monotonic() - self.nudge_every_s + NUDGE_RETRY_S
        if not self.ws.agents.get("nudge_idle_agents", True):
            self._nudge_pending.clear()
            return
        now = time.monotonic()
        for name in sorted(self._nudge_pending):
            dom = self.ws.domains.get(name)
            if dom is None:
                self._nudge_pending.discard(name)
                continue
            if (
                not self._agent_idle(name)
                or now - self._nudged.get(name, -1e9) < self.nudge_every_s
            ):
                continue
            try:
                n = sum(
                    1
                    for f in os.listdir(dom.paths.inbox)
                    if f.endswith(".md") and not f.startswith(".")
                )
            except OSError:
                n = 0
            self._nudge_pending.discard(name)
            if n:
                self._nudged[name] = now
                text = f"You have {n} new message{'s' if n != 1 else ''}: run `comm-node inbox`"
                self._side_effect(self._nudge, name, text)

    def _nudge(self, name: str, text: str) -> None:
        """Runs on the side thread. Never waits for the prompt and never types over a dialog
        or someone's text: a nudge that cannot go now is tried again a few seconds later."""
        from comm_node_tui.panes.inject import NotDelivered

        try:
            self._panes().inject(name, text, ready_timeout_s=0.0, why="nudge")
        except NotDelivered as exc:
            if not exc.typed:
                self._nudge_retry.append(name)  # deque.append: safe across threads

    def refresh_tasks(self) -> None:
        """Recompute readiness when the source, the overlay or an artifact changed."""
        stamp = self.coord.tasks_stamp()
        if stamp == self._tasks_stamp:
            return
        first = self._tasks_stamp is None
        self._tasks_stamp = stamp
        tasks, ready, problems = self.coord.load_tasks()
        self.tasks_view = (tasks, ready, problems)
        self.tasks_version += 1
        now_ready = set(ready.ready)
        if not first:
            for tid in sorted(now_ready - self._ready):
                t = tasks[tid]
                self.emit(
                    Event(
                        "task.ready",
                        f"{tid} is ready: {t.title}",
                        agent=t.domain,
                        data={"task": tid},
                    )
                )
        self._ready = now_ready
        counts = ready.counts()
        self.emit(
            Event(
                "tasks.loaded" if first else "tasks.changed",
                f"{len(tasks)} tasks: {counts['ready']} ready, {counts['in_progress']} "
                f"in progress, {counts['blocked']} blocked, {counts['done']} done",
                data={"counts": counts, "problems": problems[:20]},
                level="warn" if problems else "info",
            )
        )

    def _load_announced(self) -> None:
        try:
            data = self.coord.store.read("announced.json", {})
        except ValueError:
            data = {}
        self._announced = data if isinstance(data, dict) else {}

    def announce_artifacts(self) -> None:
        """Tell every importer of a newly published artifact (type artifact_ready)."""
        from comm_node_tui.protocol.messages import render

        changed = False
        for dom in self.ws.domains.values():
            for name, entry in self.coord.manifest(dom).items():
                key = f"{dom.name}:{name}"
                sha = str(entry.get("sha256", ""))
                if self._announced.get(key) == sha:
                    continue
                self._announced[key] = sha
                changed = True
                importers = [
                    d
                    for d in self.ws.domains.values()
                    if any(x in ("*", name) for x in d.imports.get(dom.name, []))
                ]
                # The id is the content: a restart or a re-publish of the same bytes does not
                # announce twice.
                ident = f"a-{dom.name}-{sha[:16]}"
                body = (
                    f"{dom.name} published {name} ({entry.get('size', '?')} bytes, "
                    f"sha256 {sha[:12]}).\nRead it at: "
                    f"{os.path.join(dom.paths.artifacts, name)}\n"
                )
                for imp in importers:
                    meta = {
                        "id": ident,
                        "from": "comm-node",
                        "to": [imp.name],
                        "type": "artifact_ready",
                        "priority": "normal",
                        "created": now_iso(),
                        "artifact": name,
                        "publisher": dom.name,
                        "sha256": sha,
                    }
                    self.router.deliver_copy(
                        imp.paths.inbox, imp.paths.inbox_read, ident, render(meta, body)
                    )
                to = [d.name for d in importers]
                self.emit(
                    Event(
                        "artifact.announced",
                        f"{key} to {', '.join(to) or 'no one'}",
                        agent=dom.name,
                        data={"name": name, "sha256": sha, "to": to},
                    )
                )
        if changed:
            with contextlib.suppress(OSError):
                self.coord.store.write("announced.json", self._announced)

    # ---- boundaries: the check in the background -----------------------------------------
    async def _boundary_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            every = float(self.ws.config.get("boundaries", {}).get("check_interval_s", 30.0))
            if every <= 0:
                await asyncio.sleep(5.0)  # off; look again in case the config changes
                continue
            try:
                await asyncio.to_thread(self.check_boundaries)
            except Exception as exc:
                self.emit(
                    Event(
                        "engine.fault",
                        f"boundary check: {type(exc).__name__}: {exc}",
                        level="error",
                    )
                )
            await asyncio.sleep(every)

    def check_boundaries(self) -> dict:
        """Run the boundary check; log violations that are new and those that went away.
        Blocking (git, file reads): the loop runs it in a thread."""
        from comm_node_tui.boundaries.check import ImportCache, run_check
        from comm_node_tui.boundaries.gitfiles import GitError

        if self._boundary_cache is None:
            self._boundary_cache = ImportCache()
        try:
            report = run_check(self.ws, cache=self._boundary_cache)
        except GitError as exc:
            self.emit(Event("boundary.unavailable", str(exc), level="warn"))
            return self.boundaries or {}
        before = {tuple(v["key"]) for v in (self.boundaries or {}).get("violations", [])}
        now = {v.key for v in report.violations}
        first = self.boundaries is None
        new = [v for v in report.violations if v.key not in before]
        for v in new[:20]:
            self.emit(
                Event(
                    "boundary.violation",
                    v.describe(),
                    agent=v.domain,
                    level="warn",
                    data={**v.to_json(), "alert": True},
                )
            )
        if len(new) > 20:
            self.emit(
                Event("boundary.violation", f"and {len(new) - 20} more violations", level="warn")
            )
        for key in before - now:
            kind, domain, file, imp, _target = key
            what = f"{imp} in {file}" if kind == "import" else f"change to {file}"
            self.emit(Event("boundary.resolved", f"{domain}: {what}: resolved", agent=domain))
        data = report.to_json()
        for v, out in zip(report.violations, data["violations"], strict=True):
            out["key"] = list(v.key)
        data["checked_at"] = time.time()
        self.boundaries = data
        with contextlib.suppress(OSError):
            self.coord.store.write("boundaries.json", data)  # for viewers of this engine
        if new or (before - now) or first:
            self.changed()
        return data

    # ---- tmux: the screen as a fallback for agent state -----------------------------------
    async def _pane_loop(self, stop: asyncio.Event) -> None:
        idle_rounds = 0
        while not stop.is_set():
            # No tmux session: look again only every fifth round (each look spawns tmux).
            await asyncio.sleep(self.pane_poll_s * (5 if idle_rounds else 1))
            try:
                states = await asyncio.to_thread(self._read_panes)
            except Exception as exc:
                self.emit(
                    Event("engine.fault", f"pane poll: {type(exc).__name__}: {exc}", level="error")
                )
                continue
            idle_rounds = 0 if states is not None else 1
            self.panes_polled = True
            if states is not None:
                if self._session_lost:
                    self._session_lost = False
                    self.emit(Event("tmux.session_back", "the agents' tmux session is back"))
                self.apply_pane_states(states)
            else:
                self.session_gone()

    def session_gone(self) -> None:
        """The session that held the agents vanished (its tmux server killed, or `down`
        elsewhere): one alert, and every pane shown as gone until `comm-node up`."""
        if self._session_lost or not self.panes:
            return
        self._session_lost = True
        session = self.ws.config.get("tmux", {}).get("session") or f"cn-{self.ws.project}"
        self.emit(
            Event(
                "tmux.session_lost",
                f"the agents' tmux session {session} is gone (server killed?); "
                "`comm-node up` starts the agents again",
                level="error",
                data={"alert": True, "agents": sorted(self.panes)},
            )
        )
        for info in self.panes.values():
            info["dead"] = True
            info["screen_state"] = "dead"
        self._pane_tracker.clear()
        self.publish_agents()
        self.changed()

    def _read_panes(self) -> dict[str, dict] | None:
        """Blocking tmux reads (run in a thread); None when there is no session to read."""
        from comm_node_tui.adapters.tmux import TmuxError

        try:
            if self._pane_manager is None:
                from comm_node_tui.panes.manager import AgentPanes

                self._pane_manager = AgentPanes(self.ws, self.coord)
            if not self._pane_manager.tmux.has_session():
                return None
            states = self._pane_manager.states()
        except TmuxError as exc:
            if str(exc) != self._tmux_problem:
                self._tmux_problem = str(exc)
                self.emit(Event("tmux.unavailable", str(exc), level="warn"))
            return None
        if self._tmux_problem is not None:
            self._tmux_problem = None
            self.emit(Event("tmux.available", "tmux answers again"))
        return states

    def apply_pane_states(self, states: dict[str, dict]) -> None:
        """Debounce the screen states and log what changed (a dead pane is an alert)."""
        from comm_node_tui.adapters.claude_screen import ScreenState

        self.panes_polled = True
        # A pane that vanished from a live session (killed by hand, its window closed) is
        # as gone as a dead one.
        for name in list(self.panes):
            if name not in states and not self.panes[name].get("dead"):
                states[name] = {**self.panes[name], "dead": True, "screen": ""}
        changed = False
        for name, info in states.items():
            if name not in self.ws.domains:
                continue
            tracker = self._pane_tracker.setdefault(name, ScreenState(idle_s=0.5))
            state = tracker.update(info.get("screen", ""), dead=info["dead"])
            before = self.panes.get(name, {})
            self.panes[name] = {k: v for k, v in info.items() if k != "screen"}
            self.panes[name]["screen_state"] = state
            self.panes[name]["dialog"] = tracker.screen.dialog
            self.panes[name]["screen_raw"] = tracker.screen.state  # the latest capture
            # When the screen began to say what it says (the hooks give way to it after a
            # few seconds of contradiction: engine/agent_state.py).
            self.panes[name]["screen_since"] = (
                before.get("screen_since", time.time())
                if state == before.get("screen_state")
                else time.time()
            )
            if self.panes[name] != before:
                changed = True
                self.changed()
            if state == before.get("screen_state"):
                continue
            if state == "dead":
                self.emit(
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
                self.emit(
                    Event(
                        "agent.screen",
                        f"{name}: {state} (from the screen)",
                        agent=name,
                        data={"state": state},
                    )
                )
        if changed:
            self.publish_agents()

    def publish_agents(self) -> None:
        """The engine's view of every pane and every agent's health, for `comm-node status`
        and viewers (what the room shows, without a second reading of the screens)."""
        data = {
            "updated": time.time(),
            "panes": self.panes,
            "health": {k: str(v) for k, v in self.watchdog.health.items()},
        }
        with contextlib.suppress(OSError, TypeError, ValueError):
            self.coord.store.write("agents.json", data)

    def screen_still_s(self, name: str) -> float | None:
        """How long an agent's screen has shown nothing new (digits aside); None: no pane."""
        tracker = self._pane_tracker.get(name)
        return None if tracker is None else tracker.unchanged_for()

    def snapshot(self) -> dict:
        """The WorldState as plain data (what the control room renders). The task graph is
        rebuilt only when the tasks changed (tasks_version)."""
        from comm_node_tui.engine.world import snapshot

        graph = None
        if self._graph_cache is not None and self._graph_cache[0] == self.tasks_version:
            graph = self._graph_cache[1]
        world = snapshot(
            self.ws,
            self.coord,
            statuses=dict(self.agents),
            panes=dict(self.panes),
            tasks_view=self.tasks_view,
            budgets=self.budgets,
            usage=self.usage_summary,
            tasks_version=self.tasks_version,
            graph=graph,
            boundaries=self.boundaries,
            health=dict(self.watchdog.health),
        )
        self._graph_cache = (self.tasks_version, world.task_graph)
        return world
