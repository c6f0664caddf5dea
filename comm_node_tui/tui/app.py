"""The control room: live panels over one engine, and a hand on every agent.

The engine runs in a thread with its own event loop (or, when `comm-node serve` holds the
workspace, the room only watches). Its events arrive as typed messages; a burst collapses
into one re-read of the world (an immutable World, read in a worker), which goes down to the
panels; each panel keeps its own rows and says what the operator did as a typed message
(tui/messages.py). The room routes: alert rules are in tui/alerts.py, every intervention is
a function of operator/actions.py run in a worker, and one handler turns a worker's end into
a notice (and a failed intervention into an event). The UI writes no protocol file.
"""

from __future__ import annotations

import itertools
import os
import time
from functools import partial
from typing import TypeVar, cast

from textual import events, work
from textual.app import App, ComposeResult
from textual.containers import Container
from textual.widget import Widget
from textual.widgets import Header
from textual.worker import Worker, WorkerState

from comm_node_tui.engine.world import World
from comm_node_tui.operator.actions import OperatorActions, one_line
from comm_node_tui.operator.lookups import find_message_text, git_summary
from comm_node_tui.protocol.events import Event
from comm_node_tui.tui.actions import (
    NEEDS_ACTIONS,
    PANEL_KEYS,
    REVIEW_ACTIONS,
    bindings,
    keymap,
)
from comm_node_tui.tui.alerts import (
    AlertHistory,
    KickoffProgress,
    Notice,
    Ring,
    react,
    ring_sequence,
)
from comm_node_tui.tui.bridge import EngineBridge
from comm_node_tui.tui.commands import ActionsProvider
from comm_node_tui.tui.hand import Hand
from comm_node_tui.tui.messages import (
    AgentChosen,
    AgentHighlighted,
    EngineEvent,
    EventChosen,
    NeedsArrived,
    WorldChanged,
    WorldUpdated,
)
from comm_node_tui.tui.screens.dialogs import MessageScreen
from comm_node_tui.tui.screens.help import HelpScreen
from comm_node_tui.tui.screens.needs import ClearAlerts, NeedAction, NeedsScreen
from comm_node_tui.tui.themes import COMPACT_BELOW, by_size, layouts, use_theme
from comm_node_tui.tui.widgets.agents import AgentsPanel
from comm_node_tui.tui.widgets.burn import BurnPanel
from comm_node_tui.tui.widgets.events import EventsPanel
from comm_node_tui.tui.widgets.footer import RoomFooter
from comm_node_tui.tui.widgets.locks import LocksPanel
from comm_node_tui.tui.widgets.preview import PreviewPanel
from comm_node_tui.tui.widgets.tasks import TasksPanel
from comm_node_tui.workspace.model import Workspace

W = TypeVar("W", bound=Widget)
GIT_EVERY_S = 10.0  # the git column looked at; a domain read again only if (refresh_git):
GIT_IDLE_EVERY_S = 60.0  # its agent's status moved, or this long after its last read
REFRESH_GAP_S = 0.02  # the least time between two world reads' starts: a burst gathers
# What a failed worker of each group was doing, for its notice (an action says it itself).
FAILED = {"world": "cannot read the world"}


