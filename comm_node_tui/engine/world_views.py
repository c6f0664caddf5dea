"""The parts of the World: frozen, typed views of agents, panes, tasks, locks, budgets,
usage, artifacts and the last boundary check.

Each view is built once per snapshot from what its owner produced (a Task, a Lock, the
engine's pane record, budgets.snapshot(), the usage summary, the boundary report) and never
changes after: the engine's thread builds it and the UI thread reads it without a lock.
`to_json()` gives back exactly the dict `comm-node status --json` has always printed (same
keys, same order: it is a public interface, tests/test_world.py holds it to that).

Records that come from files other processes write (a pane record read from agents.json, a
boundary report from boundaries.json) are read defensively: a value of the wrong type
becomes the field's empty value instead of reaching the room as something else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from comm_node_tui.engine.agent_state import AgentState, Health

TYPE_CHECKING = False  # annotations only: typing costs `status --json` its import time
if TYPE_CHECKING:
    from comm_node_tui.coordination.tasks import Task


def _str(v: object) -> str:
    return v if isinstance(v, str) else ""


def _opt_str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _int(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _opt_int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _num(v: object) -> float:
    """A number as it was (an int stays an int: status --json prints it unchanged)."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _opt_num(v: object) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _strs(v: object) -> tuple[str, ...]:
    return tuple(x for x in v if isinstance(x, str)) if isinstance(v, (list, tuple)) else ()


def frozen_map(d: dict) -> Mapping:
    """A read-only view of a dict built for this snapshot alone (nobody else holds it)."""
    return MappingProxyType(d)


# ---- agents --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PaneView:
    """The engine's record of an agent's tmux pane and what its screen shows."""

    id: str
    pid: int | None
    dead: bool
    exit_status: int | None
    activity: int
    acted: float | None
    acted_kind: str | None  # how comm-node last acted: typed, interrupt, answer
    screen_state: AgentState
    dialog: str | None
    screen_raw: AgentState | None  # the latest capture (the debounced state may lag)
    screen_at: float | None  # when that capture was taken (wall clock)
    screen_since: float | None

    @classmethod
    def parse(cls, d: Mapping) -> PaneView:
        raw = d.get("screen_raw")
        return cls(
            id=_str(d.get("pane")),
            pid=_opt_int(d.get("pid")),
            dead=bool(d.get("dead")),
            exit_status=_opt_int(d.get("exit_status")),
            activity=_int(d.get("activity")),
            acted=_opt_num(d.get("acted")),
            acted_kind=_opt_str(d.get("acted_kind")),
            screen_state=AgentState.of(d.get("screen_state") or "unknown"),
            dialog=_opt_str(d.get("dialog")),
            screen_raw=None if raw is None else AgentState.of(raw),
            screen_at=_opt_num(d.get("screen_at")),
            screen_since=_opt_num(d.get("screen_since")),
        )

    def to_json(self) -> dict:
        return {
            "pane": self.id,
            "pid": self.pid,
            "dead": self.dead,
            "exit_status": self.exit_status,
            "activity": self.activity,
            "acted": self.acted,
            "acted_kind": self.acted_kind,
            "screen_state": str(self.screen_state),
            "dialog": self.dialog,
            "screen_raw": None if self.screen_raw is None else str(self.screen_raw),
            "screen_at": self.screen_at,
            "screen_since": self.screen_since,
        }


