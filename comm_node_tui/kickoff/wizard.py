"""`comm-node init`: the kickoff wizard. Project, domains, tasks, review, meeting: one step
at a time, with back and next, and each step checked before the next opens.

The wizard only gathers and shows; the files are written by `scaffold.apply` and the
agents started by `meeting.Meeting`, both in workers (the UI writes no protocol file).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Checkbox,
    ContentSwitcher,
    DataTable,
    Header,
    Input,
    Label,
    Select,
    Static,
    TextArea,
)

from comm_node_tui.kickoff.scaffold import DomainCreation
from comm_node_tui.uikit.footer import KeysFooter

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
STEPS = ("project", "domains", "tasks", "review", "meeting")
STEP_TITLES = {
    "project": "1 · Project",
    "domains": "2 · Domains",
    "tasks": "3 · Tasks",
    "review": "4 · Review",
    "meeting": "5 · Kickoff meeting",
}
SKIP_DIRS = {"node_modules", "target", "dist", "build", "__pycache__", "venv"}


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return s or "domain"


def discover(root: str) -> list[dict]:
    """Domain proposals: the workspace's subdirectories and the git repositories below them
    (two levels), skipping hidden and build directories."""
    found: list[dict] = []
    try:
        entries = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return found
    for e in sorted(entries, key=lambda e: e.name):
        if e.name.startswith(".") or e.name in SKIP_DIRS:
            continue
        found.append(
            {
                "name": slug(e.name),
                "path": e.name,
                "git": os.path.isdir(os.path.join(e.path, ".git")),
            }
        )
        try:
            subs = sorted(os.scandir(e.path), key=lambda s: s.name)
        except OSError:
            continue
        for s in subs:
            if s.is_dir(follow_symlinks=False) and os.path.isdir(os.path.join(s.path, ".git")):
                found.append({"name": slug(s.name), "path": f"{e.name}/{s.name}", "git": True})
    return found


def _table(wid: str, *columns: tuple[str, int]) -> DataTable:
    """A row-cursor table with fixed-width columns (added before mounting, as Textual wants)."""
    table = DataTable(id=wid, cursor_type="row")
    for label, width in columns:
        table.add_column(label, width=width)
    return table


@dataclass
class WizardState:
    root: str
    project: str = ""
    # `[tmux] socket`: None until set = a private server named after the project (agents
    # never start in the user's own tmux server); "" = the user's default server
    socket: str | None = None
    domains: list[dict] = field(default_factory=list)  # DomainConfig fields + "create"
    task_source: str = "none"  # none | beads | native
    beads_path: str = ".beads/issues.jsonl"
    tasks: list[dict] = field(default_factory=list)
    base: dict = field(default_factory=dict)  # the existing config's other sections
    existing: bool = False
    # `[agents] sandbox` (issue 23): None until asked = on where bubblewrap and socat are
    sandbox: bool | None = None

    @classmethod
    def load(cls, root: str) -> WizardState:
        state = cls(root=root, project=slug(os.path.basename(root)))
        path = os.path.join(root, "comm-node.toml")
        if not os.path.exists(path):
            return state
        from comm_node_tui.workspace.config import load_config

        try:
            cfg = load_config(path).model_dump(mode="json", exclude_defaults=True)
        except Exception:
            return state  # a broken file: start fresh; the review shows it will be replaced
        state.existing = True
        state.project = cfg.get("project", {}).get("name", state.project)
        # what the file says, even the default server: moving running agents to another
        # server would hide them from the room
        state.socket = cfg.get("tmux", {}).get("socket", "")
        state.domains = [dict(d) for d in cfg.pop("domains", [])]
        tasks = cfg.pop("tasks", {})
        state.task_source = tasks.get("source", "none")
        if state.task_source == "beads":
            state.beads_path = tasks.get("path") or state.beads_path
        if state.task_source == "native":
            state.tasks = _read_native(os.path.join(root, tasks.get("path") or "tasks.toml"))
        cfg.pop("project", None)
        state.sandbox = bool(cfg.get("agents", {}).get("sandbox", False))
        state.base = cfg
        return state

    def sandbox_on(self) -> bool:
        if self.sandbox is not None:
            return self.sandbox
        from comm_node_tui.adapters.agent_cli import CLIS
        from comm_node_tui.workspace.settings import DEFAULTS

        return CLIS[DEFAULTS.agents.cli]().sandbox_unavailable() is None

    def tmux_socket(self) -> str:
        return default_socket(self.project) if self.socket is None else self.socket

    def config_data(self) -> dict:
        data = dict(self.base)
        data["project"] = {"name": self.project}
        data["tmux"] = {**data.get("tmux", {}), "socket": self.tmux_socket()}
        agents = {k: v for k, v in data.get("agents", {}).items() if k != "sandbox"}
        if self.sandbox_on():  # off is the default: written only when on
            agents["sandbox"] = True
        if agents:
            data["agents"] = agents
        else:
            data.pop("agents", None)
        data["domains"] = [
            {k: v for k, v in d.items() if k != "create" and v not in (None, "", [], {})}
            for d in self.domains
        ]
        if self.task_source == "beads":
            data["tasks"] = {"source": "beads", "path": self.beads_path}
        elif self.task_source == "native":
            data["tasks"] = {"source": "native"}
        else:
            data["tasks"] = {"source": "none"}
        return data

    def creations(self) -> dict[str, DomainCreation]:
        out = {}
        for d in self.domains:
            how = d.get("create") or "dir"
            out[d["name"]] = DomainCreation(how, "", f"comm-node/{d['name']}")
        return out


def default_socket(project: str) -> str:
    """The private tmux socket a new workspace gets: `cn-<project>`."""
    return f"cn-{slug(project)}"


def _read_native(path: str) -> list[dict]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError):
        return []
    return [t for t in data.get("tasks", []) if isinstance(t, dict)]


def check_domain(state: WizardState, d: dict, replacing: str | None) -> str | None:
    """Why this domain cannot be added, or None (one line, naming the field)."""
    from comm_node_tui.protocol.globs import validate_pattern

    name = d["name"]
    if not NAME_RE.match(name) or len(name) > 64:
        return f"name: {name!r} must match [a-z0-9][a-z0-9-]*"
    if name in ("operator", "all", "engine", "*"):
        return f"name: '{name}' is reserved"
    if any(x["name"] == name for x in state.domains if x["name"] != replacing):
        return f"name: a domain '{name}' already exists"
    if not d["path"]:
        return "path: required"
    path = d["path"] if os.path.isabs(d["path"]) else os.path.join(state.root, d["path"])
    real, root = os.path.realpath(path), os.path.realpath(state.root)
    inside = real == root or real.startswith(root + os.sep)
    if os.path.exists(path) and not os.path.isdir(path):
        return f"path: {d['path']} is not a directory"
    if not os.path.exists(path) and not inside:
        return f"path: {d['path']} does not exist and is outside the workspace"
    for key in ("scope", "exports"):
        for pattern in d.get(key, []):
            why = validate_pattern(pattern)
            if why:
                return f"{key}: {pattern!r}: {why}"
    for peer in d.get("imports", {}):
        if peer == name:
            return "imports: a domain cannot import from itself"
    budget = d.get("budget_tokens")
    if budget is not None and budget < 0:
        return "budget: must be 0 or more"
    return None


class InitWizard(App):
    TITLE = "comm-node init"
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", id="wizard-next", tooltip="Check this step, go on"),
        Binding("ctrl+b", "back", "Back", id="wizard-back", tooltip="The previous step"),
        Binding("ctrl+q", "quit", "Quit", id="wizard-quit", tooltip="Leave; nothing is written"),
    ]
    CSS = """
    #steps { height: 1fr; padding: 0 1; }
    .step { height: 1fr; }
    .title { text-style: bold; color: $accent; margin: 1 0 0 0; }
    .hint { color: $text-muted; }
    #error { color: $error; height: auto; min-height: 1; }
    #nav { height: 3; align-horizontal: right; }
    #nav Button { margin-left: 1; }
    .form { height: auto; }
    .form Input, .form Select { width: 1fr; }
    .row { height: auto; }
    /* inputs side by side share the row (an Input is as wide as the screen by default: the
       native-task form's second and third inputs were off the right edge) */
    .row Input { width: 1fr; }
    DataTable { height: 8; }
    #review-toml { height: 1fr; }
    #review-files { height: 1fr; }
    #meeting-log { height: 1fr; }
    """

    def __init__(self, root: str, *, meeting_timeout_s: float = 60.0) -> None:
        super().__init__()
        self.state = WizardState.load(root)
        self.step = 0
        self.plan = None
        self.editing: str | None = None
        self.editing_task: str | None = None
        self.meeting_timeout_s = meeting_timeout_s
        self.written = False
        self.result: dict | None = None
        # the socket shown while it is still the one derived from the project's name
        self.auto_socket = self.state.tmux_socket() if self.state.socket is None else None

    # ---- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with ContentSwitcher(id="steps", initial="project"):
            with Vertical(id="project", classes="step"):
                yield Label(STEP_TITLES["project"], classes="title")
                yield Static(Text(self._intro()), classes="hint")
                yield Label("Project name")
                yield Input(self.state.project, id="project-name")
                yield Label("tmux socket for the agents")
                yield Input(
                    self.state.tmux_socket(),
                    placeholder="empty: your own default tmux server",
                    id="project-socket",
                )
                yield Static(
                    "A private tmux server (tmux -L NAME) keeps the agents out of your own "
                    "sessions and key bindings; `comm-node attach` finds them there. Leave it "
                    "empty to run them in your default server.",
                    classes="hint",
                )
                yield Checkbox(
                    "Sandbox each agent's commands (Claude Code's sandbox: bubblewrap, socat)",
                    self.state.sandbox_on(),
                    id="project-sandbox",
                )
                yield Static(self._sandbox_hint(), classes="hint")
            with VerticalScroll(id="domains", classes="step"):
                yield Label(STEP_TITLES["domains"], classes="title")
                yield Static(
                    "One agent per domain. Select a row to edit it; Discover proposes the "
                    "subdirectories and git repositories found here.",
                    classes="hint",
                )
                yield _table(
                    "domain-table",
                    ("Name", 12),
                    ("Path", 20),
                    ("Role", 28),
                    ("Scope", 18),
                    ("Create", 9),
                )
                with Vertical(classes="form"):
                    with Horizontal(classes="row"):
                        yield Input(placeholder="name (backend)", id="d-name")
                        yield Input(placeholder="path (relative or absolute)", id="d-path")
                        yield Select(
                            [
                                ("existing / new directory", "dir"),
                                ("new git repository", "git"),
                                ("git worktree (new branch)", "worktree"),
                            ],
                            value="dir",
                            allow_blank=False,
                            id="d-create",
                        )
                    yield Input(placeholder="role: what this agent does", id="d-role")
                    with Horizontal(classes="row"):
                        yield Input(
                            placeholder="scope globs, comma-separated (default **)", id="d-scope"
                        )
                        yield Input(placeholder="exports (files), comma-separated", id="d-exports")
                    with Horizontal(classes="row"):
                        yield Input(placeholder="imports: peer:file, peer:file", id="d-imports")
                        yield Input(placeholder="agent command (default claude)", id="d-command")
                        yield Input(placeholder="model", id="d-model")
                        yield Input(placeholder="budget tokens", id="d-budget")
                    with Horizontal(classes="row"):
                        yield Button("Add / update", id="d-add", variant="primary")
                        yield Button("Remove", id="d-remove")
                        yield Button("Clear form", id="d-clear")
                        yield Button("Discover", id="d-discover")
            with VerticalScroll(id="tasks", classes="step"):
                yield Label(STEP_TITLES["tasks"], classes="title")
                yield Select(
                    [
                        ("no task plan", "none"),
                        ("a Beads export (bd)", "beads"),
                        ("native tasks, written here", "native"),
                    ],
                    value=self.state.task_source,
                    allow_blank=False,
                    id="t-source",
                )
                yield Input(self.state.beads_path, placeholder="Beads export path", id="t-beads")
                yield _table(
                    "task-table",
                    ("Id", 8),
                    ("Title", 34),
                    ("Domain", 12),
                    ("Depends on", 14),
                    ("Artifacts", 18),
                )
                with Horizontal(classes="row"):
                    yield Input(placeholder="id (T1)", id="t-id")
                    yield Input(placeholder="title", id="t-title")
                    yield Input(placeholder="domain", id="t-domain")
                with Horizontal(classes="row"):
                    yield Input(placeholder="depends on: T1, T2", id="t-deps")
                    yield Input(
                        placeholder="required artifacts: backend:api.yaml", id="t-artifacts"
                    )
                with Horizontal(classes="row"):
                    yield Button("Add / update task", id="t-add", variant="primary")
                    yield Button("Remove task", id="t-remove")
            with Vertical(id="review", classes="step"):
                yield Label(STEP_TITLES["review"], classes="title")
                yield Static("", id="review-summary", classes="hint")
                with Horizontal():
                    yield TextArea("", id="review-toml", read_only=True, language=None)
                    yield _table(
                        "review-files", ("Action", 9), ("File", 44), ("Domain", 10), ("What", 30)
                    )
            with Vertical(id="meeting", classes="step"):
                yield Label(STEP_TITLES["meeting"], classes="title")
                yield Static(
                    "Start every agent in tmux, wait for each to register, then send each its "
                    "START message and first prompt.",
                    classes="hint",
                )
                yield Label("", id="meeting-count")
                yield TextArea("", id="meeting-log", read_only=True)
                with Horizontal(classes="row"):
                    yield Button("Start the agents", id="m-start", variant="primary")
                    yield Button("Finish without starting", id="m-finish")
        yield Label("", id="error")
        with Horizontal(id="nav"):
            yield Button("Back", id="back")
            yield Button("Next", id="next", variant="primary")
        yield KeysFooter()

    def _intro(self) -> str:
        if self.state.existing:
            return (
                f"{self.state.root} already has a comm-node.toml: it is loaded here. The "
                "review step shows what would change before anything is touched."
            )
        return (
            f"No comm-node workspace in {self.state.root} yet: this wizard lays one out. "
            "Nothing is written before the review step."
        )

    def on_mount(self) -> None:
        self._fill_domains()
        self._fill_tasks()
        self._show_step()

    # ---- navigation -----------------------------------------------------------------------
    def _show_step(self) -> None:
        name = STEPS[self.step]
        self.query_one(ContentSwitcher).current = name
        self.sub_title = STEP_TITLES[name]
        self.query_one("#back", Button).disabled = self.step == 0 or self.written
        nxt = self.query_one("#next", Button)
        nxt.label = "Write files" if name == "review" else "Next"
        nxt.display = name != "meeting"
        self.error("")
        if name == "review":
            self._review()
        if name == "tasks":
            self._task_source_changed()
        self._focus_step(name)

    def _focus_step(self, name: str) -> None:
        """Focus the new step's first field (else Next): focus left on a button of the step
        just hidden would take the next Enter (it silently removed the first domain)."""
        step = self.query_one(f"#{name}")
        chain = self.screen.focus_chain
        first = next((w for w in chain if step in w.ancestors), None)
        target = first or self.query_one("#next", Button)
        if target.display and not target.disabled:
            target.focus()
        else:
            self.set_focus(None)

    def _shown(self, event: Button.Pressed) -> bool:
        """Only a button on the step on screen acts (a hidden one can still get a press)."""
        step = self.query_one(f"#{STEPS[self.step]}")
        return step in event.button.ancestors

    def error(self, text: str) -> None:
        self.query_one("#error", Label).update(Text(text))
        if text:
            self.bell()

    def action_next(self) -> None:
        name = STEPS[self.step]
        problem = getattr(self, f"_leave_{name}")()
        if problem:
            self.error(problem)
            return
        if name == "review":
            self.write_files()
            return
        if self.step < len(STEPS) - 1:
            self.step += 1
            self._show_step()

    def action_back(self) -> None:
        if self.step > 0 and not self.written:
            self.step -= 1
            self._show_step()

    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    # ---- step 1: project ------------------------------------------------------------------
    @on(Input.Changed, "#project-name")
    def _project_renamed(self, event: Input.Changed) -> None:
        """A socket nobody changed follows the project's name."""
        socket = self.query_one("#project-socket", Input)
        if self.auto_socket is not None and socket.value == self.auto_socket:
            self.auto_socket = default_socket(event.value.strip() or "project")
            socket.value = self.auto_socket

    def _leave_project(self) -> str | None:
        from pydantic import ValidationError

        from comm_node_tui.workspace.config import TmuxConfig

        name = self.query_one("#project-name", Input).value.strip()
        if not name:
            return "project name: required"
        if len(name) > 100:
            return "project name: at most 100 characters"
        socket = self.query_one("#project-socket", Input).value.strip()
        try:
            TmuxConfig(socket=socket)
        except ValidationError as exc:
            why = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
            return f"tmux socket: {why}"
        self.state.project = name
        self.state.socket = socket
        self.state.sandbox = self.query_one("#project-sandbox", Checkbox).value
        return None

    def _sandbox_hint(self) -> str:
        from comm_node_tui.adapters.agent_cli import CLIS
        from comm_node_tui.workspace.settings import DEFAULTS

        why = CLIS[DEFAULTS.agents.cli]().sandbox_unavailable()
        walls = (
            "Each agent's Bash commands may then write only in its own domain and the "
            "comm-node state they need, never read ~/.ssh and the like (docs/security.md)."
        )
        return walls + (f" Not available here: {why}; agents would not start." if why else "")

    # ---- step 2: domains ------------------------------------------------------------------
    def _fill_domains(self) -> None:
        table = self.query_one("#domain-table", DataTable)
        table.clear()
        for d in self.state.domains:
            table.add_row(
                Text(d["name"]),
                Text(d["path"]),
                Text(d.get("role", "")),
                Text(", ".join(d.get("scope", ["**"]))),
                Text(d.get("create", "") or "-"),
                key=d["name"],
            )

    def _form_domain(self) -> dict | str:
        v = {
            k: self.query_one(f"#d-{k}", Input).value.strip()
            for k in (
                "name",
                "path",
                "role",
                "scope",
                "exports",
                "imports",
                "command",
                "model",
                "budget",
            )
        }
        imports: dict[str, list[str]] = {}
        for item in _split(v["imports"]):
            peer, sep, file = item.partition(":")
            if not sep or not peer.strip() or not file.strip():
                return f"imports: {item!r} must be peer:file"
            imports.setdefault(peer.strip(), []).append(file.strip())
        budget = None
        if v["budget"]:
            try:
                budget = int(v["budget"].replace("_", "").replace(",", ""))
            except ValueError:
                return f"budget: {v['budget']!r} is not a whole number"
        d = {
            "name": v["name"],
            "path": v["path"] or v["name"],
            "role": v["role"],
            "scope": _split(v["scope"]) or ["**"],
            "exports": _split(v["exports"]),
            "imports": imports,
            "command": v["command"] or None,
            "model": v["model"] or None,
            "budget_tokens": budget,
        }
        path = d["path"] if os.path.isabs(d["path"]) else os.path.join(self.state.root, d["path"])
        create = self.query_one("#d-create", Select).value
        d["create"] = None if os.path.isdir(path) else create
        return d

    @on(Button.Pressed, "#d-add")
    def add_domain(self, event: Button.Pressed | None = None) -> None:
        if event is not None and not self._shown(event):
            return
        d = self._form_domain()
        if isinstance(d, str):
            self.error(d)
            return
        problem = check_domain(self.state, d, self.editing)
        if problem:
            self.error(f"domain {d['name'] or '?'}: {problem}")
            return
        if self.editing is not None:
            self.state.domains = [d if x["name"] == self.editing else x for x in self.state.domains]
        else:
            self.state.domains.append(d)
        self.editing = None
        self._fill_domains()
        self._clear_domain_form()
        self.error("")

    @on(Button.Pressed, "#d-remove")
    def remove_domain(self, event: Button.Pressed | None = None) -> None:
        if event is not None and not self._shown(event):
            return
        table = self.query_one("#domain-table", DataTable)
        if not self.state.domains:
            return
        name = self.editing or self.state.domains[table.cursor_row]["name"]
        self.state.domains = [d for d in self.state.domains if d["name"] != name]
        self.editing = None
        self._fill_domains()
        self._clear_domain_form()

    @on(Button.Pressed, "#d-clear")
    def _clear_pressed(self, event: Button.Pressed) -> None:
        if self._shown(event):
            self._clear_domain_form()

    def _clear_domain_form(self) -> None:
        for k in (
            "name",
            "path",
            "role",
            "scope",
            "exports",
            "imports",
            "command",
            "model",
            "budget",
        ):
            self.query_one(f"#d-{k}", Input).value = ""
        self.query_one("#d-create", Select).value = "dir"
        self.editing = None

    @on(Button.Pressed, "#d-discover")
    def discover_domains(self, event: Button.Pressed | None = None) -> None:
        if event is not None and not self._shown(event):
            return
        have = {d["path"] for d in self.state.domains} | {d["name"] for d in self.state.domains}
        added = 0
        for p in discover(self.state.root):
            if p["path"] in have or p["name"] in have:
                continue
            d = {
                "name": p["name"],
                "path": p["path"],
                "role": "",
                "scope": ["**"],
                "exports": [],
                "imports": {},
                "create": None,
            }
            if check_domain(self.state, d, None) is None:
                self.state.domains.append(d)
                have |= {p["path"], p["name"]}
                added += 1
        self._fill_domains()
        self.notify(f"discovered {added} domain(s)" if added else "nothing new found")

    @on(DataTable.RowSelected, "#domain-table")
    def edit_domain(self, event: DataTable.RowSelected) -> None:
        name = event.row_key.value
        d = next((x for x in self.state.domains if x["name"] == name), None)
        if d is None:
            return
        self.editing = name
        self.query_one("#d-name", Input).value = d["name"]
        self.query_one("#d-path", Input).value = d["path"]
        self.query_one("#d-role", Input).value = d.get("role", "")
        self.query_one("#d-scope", Input).value = ", ".join(d.get("scope", ["**"]))
        self.query_one("#d-exports", Input).value = ", ".join(d.get("exports", []))
        self.query_one("#d-imports", Input).value = ", ".join(
            f"{p}:{f}" for p, files in d.get("imports", {}).items() for f in files
        )
        self.query_one("#d-command", Input).value = d.get("command") or ""
        self.query_one("#d-model", Input).value = d.get("model") or ""
        b = d.get("budget_tokens")
        self.query_one("#d-budget", Input).value = "" if b is None else str(b)
        self.query_one("#d-create", Select).value = d.get("create") or "dir"

    def _leave_domains(self) -> str | None:
        if any(self.query_one(f"#d-{k}", Input).value.strip() for k in ("name", "path")):
            return "the domain form is filled in: press Add / update (or Clear form) first"
        if not self.state.domains:
            return "domains: add at least one (or Discover)"
        names = {d["name"] for d in self.state.domains}
        for d in self.state.domains:
            for peer in d.get("imports", {}):
                if peer not in names:
                    return f"domain {d['name']}: imports: unknown domain '{peer}'"
        return None

    # ---- step 3: tasks --------------------------------------------------------------------
    @on(Select.Changed, "#t-source")
    def _task_source_changed(self) -> None:
        source = self.query_one("#t-source", Select).value
        self.query_one("#t-beads", Input).display = source == "beads"
        native = source == "native"
        for wid in (
            "#task-table",
            "#t-id",
            "#t-title",
            "#t-domain",
            "#t-deps",
            "#t-artifacts",
            "#t-add",
            "#t-remove",
        ):
            self.query_one(wid).display = native

    def _fill_tasks(self) -> None:
        table = self.query_one("#task-table", DataTable)
        table.clear()
        for t in self.state.tasks:
            table.add_row(
                Text(t["id"]),
                Text(t.get("title", "")),
                Text(t.get("domain", "")),
                Text(", ".join(t.get("depends_on", []))),
                Text(", ".join(t.get("required_artifacts", []))),
                key=t["id"],
            )

    @on(Button.Pressed, "#t-add")
    def add_task(self, event: Button.Pressed | None = None) -> None:
        if event is not None and not self._shown(event):
            return
        v = {
            k: self.query_one(f"#t-{k}", Input).value.strip()
            for k in ("id", "title", "domain", "deps", "artifacts")
        }
        names = {d["name"] for d in self.state.domains}
        ids = {t["id"] for t in self.state.tasks if t["id"] != self.editing_task}
        problem = None
        if not v["id"] or any(c.isspace() for c in v["id"]):
            problem = "id: required, without spaces"
        elif v["id"] in ids:
            problem = f"id: a task '{v['id']}' already exists"
        elif not v["title"]:
            problem = "title: required"
        elif v["domain"] and v["domain"] not in names:
            problem = f"domain: unknown domain '{v['domain']}' (known: {', '.join(sorted(names))})"
        else:
            for dep in _split(v["deps"]):
                if dep not in ids:
                    problem = f"depends on: unknown task '{dep}' (add it first)"
                    break
        if problem:
            self.error(f"task {v['id'] or '?'}: {problem}")
            return
        t = {
            "id": v["id"],
            "title": v["title"],
            "domain": v["domain"],
            "depends_on": _split(v["deps"]),
            "required_artifacts": _split(v["artifacts"]),
        }
        if self.editing_task:
            self.state.tasks = [t if x["id"] == self.editing_task else x for x in self.state.tasks]
        else:
            self.state.tasks.append(t)
        self.editing_task = None
        for k in ("id", "title", "domain", "deps", "artifacts"):
            self.query_one(f"#t-{k}", Input).value = ""
        self._fill_tasks()
        self.error("")

    @on(Button.Pressed, "#t-remove")
    def remove_task(self, event: Button.Pressed | None = None) -> None:
        if event is not None and not self._shown(event):
            return
        table = self.query_one("#task-table", DataTable)
        if self.state.tasks:
            tid = self.editing_task or self.state.tasks[table.cursor_row]["id"]
            self.state.tasks = [t for t in self.state.tasks if t["id"] != tid]
            self.editing_task = None
            self._fill_tasks()

    @on(DataTable.RowSelected, "#task-table")
    def edit_task(self, event: DataTable.RowSelected) -> None:
        t = next((x for x in self.state.tasks if x["id"] == event.row_key.value), None)
        if t is None:
            return
        self.editing_task = t["id"]
        self.query_one("#t-id", Input).value = t["id"]
        self.query_one("#t-title", Input).value = t.get("title", "")
        self.query_one("#t-domain", Input).value = t.get("domain", "")
        self.query_one("#t-deps", Input).value = ", ".join(t.get("depends_on", []))
        self.query_one("#t-artifacts", Input).value = ", ".join(t.get("required_artifacts", []))

    def _leave_tasks(self) -> str | None:
        source = self.query_one("#t-source", Select).value
        self.state.task_source = str(source)
        if source == "beads":
            path = self.query_one("#t-beads", Input).value.strip()
            full = path if os.path.isabs(path) else os.path.join(self.state.root, path)
            if not path or not os.path.isfile(full):
                return f"Beads export: {path or '(empty)'} is not a file"
            self.state.beads_path = path
        if source == "native":
            if self.query_one("#t-id", Input).value.strip():
                return "the task form is filled in: press Add / update task first"
            names = {d["name"] for d in self.state.domains}
            for t in self.state.tasks:
                if t.get("domain") and t["domain"] not in names:
                    return f"task {t['id']}: domain '{t['domain']}' was removed"
        return None

    # ---- step 4: review -------------------------------------------------------------------
    def _build(self):
        from comm_node_tui.kickoff.scaffold import build_plan
        from comm_node_tui.workspace.config import WorkspaceConfig, format_validation_error

        data = self.state.config_data()
        try:
            config = WorkspaceConfig.model_validate(data)
        except Exception as exc:
            from pydantic import ValidationError

            if isinstance(exc, ValidationError):
                return None, format_validation_error("comm-node.toml", exc, data)[0]
            raise
        tasks = self.state.tasks if self.state.task_source == "native" else None
        try:
            return build_plan(self.state.root, config, tasks, self.state.creations()), None
        except Exception as exc:  # e.g. an unreadable settings.json: say which
            return None, str(exc)

    def _review(self) -> None:
        plan, problem = self._build()
        self.plan = plan
        toml = self.query_one("#review-toml", TextArea)
        files = self.query_one("#review-files", DataTable)
        files.clear()
        if plan is None:
            toml.text = ""
            self.error(problem or "cannot build the plan")
            return
        toml.text = plan.config_text
        for c in plan.changes:
            files.add_row(
                Text(c.action),
                Text(os.path.relpath(c.path, self.state.root)),
                Text(c.domain or "-"),
                Text(c.what),
            )
        n = len(plan.pending)
        self.query_one("#review-summary", Static).update(
            Text(
                f"{n} change(s) to make, {len(plan.changes) - n} file(s) already up to date. "
                "Write files applies them; Back changes the plan."
                if n
                else "Everything is up to date: nothing to write."
            )
        )

    def _leave_review(self) -> str | None:
        if self.plan is None:
            return "the plan has problems (above); go back and fix them"
        return None

    @work(thread=True, exclusive=True, group="write")
    def write_files(self) -> None:
        from comm_node_tui.kickoff.scaffold import apply

        try:
            done = apply(self.plan)
        except Exception as exc:
            self.call_from_thread(self.error, f"writing failed: {exc}")
            return
        self.call_from_thread(self._written, len(done))

    def _written(self, n: int) -> None:
        self.written = True
        self.notify(f"{n} change(s) written")
        self.step = STEPS.index("meeting")
        self._show_step()

    # ---- step 5: the meeting --------------------------------------------------------------
    @on(Button.Pressed, "#m-finish")
    def finish(self, event: Button.Pressed | None = None) -> None:
        if event is not None and not self._shown(event):
            return
        self.exit({"written": self.written, "meeting": self.result})

    @on(Button.Pressed, "#m-start")
    def start_meeting(self, event: Button.Pressed | None = None) -> None:
        if event is not None and not self._shown(event):
            return
        self.query_one("#m-start", Button).disabled = True
        self.run_meeting()

    @work(thread=True, exclusive=True, group="meeting")
    def run_meeting(self) -> None:
        from comm_node_tui.kickoff.meeting import Meeting
        from comm_node_tui.workspace.discovery import load_workspace

        try:
            ws = load_workspace(self.state.root)
            meeting = Meeting(
                ws,
                timeout_s=self.meeting_timeout_s,
                on_progress=lambda p: self.call_from_thread(self._progress, p),
            )
            result = meeting.run()
        except Exception as exc:
            self.call_from_thread(self.error, f"the meeting failed: {exc}")
            self.call_from_thread(self._meeting_enabled)
            return
        self.call_from_thread(self._met, result)

    def _meeting_enabled(self) -> None:
        self.query_one("#m-start", Button).disabled = False

    def _progress(self, p: dict) -> None:
        self.query_one("#meeting-count", Label).update(
            Text(f"registered {len(p['registered'])}/{p['total']}")
        )
        log = self.query_one("#meeting-log", TextArea)
        log.text += f"{p['note']}\n"

    def _met(self, result: dict) -> None:
        self.result = result
        log = self.query_one("#meeting-log", TextArea)
        log.text += f"started: {', '.join(result['started']) or 'none'}\n"
        for name, why in sorted(result["failed"].items()):
            log.text += f"NOT started: {name}: {why}\n"
        self.query_one("#m-finish", Button).label = "Finish"


def run_wizard(root: str) -> int:
    result = InitWizard(root).run()
    if not result or not result.get("written"):
        print("comm-node init: nothing written")
        return 1
    meeting = result.get("meeting")
    if meeting:
        print(f"kickoff: started {', '.join(meeting['started']) or 'none'}")
    print(f"workspace ready in {root}; open the control room with `comm-node`")
    return 0
