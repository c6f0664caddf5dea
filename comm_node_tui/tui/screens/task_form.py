"""A native task to add, as a small form (the room's `+`; `comm-node task add` in the CLI).

The form only collects text: the room hands it to coordination/task_edit.py in a worker, so
the checks (unknown domain, duplicate id, missing dependency, cycle) and their one-line
refusals are the CLI's own."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from comm_node_tui.tui.screens.dialogs import DIALOG_CSS

FIELDS = (
    # (input id, label, placeholder)
    ("title", "Title", "what is to be done (required)"),
    ("domain", "Domain", "the domain that does it (empty: any)"),
    ("priority", "Priority", "0 (highest) to 4; empty: 2"),
    ("depends_on", "Depends on", "task ids, separated by spaces or commas"),
    ("done_when", "Done when", "criteria, separated by ';'"),
    ("id", "Id", "empty: the next free id"),
)


def _split(text: str, seps: str) -> list[str]:
    for sep in seps[1:]:
        text = text.replace(sep, seps[0])
    return [part.strip() for part in text.split(seps[0]) if part.strip()]


class TaskFormScreen(ModalScreen[tuple[str | None, dict] | None]):
    """Dismissed with (id or None, fields for task_edit.add_task), or None when cancelled."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Add", id="task-form-save", tooltip="Add the task"),
        Binding("escape", "cancel", "Cancel", id="task-form-cancel", tooltip="Cancel"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="TaskFormScreen") + (
        "TaskFormScreen Label.field { margin-top: 1; }"
    )

    def __init__(self, domain: str | None = None) -> None:
        super().__init__()
        self.domain = domain

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New task in tasks.toml (ctrl+s or enter adds, esc cancels)")
            for key, label, placeholder in FIELDS:
                yield Label(label, classes="field")
                value = (self.domain or "") if key == "domain" else ""
                yield Input(value=value, placeholder=placeholder, id=f"task-{key}")

    def values(self) -> tuple[str | None, dict] | None:
        """What the form holds; None (and a notice) when it cannot be a task yet."""
        get = {key: self.query_one(f"#task-{key}", Input).value.strip() for key, *_ in FIELDS}
        if not get["title"]:
            self.notify("a task needs a title", severity="warning")
            return None
        priority = None
        if get["priority"]:
            try:
                priority = int(get["priority"].upper().lstrip("P"))
            except ValueError:
                self.notify("priority: 0 to 4", severity="warning")
                return None
        fields = {
            "title": get["title"],
            "domain": get["domain"] or None,
            "priority": priority,
            "depends_on": _split(get["depends_on"], " ,") or None,
            "done_when": _split(get["done_when"], ";") or None,
        }
        return (get["id"] or None), fields

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.action_save()

    def action_save(self) -> None:
        out = self.values()
        if out is not None:
            self.dismiss(out)

    def action_cancel(self) -> None:
        self.dismiss(None)