@dataclass(frozen=True, slots=True)
class AgentView:
    """One agent as shown: its state (hooks corrected by the screen) and its health."""

    name: str
    state: AgentState
    hook_state: AgentState | None  # the hooks' (or the agent's CLI's) last word
    task: str | None
    progress: str | None
    last_heartbeat: str | None
    heartbeat_age_s: float | None
    health: Health
    role: str
    problem: str | None  # why its status.json could not be believed, if so
    pane: PaneView | None = None  # None: not in a pane comm-node can see
    context: ContextUsage | None = None  # how full its context window is (None: not measured)
    # its process tree's CPU (100 = one core) and resident memory, sampled by the engine
    # every few seconds (engine/resources.py); None: not measured (no engine, no pane).
    # Left out of to_json: its keys stay what they were.
    cpu_pct: float | None = None
    rss_bytes: int | None = None
    # ([cluster]) the machine whose engine runs this agent when it is not this one; the row
    # is what that engine last published (read-only here). to_json adds "node" only then.
    node: str | None = None

    @property
    def stale(self) -> bool:
        return self.health in (Health.STUCK, Health.SILENT)

    @property
    def lost(self) -> bool:
        return self.health == Health.LOST

    @property
    def dialog(self) -> str | None:
        return self.pane.dialog if self.pane is not None else None

    def to_json(self) -> dict:
        out: dict[str, object] = {
            "name": self.name,
            "state": str(self.state),
            "hook_state": None if self.hook_state is None else str(self.hook_state),
            "task": self.task,
            "progress": self.progress,
            "last_heartbeat": self.last_heartbeat,
            "heartbeat_age_s": self.heartbeat_age_s,
            "health": str(self.health),
            "stale": self.stale,
            "lost": self.lost,
            "role": self.role,
            "problem": self.problem,
        }
        if self.pane is not None:
            out["pane"] = self.pane.to_json()
            out["dialog"] = self.pane.dialog
        out["context"] = None if self.context is None else self.context.to_json()
        if self.node is not None:
            out["node"] = self.node
        return out


