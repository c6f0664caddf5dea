"""The control room: live panels over one engine, and a hand on every agent.

The engine runs in a thread with its own event loop (or, when `comm-node serve` holds the
workspace, the room only watches). Its events arrive as typed messages; a burst collapses
into one re-read of the world, done in a worker. Every tmux or file action runs in a worker
too, so the UI never waits on IO. The UI writes no protocol file: interventions call the
engine layer (coordination, operator, panes).
"""

from __future__ import annotations

import os
import subprocess
import time

# libtmux reads sys.stdout.encoding when first imported; inside the running app stdout is
# Textual's capture object, which has none. Import it now, before the app starts.
import libtmux  # noqa: F401
from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import Container
from textual.widgets import DataTable, Footer, Header

from comm_node_tui.protocol.event_types import ALERTS as EVENT_ALERTS
from comm_node_tui.protocol.events import Event
from comm_node_tui.tui.actions import PANEL_KEYS, bindings
from comm_node_tui.tui.bridge import EngineBridge
from comm_node_tui.tui.commands import ActionsProvider
from comm_node_tui.tui.messages import EngineEvent, PaneText, WorldChanged, WorldUpdated
from comm_node_tui.tui.screens.dialogs import (
    ConfirmScreen,
    InjectScreen,
    MessageScreen,
    PickScreen,
    PromptScreen,
)
from comm_node_tui.tui.screens.help import HelpScreen
from comm_node_tui.tui.themes import layouts, load_themes
from comm_node_tui.tui.widgets.agents import AgentsPanel
from comm_node_tui.tui.widgets.burn import BurnPanel
from comm_node_tui.tui.widgets.events import EventsPanel
from comm_node_tui.tui.widgets.locks import LocksPanel
from comm_node_tui.tui.widgets.preview import PreviewPanel
from comm_node_tui.tui.widgets.tasks import TasksPanel
from comm_node_tui.workspace.model import Workspace

# What raises an alert lives with the event catalogue (protocol/event_types.py).
ALERTS: dict[str, str] = {str(k): v for k, v in EVENT_ALERTS.items()}
WAITING_EVENTS = ("agent.state", "agent.screen")
GIT_EVERY_S = 10.0


