"""The agents panel: state, task, heartbeat, budget, burn and git, one row per agent."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from comm_node_tui.tui.text import safe

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
}
COLUMNS = ("Agent", "State", "Task", "Progress", "Beat", "Budget", "Tok/min", "Git")
# Fixed widths: the table does not jump as values change, and renders the same every time.
WIDTHS = (14, 11, 10, 26, 5, 12, 7, 22)


def shown_state(agent: dict) -> str:
    state = agent.get("state") or "unknown"
    if state in ("dead", "ended"):
        return state
    health = agent.get("health")
    if health in ("lost", "gone", "stuck", "silent"):
        return health  # (engine/agent_state.py: silence alone is never shown as trouble)
    if agent.get("lost"):
        return "lost"
    if agent.get("stale"):
        return "stale"
    return state if state in GLYPHS else "unknown"


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
    return Text("▮" * full + "▯" * (width - full) + f" {frac:4.0%}", style=style)


class AgentsPanel(DataTable):
    DEFAULT_CSS = "AgentsPanel { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.border_title = "1 Agents"
        self.alerts: set[str] = set()
        self._shown: dict[str, tuple] = {}  # what each row shows, to touch only changes
        # Columns now, not in on_mount: the first world update may arrive before it runs.
        for c, w in zip(COLUMNS, WIDTHS, strict=True):
            self.add_column(c, key=c, width=w)

    @property
    def selected(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def show(
        self, world: dict, git: dict[str, str], budgets: dict[str, dict], burn: dict[str, float]
    ) -> None:
        # A domain removed from comm-node.toml leaves the table (and its alert with it).
        present = {a["name"] for a in world.get("agents", [])}
        for name in [n for n in self._shown if n not in present and "agents" in world]:
            del self._shown[name]
            self.alerts.discard(name)
            if name in self.rows:
                self.remove_row(name)
        for a in world.get("agents", []):
            name = a["name"]
            state = shown_state(a)
            glyph, style = GLYPHS.get(state, GLYPHS["unknown"])
            age = a.get("heartbeat_age_s")
            b = budgets.get(name, {})
            cells = (
                safe(
                    ("! " if name in self.alerts else "") + name,
                    32,
                    "bold reverse red" if name in self.alerts else "bold",
                ),
                Text(f"{glyph} {state}", style=style),
                safe(a.get("task") or "", 10),
                safe(a.get("progress") or "", 26),
                Text(age_text(age), style="yellow" if a.get("stale") else ""),
                bar(b.get("remaining_tokens"), b.get("budget_tokens")),
                Text(f"{burn.get(name, 0):.0f}"),
                safe(git.get(name, ""), 22),
            )
            plain_cells = tuple((c.plain, str(c.style)) for c in cells)
            before = self._shown.get(name)
            if before == plain_cells:
                continue
            self._shown[name] = plain_cells
            if name in self.rows and before is not None:
                for col, value, old, new in zip(COLUMNS, cells, before, plain_cells, strict=True):
                    if old != new:
                        self.update_cell(name, col, value)
            else:
                self.add_row(*cells, key=name)