# ---- tasks ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TaskCounts:
    ready: int = 0
    in_progress: int = 0
    blocked: int = 0
    done: int = 0
    open: int = 0  # not done, not running, not blocked ("ready" is a subset of it)

    @property
    def total(self) -> int:
        return self.open + self.in_progress + self.blocked + self.done

    @classmethod
    def parse(cls, d: Mapping) -> TaskCounts:
        return cls(**{k: _int(d.get(k)) for k in cls.__slots__})

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class TaskDep:
    id: str
    type: str


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task as `task list --json` shows it (the world lists the ready ones)."""

    id: str
    title: str
    domain: str | None
    priority: int
    status: str
    type: str
    assignee: str | None
    parent: str | None
    labels: tuple[str, ...]
    depends_on: tuple[TaskDep, ...]
    required_artifacts: tuple[str, ...]

    @classmethod
    def of(cls, t: Task) -> TaskRecord:
        """From a loaded task, as its `to_json()` shows it (built directly: the world lists
        every ready task on every refresh)."""
        return cls(
            id=t.id,
            title=t.title,
            domain=t.domain,
            priority=t.priority,
            status=t.status,
            type=t.issue_type,
            assignee=t.assignee,
            parent=t.parent,
            labels=tuple(t.labels),
            depends_on=tuple(TaskDep(x, k) for k, x, _m in t.deps),
            required_artifacts=tuple(t.required_artifacts),
        )

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "domain": self.domain,
            "priority": self.priority,
            "status": self.status,
            "type": self.type,
            "assignee": self.assignee,
            "parent": self.parent,
            "labels": list(self.labels),
            "depends_on": [{"id": x.id, "type": x.type} for x in self.depends_on],
            "required_artifacts": list(self.required_artifacts),
        }


@dataclass(frozen=True, slots=True)
class TaskNode:
    """A task in the graph the tasks panel draws: deps are its non-parent dependencies."""

    title: str
    status: str
    domain: str | None
    assignee: str | None
    priority: int
    parent: str | None
    deps: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "title": self.title,
            "status": self.status,
            "domain": self.domain,
            "assignee": self.assignee,
            "priority": self.priority,
            "parent": self.parent,
            "deps": list(self.deps),
        }


@dataclass(frozen=True, slots=True)
class TasksView:
    counts: TaskCounts
    ready: tuple[TaskRecord, ...]
    problems: tuple[str, ...]  # task sources that could not be read, one line each

    @property
    def ready_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.ready)

    def to_json(self) -> dict:
        return {
            "counts": self.counts.to_json(),
            "ready": [t.to_json() for t in self.ready],
            "problems": list(self.problems),
        }


class TaskGraph(Mapping[str, TaskNode]):
    """The task graph, read-only, with what the world derived from the same loaded tasks
    (counts, ready, why blocked). The engine hands an earlier World's graph back while its
    tasks have not changed (tasks_version): the derived parts come with it instead of being
    built again on every refresh (a plan of thousands of tasks)."""

    __slots__ = ("_blocked", "_nodes", "_source", "_tasks")

    def __init__(
        self,
        nodes: dict[str, TaskNode],
        tasks: TasksView,
        blocked: Mapping[str, tuple[str, ...]],
        source: object,
    ) -> None:
        self._nodes = nodes
        self._source = source  # the loaded tasks it was built from: compared by identity
        self._tasks = tasks
        self._blocked = blocked

    @property
    def tasks(self) -> TasksView:
        return self._tasks

    @property
    def blocked(self) -> Mapping[str, tuple[str, ...]]:
        return self._blocked

    def built_from(self, source: object) -> bool:
        return source is self._source

    def __getitem__(self, key: str) -> TaskNode:
        return self._nodes[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if isinstance(other, TaskGraph):
            return self._nodes == other._nodes
        return isinstance(other, Mapping) and self._nodes == dict(other)

    __hash__ = None  # type: ignore[assignment]  # equal by content, like a dict


# ---- locks, budgets, usage, artifacts ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LockView:
    pattern: str
    holder: str
    exclusive: bool
    expires_at: str
    reason: str

    @property
    def key(self) -> str:
        """One lock in the room: a holder holds a pattern once."""
        return f"{self.holder}:{self.pattern}"

    def to_json(self) -> dict:
        return {
            "pattern": self.pattern,
            "holder": self.holder,
            "exclusive": self.exclusive,
            "expires_at": self.expires_at,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class WorkBudget:
    """Model tokens against a domain's work budget (the engine's usage monitor)."""

    limit: int
    used: int
    exhausted: bool
    policy: str
    tokens_per_min: float
    minutes_left: float | None

    @classmethod
    def parse(cls, d: object) -> WorkBudget | None:
        if not isinstance(d, Mapping):
            return None
        return cls(
            limit=_int(d.get("limit")),
            used=_int(d.get("used")),
            exhausted=bool(d.get("exhausted")),
            policy=_str(d.get("policy")),
            tokens_per_min=_num(d.get("tokens_per_min")),
            minutes_left=_opt_num(d.get("minutes_left")),
        )

    def to_json(self) -> dict:
        return {
            "limit": self.limit,
            "used": self.used,
            "exhausted": self.exhausted,
            "policy": self.policy,
            "tokens_per_min": self.tokens_per_min,
            "minutes_left": self.minutes_left,
        }


@dataclass(frozen=True, slots=True)
class BudgetView:
    """A domain's communication budget (coordination/budgets.py `Budgets.snapshot`)."""

    domain: str
    budget_tokens: int  # 0: unlimited
    base_tokens: int
    granted_tokens: int
    spent_tokens: int
    messages_sent: int
    answers_received: int
    remaining_tokens: int | None  # None: unlimited
    unlimited: bool
    work: WorkBudget | None
    updated: str
    # Only the file-based view (`budget_view`, no engine) rates efficiency; the engine's
    # budgets leave the key out, and to_json keeps each shape as it was.
    rated: bool = False
    efficiency: float | None = None

    @classmethod
    def parse(cls, d: Mapping) -> BudgetView:
        return cls(
            domain=d["domain"],
            budget_tokens=d["budget_tokens"],
            base_tokens=d["base_tokens"],
            granted_tokens=d["granted_tokens"],
            spent_tokens=d["spent_tokens"],
            messages_sent=d["messages_sent"],
            answers_received=d["answers_received"],
            remaining_tokens=d["remaining_tokens"],
            unlimited=d["unlimited"],
            work=WorkBudget.parse(d.get("work")),
            updated=d["updated"],
            rated="efficiency" in d,
            efficiency=d.get("efficiency"),
        )

    def to_json(self) -> dict:
        out = {
            "domain": self.domain,
            "budget_tokens": self.budget_tokens,
            "base_tokens": self.base_tokens,
            "granted_tokens": self.granted_tokens,
            "spent_tokens": self.spent_tokens,
            "messages_sent": self.messages_sent,
            "answers_received": self.answers_received,
            "remaining_tokens": self.remaining_tokens,
            "unlimited": self.unlimited,
            "work": None if self.work is None else self.work.to_json(),
            "updated": self.updated,
        }
        if self.rated:
            out["efficiency"] = self.efficiency
        return out