class ControlRoom(App):
    TITLE = "comm-node"
    BINDINGS = bindings()
    COMMANDS = App.COMMANDS | {ActionsProvider}

    def __init__(
        self,
        ws: Workspace,
        *,
        layout: str = "default",
        theme: str = "elder",
        start_engine: bool = True,
        clock=time.time,
    ) -> None:
        found = layouts()
        self.layout_problem = None
        if layout not in found:
            self.layout_problem = (
                f"no layout '{layout}' (have: {', '.join(found) or 'none'}); using default"
            )
            layout = "default"
        super().__init__(css_path=str(found[layout]) if layout in found else None)
        self.ws = ws
        self.layout_name = layout
        self.wanted_theme = theme
        self.clock = clock
        self.start_engine = start_engine
        self.bridge = EngineBridge(
            ws, self._from_engine, clock=clock, on_change=lambda: self.post_message(WorldChanged())
        )
        self._panes = None
        self.world: dict = {}
        self._waiting: set[str] = set()  # agents shown waiting in the last world
        self.git: dict[str, str] = {}
        self._git_at = 0.0
        self._refresh_pending = False
        self._preview_key: tuple | None = None
        self.keymap_ids: dict[str, str] = {}
        self.kickoff: set[str] | None = None  # agents registered while a kickoff runs

    # ---- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Container(id="panels"):
            yield AgentsPanel(id="agents")
            yield TasksPanel(id="tasks")
            yield LocksPanel(id="locks")
            yield BurnPanel(id="burn")
            yield EventsPanel(id="events")
            yield PreviewPanel(id="preview")
        yield Footer()

    def on_mount(self) -> None:
        themes, problems = load_themes()
        for t in themes:
            self.register_theme(t)
        if self.wanted_theme in self.available_themes:
            self.theme = self.wanted_theme
        else:
            self.theme = "elder" if "elder" in self.available_themes else "textual-dark"
            self.notify(f"no theme '{self.wanted_theme}'; using {self.theme}", severity="error")
        for p in problems:
            self.notify(p, severity="error")
        if self.layout_problem:
            self.notify(self.layout_problem, severity="error")
        keymap = self.ws.config.get("keymap") or {}
        known = {b.id for b in self.BINDINGS}
        unknown = sorted(set(keymap) - known)
        if unknown:
            self.notify(
                f"[keymap] {', '.join(unknown)}: no such binding id (see the help)",
                severity="error",
                markup=False,
            )
        self.keymap_ids = {k: v for k, v in keymap.items() if k in known}
        if self.keymap_ids:
            self.set_keymap(self.keymap_ids)
        self.sub_title = self.ws.project
        self.query_one(AgentsPanel).focus()
        if self.start_engine:
            self.start_bridge()
        else:  # read-only from the files (tests, and a look without taking the workspace)
            self._loaded(self.bridge.recent_events(500))
        # Heartbeat ages move with time even when nothing happens; changes come by message.
        self.set_interval(5.0, self.request_refresh)
        self.set_interval(1.0, self.poll_preview)

    @work(thread=True, group="engine", exclusive=True)
    def start_bridge(self) -> None:
        self.bridge.start()
        events = self.bridge.recent_events(500)
        self.call_from_thread(self._loaded, events)

    def _loaded(self, events: list[Event]) -> None:
        self.query_one(EventsPanel).add_many(events)
        mode = (
            f"viewer of engine pid {self.bridge.viewer_of}"
            if self.bridge.viewer_of
            else "engine in-process"
        )
        self.sub_title = f"{self.ws.project} · {mode}"
        self.request_refresh()

    # ---- engine -> UI -------------------------------------------------------------------
    def _from_engine(self, event: Event) -> None:
        """Called in the engine's thread: hand over as messages (post_message is safe)."""
        self.post_message(EngineEvent(event))
        self.post_message(WorldChanged())

    def _panels_gone(self) -> bool:
        """True while the room is closing: the engine's thread may still post messages after
        the panels are gone, and those must not fail the shutdown."""
        return not self.query(EventsPanel)

    def on_engine_event(self, message: EngineEvent) -> None:
        if self._panels_gone():
            return
        ev = message.event
        self.query_one(EventsPanel).add(ev)
        if ev.type == "kickoff.started":
            self.kickoff = set()
        elif ev.type == "agent.registered" and self.kickoff is not None and ev.agent:
            self.kickoff.add(ev.agent)
        elif ev.type == "kickoff.done":
            self.kickoff = None
            self.notify(
                ev.msg,
                title="kickoff",
                markup=False,
                severity="warning" if ev.level == "warn" else "information",
            )
        severity = ALERTS.get(ev.type)
        waiting = ev.type in WAITING_EVENTS and ev.data.get("state") == "waiting"
        if ev.type == "lock.refused" and ev.data.get("holder"):
            key = f"{ev.data['holder']}:{ev.data.get('held_pattern')}"
            self.query_one(LocksPanel).conflicts[key] = f"⚠ {ev.agent}"
            self.query_one(LocksPanel).locks = []  # force a redraw
        if severity or waiting:
            if ev.agent:
                self.query_one(AgentsPanel).alerts.add(ev.agent)
                self.request_refresh()  # show the mark now, not at the next timed refresh
            self.notify(ev.msg[:200], title=ev.type, severity=severity or "warning", markup=False)

    def on_world_changed(self, _message: WorldChanged) -> None:
        self.request_refresh()

    def request_refresh(self) -> None:
        if not self._refresh_pending:
            self._refresh_pending = True
            self.set_timer(0.02, self.refresh_world)  # long enough to gather a burst

    @work(thread=True, group="world", exclusive=True)
    def refresh_world(self) -> None:
        self._refresh_pending = False
        try:
            world = self.bridge.snapshot()
        except Exception as exc:
            self.call_from_thread(
                self.notify, f"cannot read the world: {exc}", severity="error", markup=False
            )
            return
        if time.monotonic() - self._git_at > GIT_EVERY_S:
            self._git_at = time.monotonic()
            self.git = git_summary(self.ws)
        # call_from_thread runs it on the UI loop at once (a posted message waited ~50 ms).
        self.call_from_thread(self.on_world_updated, WorldUpdated(world))

    def on_world_updated(self, message: WorldUpdated) -> None:
        if self._panels_gone():
            return
        world = self.world = message.world
        now = self.clock()
        burn = self.query_one(BurnPanel)
        rates = burn.record(world.get("usage"), now)
        budgets = {b["domain"]: b for b in world.get("budgets", [])}
        agents_panel = self.query_one(AgentsPanel)
        # An agent that comes to need the human (a dialog on its screen: permission, trust,
        # API key) is marked, whether or not an event said so (the room may start late).
        waiting = {a["name"] for a in world.get("agents", []) if a.get("state") == "waiting"}
        agents_panel.alerts |= waiting - self._waiting
        self._waiting = waiting
        agents_panel.show(world, self.git, budgets, rates)
        self.query_one(TasksPanel).show(world)
        self.query_one(LocksPanel).show(world, now)
        burn.show(world, now)
        from comm_node_tui.coordination.operator import is_paused

        paused = is_paused(self.bridge.coord)
        mode = f"viewer of pid {self.bridge.viewer_of}" if self.bridge.viewer_of else "engine"
        sub_title = f"{self.ws.project} · {mode}" + (" · PAUSED" if paused else "")
        if self.kickoff is not None:
            sub_title += f" · kickoff: registered {len(self.kickoff)}/{len(self.ws.domains)}"
        if sub_title != self.sub_title:
            self.sub_title = sub_title

    # ---- the preview --------------------------------------------------------------------
    @property
    def selected_agent(self) -> str | None:
        panels = self.query(AgentsPanel)  # none while the room closes (timers still fire)
        return panels.first().selected if panels else None

    def poll_preview(self) -> None:
        """Capture the selected pane only when tmux saw activity in it (checked here, before
        any worker starts, so an idle room costs nothing)."""
        name = self.selected_agent
        if not name or not self.query_one(PreviewPanel).display or self.screen.is_modal:
            return
        info = self.world_panes().get(name, {})
        key = (name, info.get("activity"), info.get("pane"))
        if key == self._preview_key and (info or self.bridge.engine is not None):
            return
        self.read_pane(name)

    @work(thread=True, group="preview", exclusive=True)
    def read_pane(self, domain: str) -> None:
        panes = self.world_panes()
        info = panes.get(domain, {}) if panes else {}
        key = (domain, info.get("activity"), info.get("pane"))
        if key == self._preview_key and (info or self.bridge.engine is not None):
            # No activity since the last read (or no pane at all): nothing to capture. The
            # engine's pane poll tells when that changes.
            return
        try:
            text = self._agent_panes().peek(domain)
        except Exception as exc:
            text = f"(no pane: {exc})"
        self._preview_key = key
        self.post_message(PaneText(domain, text))

    def world_panes(self) -> dict:
        eng = self.bridge.engine
        return dict(eng.panes) if eng is not None else {}

    def on_pane_text(self, message: PaneText) -> None:
        from comm_node_tui.adapters.screen import clean

        if self._panels_gone():
            return
        self.query_one(PreviewPanel).show(message.domain, clean(message.text))

    @on(DataTable.RowHighlighted, "#agents")
    def _agent_seen(self, event: DataTable.RowHighlighted) -> None:
        if self._panels_gone():
            return  # a highlight that arrives while the room closes (NoMatches otherwise)
        name = event.row_key.value if event.row_key else None
        panel = self.query_one(AgentsPanel)
        if name in panel.alerts:
            panel.alerts.discard(name)
            self.request_refresh()
        self._preview_key = None
        if name:
            self.read_pane(name)

    @on(DataTable.RowSelected, "#agents")
    def _agent_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_attach()

    @on(DataTable.RowSelected, "#event-table")
    def _event_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open_event()

    # ---- helpers ------------------------------------------------------------------------
    def _agent_panes(self):
        """One tmux client for the room (making one asks tmux for its version)."""
        from comm_node_tui.panes.manager import AgentPanes

        if self._panes is None:
            self._panes = AgentPanes(self.ws, self.bridge.coord)
        return self._panes

    def _need_agent(self) -> str | None:
        name = self.selected_agent
        if name is None:
            self.notify("select an agent first (panel 1)", severity="warning")
        return name

    @work(thread=True, group="act")
    def run_action_in_worker(self, what: str, fn, *args) -> None:
        try:
            result = fn(*args)
        except Exception as exc:
            self.call_from_thread(self.notify, f"{what}: {exc}", severity="error", markup=False)
            return
        done = f"{what}: done" if result is None else f"{what}: {result}"
        self.call_from_thread(self.notify, done[:300], markup=False)
        self.post_message(WorldChanged())

    # ---- the hand of god ----------------------------------------------------------------
    def action_attach(self) -> None:
        name = self._need_agent()
        if not name:
            return
        try:
            panes = self._agent_panes()
            pane = panes.pane(name, alive=False)
        except Exception as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        tm = panes.tmux
        base = [tm.binary] + (["-L", tm.socket] if tm.socket else [])
        target = f"={tm.session}:{pane.window}"
        if os.environ.get("TMUX") and not tm.socket:
            subprocess.run([*base, "switch-client", "-t", target], timeout=10, check=False)
            return
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        subprocess.run([*base, "select-pane", "-t", pane.id], timeout=10, check=False)
        with self.suspend():
            subprocess.run([*base, "attach-session", "-t", target], env=env, check=False)
        self.request_refresh()

    def action_inject(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def sent(text: str | None) -> None:
            if text:
                self.run_action_in_worker(f"inject into {name}", self._inject, name, text)

        self.push_screen(InjectScreen(name), sent)

    def _inject(self, name: str, text: str) -> str:
        from comm_node_tui.coordination.operator import message_to_agent

        ident = message_to_agent(self.bridge.coord, name, text)
        out = self._agent_panes().inject(name, text)
        return f"typed ({out['method']}) and delivered as {ident}"

    def action_interrupt(self) -> None:
        name = self._need_agent()
        if name:
            self.run_action_in_worker(f"interrupt {name}", self._agent_panes().interrupt, name)

    def action_approve(self) -> None:
        name = self._need_agent()
        if name:
            self.run_action_in_worker(
                f"approve {name}", lambda: self._agent_panes().answer(name, allow=True)["answer"]
            )

    def action_deny(self) -> None:
        name = self._need_agent()
        if name:
            self.run_action_in_worker(
                f"deny {name}", lambda: self._agent_panes().answer(name, allow=False)["answer"]
            )

    def action_kill(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_action_in_worker(
                    f"kill {name}", lambda: self._agent_panes().kill(name) and None
                )

        self.push_screen(ConfirmScreen(f"Kill {name}'s agent and close its pane?"), confirmed)

    def action_restart(self) -> None:
        name = self._need_agent()
        if name:
            self.run_action_in_worker(
                f"restart {name}", lambda: self._agent_panes().restart(name)["action"]
            )

    def action_pause(self) -> None:
        from comm_node_tui.coordination.operator import is_paused

        self.run_action_in_worker(
            "resume" if is_paused(self.bridge.coord) else "pause all", self._toggle_pause
        )

    def _toggle_pause(self) -> str:
        from comm_node_tui.coordination.operator import is_paused, set_paused

        coord = self.bridge.coord
        if is_paused(coord):
            set_paused(coord, False)
            return "claims allowed again"
        set_paused(coord, True)
        stopped = []
        try:
            panes = self._agent_panes()
            for name, pane in panes.tmux.panes().items():
                if not pane.dead:
                    panes.interrupt(name)
                    stopped.append(name)
        except Exception as exc:  # no tmux: the pause still holds for claims
            return f"paused (no agents interrupted: {exc})"
        return f"paused; interrupted {', '.join(stopped) or 'no agents'}"

    def action_grant_budget(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def granted(value: str | None) -> None:
            if value is None:
                return
            try:
                tokens = int(value.replace(",", "").replace("_", ""))
            except ValueError:
                self.notify(f"'{value}' is not a number of tokens", severity="error", markup=False)
                return
            from comm_node_tui.coordination.coordinator import grant_budget

            self.run_action_in_worker(
                f"grant {tokens} to {name}",
                lambda: (
                    grant_budget(self.bridge.coord, name, tokens, "granted in the control room")
                    and None
                ),
            )

        self.push_screen(PromptScreen(f"Tokens to grant to {name}:", "e.g. 50000"), granted)

    def action_assign_task(self) -> None:
        name = self._need_agent()
        if not name:
            return
        graph = self.world.get("task_graph", {})
        ready = {t["id"] for t in self.world.get("tasks", {}).get("ready", [])}
        choices = [
            (tid, f"{'ready' if tid in ready else t['status']:<12} {tid}  {t['title']}")
            for tid, t in sorted(graph.items())
            if tid in ready or t["status"] == "in_progress"
        ]
        if not choices:
            self.notify("no ready or running task to assign", severity="warning")
            return

        def picked(tid: str | None) -> None:
            if tid:
                from comm_node_tui.coordination.operator import assign_task

                self.run_action_in_worker(
                    f"assign {tid} to {name}",
                    lambda: assign_task(self.bridge.coord, tid, name) and None,
                )

        self.push_screen(PickScreen(f"Task for {name}:", choices), picked)

    def action_release_lock(self) -> None:
        locks = self.world.get("locks", [])
        panel = self.query_one(LocksPanel)
        chosen = panel.selected if panel.has_focus else None

        def release(key: str | None) -> None:
            if not key:
                return
            holder, pattern = key.split(":", 1)
            self.run_action_in_worker(
                f"release {pattern}",
                lambda: (
                    self.bridge.coord.release(holder, [pattern], why="released by the operator")
                    and None
                ),
            )

        if chosen:
            release(f"{chosen['holder']}:{chosen['pattern']}")
        elif locks:
            self.push_screen(
                PickScreen(
                    "Release which lock?",
                    [
                        (f"{lk['holder']}:{lk['pattern']}", f"{lk['holder']}: {lk['pattern']}")
                        for lk in locks
                    ],
                ),
                release,
            )
        else:
            self.notify("no locks are held", severity="warning")

    def action_publish_artifact(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def publish(path: str | None) -> None:
            if path:
                dom = self.ws.domains[name]
                full = path if os.path.isabs(path) else os.path.join(dom.path, path)
                self.run_action_in_worker(
                    f"publish {path}", lambda: self.bridge.coord.publish(dom, full, None)["name"]
                )

        self.push_screen(
            PromptScreen(
                f"File to publish as an artifact of {name}:", "path, relative to the domain"
            ),
            publish,
        )

    def action_filter_events(self) -> None:
        self.query_one(EventsPanel).open_filter()

    def action_open_event(self) -> None:
        ev = self.query_one(EventsPanel).selected
        if ev is not None:
            self.open_event(ev)

    @work(thread=True, group="open", exclusive=True)
    def open_event(self, ev: Event) -> None:
        """Read the event's message from the archive or an inbox (IO: in a worker)."""
        ident = ev.data.get("id") if isinstance(ev.data, dict) else None
        text = find_message_text(self.ws, ident) if ident else None
        body = (
            text
            if text is not None
            else (
                f"{ev.ts}  {ev.type}  {ev.agent or ''}\n\n{ev.msg}\n\n"
                + "\n".join(f"{k}: {v}" for k, v in (ev.data or {}).items())
            )
        )
        self.call_from_thread(self.push_screen, MessageScreen(f"{ev.type} {ident or ''}", body))

    def action_show_boundaries(self) -> None:
        from comm_node_tui.tui.screens.boundaries import BoundariesScreen

        self.push_screen(BoundariesScreen(self.world.get("boundaries")))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_focus_panel(self, panel: str) -> None:
        widget = self.query_one(f"#{panel}")
        target = widget.query("DataTable, Tree").first() if panel in ("tasks", "events") else widget
        target.focus()

    def action_cycle_panel(self) -> None:
        focused = self.focused
        order = [self.query_one(f"#{p}") for p in PANEL_KEYS]
        idx = next(
            (
                i
                for i, w in enumerate(order)
                if focused is w or (focused is not None and w in focused.ancestors)
            ),
            -1,
        )
        self.action_focus_panel(PANEL_KEYS[(idx + 1) % len(PANEL_KEYS)])

    def on_unmount(self) -> None:
        self.bridge.stop()


def find_message_text(ws: Workspace, ident: str) -> str | None:
    """A routed message's text from the archive or an inbox (read-only)."""
    from comm_node_tui.protocol.fileio import read_bounded
    from comm_node_tui.protocol.messages import is_valid_id

    if not is_valid_id(ident):
        return None
    places = [
        os.path.join(ws.paths.archive, "routed", f"{ident}.md"),
        os.path.join(ws.paths.archive, "bounced", f"{ident}.md"),
    ]
    for d in ws.domains.values():
        places += [
            os.path.join(d.paths.inbox, f"{ident}.md"),
            os.path.join(d.paths.inbox_read, f"{ident}.md"),
        ]
    for p in places:
        try:
            return read_bounded(p, 1024 * 1024).decode("utf-8", "replace")
        except Exception:  # missing, unreadable, not a regular file: try the next place
            continue
    return None


def git_summary(ws: Workspace) -> dict[str, str]:
    """branch, dirty mark and ahead/behind per domain (gitpython; blank when not a repo)."""
    try:
        import git
    except ImportError:
        return {}
    out = {}
    for name, dom in ws.domains.items():
        try:
            repo = git.Repo(dom.path, search_parent_directories=True)
            branch = repo.active_branch.name if not repo.head.is_detached else "detached"
            dirty = "*" if repo.is_dirty(untracked_files=True) else ""
            text = f"{branch}{dirty}"
            tracking = None if repo.head.is_detached else repo.active_branch.tracking_branch()
            if tracking is not None:
                ahead = sum(1 for _ in repo.iter_commits(f"{tracking}..HEAD"))
                behind = sum(1 for _ in repo.iter_commits(f"HEAD..{tracking}"))
                text += f" ↑{ahead} ↓{behind}"
            out[name] = text
        except Exception:
            out[name] = ""
    return out
