"""The agents panel: state, task, heartbeat, budget, burn and git, one row per agent.

It owns the alert marks: an agent is marked (`! name`) when an alert names it or when it
comes to wait on a dialog, until its row is selected."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text

from comm_node_tui.engine.world import AgentState, AgentView, BudgetView, Health, World
from comm_node_tui.tui.messages import AgentChosen, AgentHighlighted
from comm_node_tui.tui.numbers import count, percent
from comm_node_tui.tui.text import safe
from comm_node_tui.tui.widgets.keyed_table import KeyedTable

GLYPHS = {
    "busy": ("●", "bold green"),
    "idle": ("○", ""),
    "waiting": ("?", "bold yellow"),
    "blocked": ("■", "bold red"),
    "stale": ("◐", "yellow"),
    "stuck": ("◐", "yellow"),  # busy, no hook, a screen that does not move
    "silent": ("◌", "yellow"),  # busy and unseen: no pane, no process, no word
    "gone": ("✝", "bold red"),  # its process is gone (locks kept for a restart, a while)
    "lost": ("✕", "bold red"),
    "dead": ("✝", "bold red"),
    "ended": ("–", "dim"),
    "done": ("✓", "green"),
    "starting": ("…", ""),
    "error": ("!", "bold red"),
    "unknown": ("·", "dim"),
    "paused": ("‖", "bold magenta"),  # the operator paused it (comm-node pause)
}
LABELS = ("Agent", "State", "Task", "Progress", "Beat", "Budget", "Tok/min", "Git", "CPU/mem")
# Fixed widths: the table does not jump as values change, and renders the same every time.
WIDTHS = (14, 11, 10, 40, 5, 11, 7, 22, 10)
# What a narrow room keeps: who, in what state, how much budget and how fast it burns, on
# what; the progress line takes the width left, the heartbeat age and git go first, and the
# process figures (issue 23: a noisy neighbour) before them.
IMPORTANCE = (
    "Agent", "State", "Budget", "Tok/min", "Task", "Progress", "Beat", "Git", "CPU/mem",
)  # fmt: skip
TROUBLE = (Health.LOST, Health.GONE, Health.STUCK, Health.SILENT)


def shown_state(agent: AgentView) -> str:
    if agent.state in (AgentState.DEAD, AgentState.ENDED):
        return agent.state
    if agent.health in TROUBLE:
        return agent.health  # (engine/agent_state.py: silence alone is never shown as trouble)
    return agent.state


def age_text(age: float | None) -> str:
    """A heartbeat age at a grain that changes rarely: the room repaints 50 rows for it."""
    if age is None:
        return "-"
    if age < 10:
        return "now"
    if age < 60:
        return f"{int(age // 10) * 10}s"
    if age < 3600:
        return f"{int(age // 60)}m"
    return f"{int(age // 3600)}h"


def bar(remaining: int | None, limit: int | None, width: int = 6) -> Text:
    if not limit:
        return Text("∞", style="dim")
    frac = max(0.0, min(1.0, (remaining or 0) / limit))
    full = round(frac * width)
    style = "green" if frac > 0.3 else "yellow" if frac > 0.1 else "bold red"
    return Text("▮" * full + "▯" * (width - full) + f" {percent(frac):>4}", style=style)


def resources_text(agent: AgentView) -> Text:
    """`37% 310M`: the agent's process tree, as the engine last sampled it ("-" unknown)."""
    if agent.rss_bytes is None:
        return Text("-", style="dim")
    mib = agent.rss_bytes / (1 << 20)
    mem = f"{mib / 1024:.1f}G" if mib >= 1000 else f"{mib:.0f}M"
    cpu = "" if agent.cpu_pct is None else f"{agent.cpu_pct:.0f}% "
    busy = agent.cpu_pct is not None and agent.cpu_pct >= 80
    return Text(cpu + mem, style="bold yellow" if busy else "")