_USAGE_INTS = (
    "input",
    "output",
    "cache_write",
    "cache_read",
    "total",
)


@dataclass(frozen=True, slots=True)
class ContextUsage:
    """How full an agent's context window is: the last response's input + cache tokens in
    its current session against the model's window (usage/transcripts.py `context_of`)."""

    tokens: int
    window: int
    pct: float
    model: str | None
    at: float | None  # the response's timestamp (seconds since the epoch)

    @classmethod
    def parse(cls, d: object) -> ContextUsage | None:
        if not isinstance(d, Mapping):
            return None
        model = d.get("model")
        return cls(
            tokens=_int(d.get("tokens")),
            window=_int(d.get("window")),
            pct=_num(d.get("pct")),
            model=model if isinstance(model, str) else None,
            at=_opt_num(d.get("at")),
        )

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class DomainUsage:
    """Model tokens and cost of one domain (usage/transcripts.py `UsageTracker.summary`)."""

    input: int
    output: int
    cache_write: int
    cache_read: int
    total: int
    cost_usd: float
    tokens_per_min: float
    responses: int
    models: Mapping[str, int]
    unlogged: int
    unlogged_cost_usd: float
    unlogged_est: int
    compactions: int
    work_budget_tokens: int | None
    remaining: int | None
    minutes_left: float | None
    context: ContextUsage | None = None  # None: nothing measured in its current session

    @classmethod
    def parse(cls, d: Mapping) -> DomainUsage:
        models = d.get("models")
        return cls(
            **{k: _int(d.get(k)) for k in _USAGE_INTS},
            cost_usd=_num(d.get("cost_usd")),
            tokens_per_min=_num(d.get("tokens_per_min")),
            responses=_int(d.get("responses")),
            models=frozen_map(
                {k: v for k, v in models.items() if isinstance(k, str) and _opt_int(v) is not None}
                if isinstance(models, Mapping)
                else {}
            ),
            unlogged=_int(d.get("unlogged")),
            unlogged_cost_usd=_num(d.get("unlogged_cost_usd")),
            unlogged_est=_int(d.get("unlogged_est")),
            compactions=_int(d.get("compactions")),
            work_budget_tokens=_opt_int(d.get("work_budget_tokens")),
            remaining=_opt_int(d.get("remaining")),
            minutes_left=_opt_num(d.get("minutes_left")),
            context=ContextUsage.parse(d.get("context")),
        )

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in self.__slots__}
        out["models"] = dict(self.models)
        out["context"] = None if self.context is None else self.context.to_json()
        return out


@dataclass(frozen=True, slots=True)
class UsageView:
    domains: Mapping[str, DomainUsage]
    files: int  # transcripts read
    roots: tuple[str, ...]  # the `projects` folders scanned
    unpriced_models: tuple[str, ...]
    window_min: float  # the window tokens_per_min is measured over

    @classmethod
    def parse(cls, d: object) -> UsageView | None:
        if not isinstance(d, Mapping):
            return None
        domains = d.get("domains")
        return cls(
            domains=frozen_map(
                {
                    k: DomainUsage.parse(v)
                    for k, v in domains.items()
                    if isinstance(k, str) and isinstance(v, Mapping)
                }
                if isinstance(domains, Mapping)
                else {}
            ),
            files=_int(d.get("files")),
            roots=_strs(d.get("roots")),
            unpriced_models=_strs(d.get("unpriced_models")),
            window_min=_num(d.get("window_min")),
        )

    def to_json(self) -> dict:
        return {
            "domains": {k: v.to_json() for k, v in self.domains.items()},
            "files": self.files,
            "roots": list(self.roots),
            "unpriced_models": list(self.unpriced_models),
            "window_min": self.window_min,
        }