class ControlRoom(Hand):
    TITLE = "comm-node"
    # Notices take rows of their own above the footer (the panels give them up while one
    # shows) instead of floating over the pane preview: a toast hid the agent's screen the
    # operator was reading. One line each, no blank rows around.
    CSS = """
    ToastRack { layer: default; max-height: 50%; }
    Toast { padding: 0 1; margin-top: 0; }
    """
    BINDINGS = bindings()
    COMMANDS = App.COMMANDS | {ActionsProvider}

    def __init__(
        self,
        ws: Workspace,
        *,
        layout: str | None = None,
        theme: str = "elder",
        start_engine: bool = True,
        clock=time.time,
    ) -> None:
        found = layouts()
        self.layout_problem = None
        # None: chosen by the terminal's size, and again on every resize (by_size)
        self.layout_by_size = layout is None
        if layout is not None and layout not in found:
            self.layout_problem = (
                f"no layout '{layout}' (have: {', '.join(found) or 'none'}); using default"
            )
        if layout not in found:
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
        self.operator = OperatorActions(ws, lambda: self.bridge.coord)
        self.world: World | None = None  # the world the panels show
        self.git: dict[str, str] = {}
        self._git_at = 0.0
        # domain -> (its status file's stamp, when) at its last git read (refresh_git)
        self._git_seen: dict[str, tuple[tuple[int, int] | None, float]] = {}
        self._refresh_pending = False
        self._read_at = 0.0  # when the last read was started (monotonic)
        self._asked_while_starting = False  # a change asked for a read before _loaded
        self._started = False  # the engine started (or the room watches one): _loaded
        # Worlds are numbered as their reads start: an `exclusive` worker replaced by a newer
        # one still runs to its end (a thread cannot be cancelled), and its older world must
        # not be applied over the newer one (a removed domain came back for a moment, and the
        # burn panel mounted its row twice: DuplicateIds, the room crashed under load).
        self._world_seq = itertools.count(1)
        self._world_applied = 0
        self.keymap_ids: dict[str, str] = {}
        self._kickoff = KickoffProgress()
        self.alert_history = AlertHistory()  # what the notices said (tui/alerts.py)
        self.dismissed: set[str] = set()  # needs-you keys hidden until they change
        self._ring = Ring()
        self._panels: dict[type, Widget] = {}  # found once (panel())

    @property
    def kickoff(self) -> set[str] | None:
        """The agents registered while a kickoff meeting runs (None when none runs)."""
        return self._kickoff.registered

    # ---- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Container(id="panels"):
            yield AgentsPanel(id="agents")
            yield TasksPanel(id="tasks")
            yield LocksPanel(id="locks")
            yield BurnPanel(id="burn")
            yield EventsPanel(id="events")
            yield PreviewPanel(
                peek=self.operator.peek,
                tracked=lambda: self.bridge.engine is not None,
                id="preview",
            )
        yield RoomFooter()

    def on_resize(self, event: events.Resize) -> None:
        if self.layout_by_size:
            self.use_layout(by_size(event.size.width, event.size.height))
        # a narrow footer drops the gaps between keys: more of them fit beside help and quit
        for footer in self.query(RoomFooter):
            footer.compact = event.size.width < COMPACT_BELOW[0]

    def use_layout(self, name: str) -> None:
        """Swap the layout stylesheet (layouts/NAME.tcss) for another while running."""
        found = layouts()
        if name == self.layout_name or name not in found:
            return
        sheet = self.stylesheet.copy()
        old = found.get(self.layout_name)
        if old is not None:
            sheet.source.pop((str(old), ""), None)
        sheet.read(found[name])
        sheet.parse()
        self.stylesheet = sheet
        self.css_path = [found[name]]
        self.layout_name = name
        sheet.update(self)
        for screen in self.screen_stack:
            sheet.update(screen)

    def on_mount(self) -> None:
        problems = use_theme(self, self.wanted_theme)
        self.keymap_ids, unknown = keymap(
            dict(self.ws.settings.keymap),
            {b.id for b in self.BINDINGS}
            | {a.id for a in NEEDS_ACTIONS}
            | {a.id for a in REVIEW_ACTIONS},
        )
        for p in [*problems, self.layout_problem, unknown]:
            if p:
                self.notify(p, severity="error", markup=False)
        if self.keymap_ids:
            self.set_keymap(self.keymap_ids)
        self.sub_title = self.ws.project
        self.query_one(AgentsPanel).focus()
        if self.start_engine:
            self.start_bridge()
        else:  # read-only from the files (tests, and a look without taking the workspace)
            self._loaded(self.bridge.recent_events(500), True)
        # Heartbeat ages move with time even when nothing happens; changes come by message.
        self.set_interval(5.0, self.request_refresh)

    @work(thread=True, group="engine", exclusive=True)
    def start_bridge(self) -> None:
        # The agents' rows first: the engine's start below loads and judges every task
        # (seconds at 20,000 tasks), the status files take milliseconds.
        seq = next(self._world_seq)
        try:
            look = self.bridge.first_look()
        except Exception:  # the full world after the start says what is wrong, if anything
            look = None
        if look is not None:
            self.call_from_thread(
                self.on_world_updated,
                WorldUpdated(look, {}, look.paused.any, seq, no_tasks=True),
            )
        self.bridge.start()
        events = self.bridge.recent_events(500)
        # The first full world read here, in the thread that started the engine, and handed
        # over with the events in one call: through request_refresh it waited for the
        # gathering timer, a new worker and the UI loop twice (~0.1-0.2 s of the first full
        # frame at 200 agents). A change meanwhile still gets its own read, later.
        try:
            seq, world = self.bridge.numbered_snapshot(self._world_seq)
        except Exception:  # _loaded's read in the world's worker reports it (this group's
            self.call_from_thread(self._loaded, events, True)  # errors mean "no engine")
            return
        update = WorldUpdated(world, dict(self.git), world.paused.any, seq)
        self.call_from_thread(self._loaded, events, False, update)

    def _loaded(
        self, events: list[Event], refresh: bool, first: WorldUpdated | None = None
    ) -> None:
        self._started = True
        self.query_one(EventsPanel).add_many(events)
        self.sub_title = f"{self.ws.project} · {self._mode()}"
        if first is not None:
            self.on_world_updated(first)
        if self._asked_while_starting:
            self._asked_while_starting = False
            refresh = True
        if refresh:
            self.request_refresh()

    def _mode(self) -> str:
        """The header's word for who holds the engine: one wording, wherever it is set (two
        wordings made the title change between the start and the first world). The rows
        show before the engine has started or found another's: "starting" until then."""
        if self.bridge.viewer_of:
            return f"viewer of pid {self.bridge.viewer_of}"
        if self.start_engine and not self._started:
            return "starting"
        if self.start_engine and self.bridge.engine is None:
            return "no engine"  # it failed to start: the world is read from the files
        return "engine"

    # ---- engine -> UI -------------------------------------------------------------------
    def _from_engine(self, event: Event) -> None:
        """Called in the engine's thread: hand over as messages (post_message is safe)."""
        self.post_message(EngineEvent(event))
        self.post_message(WorldChanged())

    def _panels_gone(self) -> bool:
        """True while the room is closing: the engine's thread may still post messages after
        the panels are gone, and those must not fail the shutdown. Textual's shutdown stops
        the app running first, then removes the widgets (children before parents)."""
        if not self.is_running:
            return True
        panel = self._panels.get(EventsPanel)
        if panel is None:
            return not self.query(EventsPanel)
        return not panel.is_attached

    def panel(self, cls: type[W]) -> W:
        """The room's one panel of this class, found once: a query walked the whole DOM,
        and at 200 agents the burn panel's rows made it thousands of widgets, on every
        event and every world."""
        panel = self._panels.get(cls)
        if panel is None or not panel.is_attached:
            panel = self._panels[cls] = self.query_one(cls)
        return cast(W, panel)

    def _notice(self, notice: Notice) -> None:
        self.notify(notice.text, title=notice.title, severity=notice.severity, markup=False)

    def on_engine_event(self, message: EngineEvent) -> None:
        if self._panels_gone():
            return
        ev = message.event
        self.panel(EventsPanel).add(ev)
        kickoff = self._kickoff.feed(ev)
        if kickoff is not None:
            self.alert_history.add(self.clock(), kickoff, None)
            self._notice(kickoff)
        reaction = react(ev)
        if reaction.conflict is not None:
            self.panel(LocksPanel).flag_conflict(reaction.conflict)
        if reaction.notice is not None:
            self.alert_history.add(self.clock(), reaction.notice, reaction.mark)
            self._notice(reaction.notice)
        if reaction.mark is not None:  # the marks are the history's agents (`clear` unmarks)
            self.panel(AgentsPanel).mark(reaction.mark)
        self._show_needs_screen()

    def on_world_changed(self, _message: WorldChanged) -> None:
        self.request_refresh()

    def request_refresh(self) -> None:
        if self.start_engine and not self._started:
            # While the engine starts, a read would load every task from the files beside
            # the engine's own load (seconds at 20,000 tasks); start_bridge reads once it is
            # up, and _loaded reads again for a change asked for meanwhile (it may have come
            # after start_bridge's read: without that it waited for the 5 s heartbeat).
            self._asked_while_starting = True
            return
        if self._refresh_pending:
            return
        self._refresh_pending = True
        # A change after a quiet spell is read at once (a status change's way to its row:
        # every read used to wait 20 ms first); within a burst, reads start at most every
        # REFRESH_GAP_S, so a burst still collapses into few reads.
        wait = self._read_at + REFRESH_GAP_S - time.monotonic()
        if wait <= 0:
            self._read_at = time.monotonic()
            self.refresh_world()
        else:
            self._read_at += REFRESH_GAP_S
            self.set_timer(wait, self.refresh_world)

    @work(thread=True, group="world", exclusive=True, exit_on_error=False)
    def refresh_world(self) -> None:
        self._refresh_pending = False
        seq, world = self.bridge.numbered_snapshot(self._world_seq)
        # call_from_thread runs it on the UI loop at once (a posted message waited ~50 ms).
        update = WorldUpdated(world, dict(self.git), world.paused.any, seq)
        self.call_from_thread(self.on_world_updated, update)

    @work(thread=True, group="git", exclusive=True, exit_on_error=False)
    def refresh_git(self) -> None:
        """Each agent's branch, dirty mark and ahead/behind, read apart from the world: a
        `git status` per domain (200 at 200 agents, with gitpython's import the first time)
        held every world read it shared a worker with, the first full frame's and a status
        change's alike. Shown in the agents' rows when it differs from the last.

        A domain is read again when its agent's status file moved since its last read (a
        working agent's hooks write it; its commits and edits come with them), else once a
        minute (the operator's own edits): at 200 agents an idle room ran `git status` 200
        times every 10 s (0.3 % of a core without repositories, a process each with)."""
        now = time.monotonic()
        due: dict[str, tuple[int, int] | None] = {}
        for name, dom in self.ws.domains.items():
            stamp = file_stamp(dom.paths.status)
            seen = self._git_seen.get(name)
            if seen is None or seen[0] != stamp or now - seen[1] >= GIT_IDLE_EVERY_S:
                due[name] = stamp
        read = git_summary(self.ws, due) if due else {}
        for name, stamp in due.items():
            self._git_seen[name] = (stamp, now)
        git = {n: v for n, v in self.git.items() if n in self.ws.domains} | read
        if git != self.git:
            self.call_from_thread(self._show_git, git)

    def _show_git(self, git: dict[str, str]) -> None:
        self.git = git
        if self.world is not None and not self._panels_gone():
            self.panel(AgentsPanel).show(self.world, git)

    def on_world_updated(self, message: WorldUpdated) -> None:
        if self._panels_gone() or message.seq < self._world_applied:
            return  # closing, or an older read that finished after a newer one
        self._world_applied = message.seq
        world = self.world = message.world
        now = self.clock()
        self.panel(AgentsPanel).show(world, message.git)
        tasks = self.panel(TasksPanel)
        if message.no_tasks:
            tasks.loading = True  # not an empty plan: the tasks are still being read
        else:
            tasks.loading = False
            tasks.show(world)
        self.panel(LocksPanel).show(world, now)
        self.panel(BurnPanel).show(world, now)
        self.panel(PreviewPanel).update_world(world)
        stop = world.paused
        sub_title = f"{self.ws.project} · {self._mode()}"
        if stop.all:
            sub_title += " · PAUSED"
        elif stop.domains:
            sub_title += f" · PAUSED: {', '.join(stop.domains)}"
        sub_title += self._kickoff.header(len(self.ws.domains))
        sub_title += self._needs_badge(world)
        if sub_title != self.sub_title:
            self.sub_title = sub_title
        self._show_needs_screen()
        if not message.no_tasks and time.monotonic() - self._git_at > GIT_EVERY_S:
            self._git_at = time.monotonic()
            # After this world is painted: the branches are not part of the first frame
            self.call_after_refresh(self.refresh_git)
        arrived = tuple(n for n in self._ring.new(world.needs) if n.key not in self.dismissed)
        if arrived:
            first = arrived[0]
            more = f" (+{len(arrived) - 1} more)" if len(arrived) > 1 else ""
            sequence = ring_sequence(
                f"comm-node {self.ws.project}: {first.agent} needs you", f"{first.what}{more}"
            )
            self.post_message(NeedsArrived(arrived, sequence))

    # ---- needs you ------------------------------------------------------------------------
    def shown_needs(self, world: World | None = None) -> tuple:
        """The World's items the operator has not dismissed (a dismissed key that is gone
        from the World is forgotten: when it comes back, it is shown again)."""
        world = world or self.world
        if world is None:
            return ()
        self.dismissed &= {n.key for n in world.needs}
        return tuple(n for n in world.needs if n.key not in self.dismissed)

    def _needs_badge(self, world: World) -> str:
        count = len(self.shown_needs(world))
        key = self.keymap_ids.get("needs", "w")  # as rebound in [keymap]
        return f" · {count} need{'s' * (count == 1)} you ({key})" if count else ""

    def _show_needs_screen(self) -> None:
        screen = self.screen
        if isinstance(screen, NeedsScreen):
            screen.show(self.shown_needs(), self.alert_history)

    def on_needs_arrived(self, message: NeedsArrived) -> None:
        """The bell, and a desktop notification through the terminal (OSC 9 / 777: the text
        was made safe by ring_sequence). Nothing to write to in a headless room."""
        self.bell()
        if not self.is_headless and self._driver is not None:
            self._driver.write(message.sequence)

    def action_needs(self) -> None:
        if not isinstance(self.screen, NeedsScreen):
            self.push_screen(NeedsScreen(self.shown_needs(), self.alert_history, self.clock))

    def select_agent(self, name: str) -> bool:
        """Put the agents panel's cursor on this agent (the preview follows it)."""
        panel = self.query_one(AgentsPanel)
        try:
            row = panel.get_row_index(name)
        except Exception:  # a RowDoesNotExist: an agent no longer in the config
            self.notify(f"{name} is not in the agents panel", severity="warning", markup=False)
            return False
        panel.move_cursor(row=row)
        panel.focus()
        return True

    def on_need_action(self, message: NeedAction) -> None:
        need, action = message.need, message.action
        if action == "dismiss":
            self.dismissed.add(need.key)
            self._show_needs_screen()
            self.request_refresh()  # the badge
        elif action == "jump":
            if self.select_agent(need.agent):
                self.pop_screen()
        elif action == "attach":
            if self.select_agent(need.agent):
                self.pop_screen()
                self.action_attach()
        elif action in ("approve", "deny") and need.key not in {n.key for n in self.shown_needs()}:
            # Answered or changed since the list was drawn: a key must answer only the
            # prompt the operator read, not whatever that agent shows now.
            self.notify(f"{need.agent}: that prompt is no longer there", severity="warning")
        elif action == "approve":
            self.approve_agent(need.agent, need.key)
        elif action == "deny":
            self.deny_agent(need.agent, need.key)
        elif action == "answer":
            self.answer_agent(need.agent, need.ref if need.kind == "question" else None)

    def on_clear_alerts(self, _message: ClearAlerts) -> None:
        self.alert_history.clear()
        self.query_one(AgentsPanel).clear_marks()
        self._show_needs_screen()

    # ---- workers' ends: the one place -------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.SUCCESS and worker.group == "act":
            self.notify(f"{worker.name}: {worker.result}"[:300], markup=False)
            self.request_refresh()
        elif event.state == WorkerState.ERROR and worker.error is not None:
            if worker.group == "engine" and not self._panels_gone():
                # No engine: the room reads the world from the files, as it did before
                self.panel(TasksPanel).loading = False
                self._started = True
                self.request_refresh()
            what = FAILED.get(worker.group) or worker.name or worker.group
            self.notify(f"{what}: {one_line(worker.error)}", severity="error", markup=False)
            if worker.group == "act":  # the notice goes away; the log keeps it
                self.run_worker(
                    partial(self.operator.failed, what, worker.error),
                    group="log",
                    thread=True,
                    exit_on_error=False,
                )

    # ---- the panels' messages -------------------------------------------------------------
    def on_agent_highlighted(self, message: AgentHighlighted) -> None:
        if self._panels_gone():
            return  # a highlight that arrives while the room closes (NoMatches otherwise)
        self.query_one(PreviewPanel).follow(message.agent)

    def on_agent_chosen(self, _message: AgentChosen) -> None:
        self.action_attach()

    def on_event_chosen(self, message: EventChosen) -> None:
        self.open_event(message.event)

    def action_filter_events(self) -> None:
        self.query_one(EventsPanel).open_filter()

    def action_open_event(self) -> None:
        ev = self.query_one(EventsPanel).selected
        if ev is not None:
            self.open_event(ev)

    @work(thread=True, group="open", exclusive=True, exit_on_error=False)
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

        self.push_screen(BoundariesScreen(self.world.boundaries if self.world else None))

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


def file_stamp(path: str) -> tuple[int, int] | None:
    """(inode, mtime): a status file is replaced whole on each write (a new inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)