class AgentsPanel(KeyedTable):
    DEFAULT_CSS = "AgentsPanel { height: 1fr; }"
    COLUMNS = tuple(zip(LABELS, WIDTHS, strict=True))
    IMPORTANCE = IMPORTANCE
    FLEX = ("Progress", 12)

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.border_title = "1 Agents"
        self.alerts: set[str] = set()
        self._waiting: set[str] = set()  # agents shown waiting in the last world
        self._world: World | None = None
        self._git: Mapping[str, str] = {}
        # name -> (what its row shows, as plain values; the cells made from them): a refresh
        # of 200 agents where few changed builds few rows (Text objects, spans, signatures).
        self._made: dict[str, tuple[tuple, tuple[Text, ...]]] = {}

    @property
    def selected(self) -> str | None:
        return self.selected_key

    def show(self, world: World, git: Mapping[str, str]) -> None:
        # An agent that comes to need the human (a dialog on its screen: permission, trust,
        # API key) is marked, whether or not an event said so (the room may start late).
        waiting = {a.name for a in world.agents if a.state == AgentState.WAITING}
        self.alerts |= waiting - self._waiting
        self._waiting = waiting
        self._world, self._git = world, git
        self._redraw()

    def mark(self, name: str) -> None:
        """An alert names this agent: marked until its row is selected."""
        self.alerts.add(name)
        self._redraw()

    def clear_marks(self) -> None:
        """The operator cleared the alert history: no row is marked any more."""
        self.alerts.clear()
        self._redraw()

    def _redraw(self) -> None:
        world = self._world
        if world is None:
            return
        budgets = {b.domain: b for b in world.budgets}
        rows = [(a.name, self._cells(a, budgets.get(a.name), world)) for a in world.agents]
        # A domain removed from comm-node.toml leaves the table, and its alert with it.
        removed = self.sync(rows)
        self.alerts.difference_update(removed)
        for name in removed:
            self._made.pop(name, None)

    def _cells(self, a: AgentView, budget: BudgetView | None, world: World) -> tuple[Text, ...]:
        state = shown_state(a)
        if world.paused.covers(a.name) and state not in (AgentState.DEAD, AgentState.ENDED):
            state = "paused"  # the operator's stop: what it was doing no longer goes on
        usage = world.usage_of(a.name)
        shown = (
            a.name in self.alerts,
            str(state),
            a.task,
            a.progress,
            age_text(a.heartbeat_age_s),
            a.stale,
            budget.remaining_tokens if budget else None,
            budget.budget_tokens if budget else None,
            usage.tokens_per_min if usage else 0,
            self._git.get(a.name, ""),
            a.cpu_pct,
            a.rss_bytes,
            a.node,  # [cluster]: the machine that runs it, when not this one
        )
        made = self._made.get(a.name)
        if made is not None and made[0] == shown:
            return made[1]  # the same cells: the table sees them unchanged at once
        alert, state, task, progress, age, stale, remaining, limit, rate, git, _cpu, _rss, node = (
            shown
        )
        name = a.name + (f" @{node}" if node else "")
        glyph, style = GLYPHS.get(state, GLYPHS["unknown"])
        cells = (
            safe(("! " if alert else "") + name, 32, "bold reverse red" if alert else "bold"),
            Text(f"{glyph} {state}", style=style),
            safe(task or "", 10),
            safe(progress or "", 40),
            Text(age, style="yellow" if stale else ""),
            bar(remaining, limit),
            Text(count(rate)),
            safe(git, 22),
            resources_text(a),
        )
        self._made[a.name] = (shown, cells)
        return cells

    def on_data_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        event.stop()
        name = event.row_key.value if event.row_key else None
        if name is None:
            return
        if name in self.alerts:  # seen: the mark goes
            self.alerts.discard(name)
            self._redraw()
        self.post_message(AgentHighlighted(name))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        if event.row_key and event.row_key.value:
            self.post_message(AgentChosen(event.row_key.value))