@dataclass(frozen=True, slots=True)
class ArtifactView:
    domain: str
    name: str
    sha256: str
    size: int
    published: str
    source: str

    @classmethod
    def parse(cls, domain: str, name: str, e: Mapping) -> ArtifactView:
        return cls(
            domain=domain,
            name=name,
            sha256=_str(e.get("sha256")),
            size=_int(e.get("size")),
            published=_str(e.get("published")),
            source=_str(e.get("source")),
        )

    def to_json(self) -> dict:
        return {
            "domain": self.domain,
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
            "published": self.published,
            "source": self.source,
        }


# ---- boundaries ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ViolationView:
    kind: str  # "scope" (a change outside the scope) or "import"
    domain: str
    file: str
    line: int  # 0 for a scope violation
    rule: str
    owner: str | None
    target: str
    import_text: str
    key: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    @classmethod
    def parse(cls, v: Mapping) -> ViolationView:
        key = v.get("key")
        return cls(
            kind=_str(v.get("kind")),
            domain=_str(v.get("domain")),
            file=_str(v.get("file")),
            line=_int(v.get("line")),
            rule=_str(v.get("rule")),
            owner=_opt_str(v.get("owner")),
            target=_str(v.get("target")),
            import_text=_str(v.get("import")),
            key=tuple(str(k) for k in key) if isinstance(key, list) else (),
        )

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "domain": self.domain,
            "file": self.file,
            "line": self.line,
            "rule": self.rule,
            "owner": self.owner,
            "target": self.target,
            "import": self.import_text,
            "key": list(self.key),
        }


@dataclass(frozen=True, slots=True)
class BoundaryEdge:
    """Imports from one domain into another: how many, and how many broke a rule."""

    source: str
    target: str
    count: int
    violations: int

    def to_json(self) -> dict:
        return {
            "from": self.source,
            "to": self.target,
            "count": self.count,
            "violations": self.violations,
        }


@dataclass(frozen=True, slots=True)
class UnparsedFile:
    file: str
    error: str


@dataclass(frozen=True, slots=True)
class BoundaryView:
    """The engine's last boundary check (boundaries/check.py `Report`, plus when)."""

    mode: str
    violations: tuple[ViolationView, ...]
    unparsed: tuple[UnparsedFile, ...]
    edges: tuple[BoundaryEdge, ...]
    files_checked: int
    imports_checked: int
    not_git: tuple[str, ...]
    seconds: float
    checked_at: float | None

    @classmethod
    def parse(cls, d: object) -> BoundaryView | None:
        """None for anything that is not a report (shown as "not checked yet")."""
        if not isinstance(d, Mapping) or not isinstance(d.get("violations"), list):
            return None

        def dicts(key: str) -> list[Mapping]:
            items = d.get(key)
            return [x for x in items if isinstance(x, Mapping)] if isinstance(items, list) else []

        return cls(
            mode=_str(d.get("mode")),
            violations=tuple(ViolationView.parse(v) for v in dicts("violations")),
            unparsed=tuple(
                UnparsedFile(_str(u.get("file")), _str(u.get("error"))) for u in dicts("unparsed")
            ),
            edges=tuple(
                BoundaryEdge(
                    _str(e.get("from")),
                    _str(e.get("to")),
                    _int(e.get("count")),
                    _int(e.get("violations")),
                )
                for e in dicts("edges")
            ),
            files_checked=_int(d.get("files_checked")),
            imports_checked=_int(d.get("imports_checked")),
            not_git=_strs(d.get("not_git")),
            seconds=_num(d.get("seconds")),
            checked_at=_opt_num(d.get("checked_at")),
        )

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "violations": [v.to_json() for v in self.violations],
            "unparsed": [{"file": u.file, "error": u.error} for u in self.unparsed],
            "edges": [e.to_json() for e in self.edges],
            "files_checked": self.files_checked,
            "imports_checked": self.imports_checked,
            "not_git": list(self.not_git),
            "seconds": self.seconds,
            "checked_at": self.checked_at,
        }


# ---- delivery receipts (protocol/receipts.py) -------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReceiptView:
    """One delivery typed into an agent, as far as it got: queued, typed, submitted, started
    (the agent's own hook saw the text), answered (its next Stop), or failed (`reason`)."""

    id: str
    agent: str
    by: str
    state: str
    reason: str | None
    preview: str
    chars: int
    attempts: int
    queued_at: float | None  # epoch seconds
    started_s: float | None  # seconds from the first typing to the turn's start

    @classmethod
    def parse(cls, rec: Mapping) -> ReceiptView:
        raw = rec.get("times")
        times: Mapping = raw if isinstance(raw, Mapping) else {}
        typed, started = times.get("typed"), times.get("started")
        num = (int, float)
        return cls(
            id=_str(rec.get("id")),
            agent=_str(rec.get("agent")),
            by=_str(rec.get("by")),
            state=_str(rec.get("state")),
            reason=rec["reason"] if isinstance(rec.get("reason"), str) else None,
            preview=_str(rec.get("preview")),
            chars=rec["chars"] if isinstance(rec.get("chars"), int) else 0,
            attempts=rec["attempts"] if isinstance(rec.get("attempts"), int) else 0,
            queued_at=times.get("queued") if isinstance(times.get("queued"), num) else None,
            started_s=round(started - typed, 3)
            if isinstance(typed, num) and isinstance(started, num)
            else None,
        )

    @property
    def word(self) -> str:
        """One short state for a line in the room: "started", "failed: dialog", ..."""
        return f"{self.state}: {self.reason}" if self.reason else self.state

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "agent": self.agent,
            "by": self.by,
            "state": self.state,
            "reason": self.reason,
            "preview": self.preview,
            "chars": self.chars,
            "attempts": self.attempts,
            "queued_at": self.queued_at,
            "started_s": self.started_s,
        }


# ---- conflicts ahead of time (engine/conflicts.py) -------------------------------------------
@dataclass(frozen=True, slots=True)
class ConflictView:
    """Two domains' current work that git cannot merge, in one file: where (the first
    domain's line numbers of the conflicting regions) and what kind."""

    a: str
    b: str
    path: str
    kind: str
    lines: tuple[int, ...]  # where each shown region starts, in a's version
    more_hunks: int

    @classmethod
    def parse(cls, d: object) -> ConflictView | None:
        """None for an entry that is not a conflict (a hand-edited conflicts.json)."""
        if not isinstance(d, Mapping):
            return None
        pair = _strs(d.get("domains"))
        if len(pair) != 2 or not isinstance(d.get("path"), str):
            return None
        hunks = d.get("hunks")
        lines = tuple(
            _int(h.get("line"))
            for h in (hunks if isinstance(hunks, list) else [])
            if isinstance(h, Mapping)
        )
        return cls(
            pair[0], pair[1], d["path"], _str(d.get("kind")), lines, _int(d.get("more_hunks"))
        )

    def involves(self, name: str) -> bool:
        return name in (self.a, self.b)

    def to_json(self) -> dict:
        return {
            "domains": [self.a, self.b],
            "path": self.path,
            "kind": self.kind,
            "lines": list(self.lines),
            "more_hunks": self.more_hunks,
        }

    @staticmethod
    def all_of(data: object) -> tuple[ConflictView, ...]:
        """The conflicts of a conflicts.json (or the monitor's data); () for anything else."""
        items = data.get("conflicts") if isinstance(data, Mapping) else None
        views = (ConflictView.parse(x) for x in (items if isinstance(items, list) else []))
        return tuple(v for v in views if v is not None)
