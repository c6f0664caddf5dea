"""The one WorldState: agents, tasks, locks, budgets, usage, artifacts and boundaries, as one
immutable, typed snapshot.

The engine builds a World per batch of changes (`Engine.snapshot()`); whoever holds it reads
it from any thread without a lock, because nothing in it ever changes: a newer World
replaces the reference, it is never edited (the control room's bridge keeps the latest).
`comm-node status` builds the same World from the files, so scripts get it whether or not an
engine runs; `World.to_json()` is the shape `status --json` prints (docs/protocol.md, "The
world"). The views themselves are in engine/world_views.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from comm_node_tui.coordination.pause import NOT_PAUSED, Pause, read_pause
from comm_node_tui.engine.agent_state import AgentState, Health, judge, process_gone, shown_state
from comm_node_tui.engine.needs import Need, NeedKind, OperatorMail, derive
from comm_node_tui.engine.world_views import (
    AgentView,
    ArtifactView,
    BoundaryView,
    BudgetView,
    ConflictView,
    ContextUsage,
    DomainUsage,
    LockView,
    PaneView,
    ReceiptView,
    TaskCounts,
    TaskGraph,
    TaskNode,
    TaskRecord,
    TasksView,
    UsageView,
    frozen_map,
)
from comm_node_tui.protocol.messages import now_iso
from comm_node_tui.protocol.status import read_status, sane_heartbeat
from comm_node_tui.workspace.model import Workspace

TYPE_CHECKING = False  # annotations only: snapshot() imports the coordination it uses
if TYPE_CHECKING:
    from comm_node_tui.coordination.budgets import Budgets
    from comm_node_tui.coordination.coordinator import Coordinator, TaskView
    from comm_node_tui.coordination.tasks import Readiness

__all__ = [
    "AgentState",
    "AgentView",
    "ArtifactView",
    "BoundaryView",
    "BudgetView",
    "ConflictView",
    "ContextUsage",
    "DomainUsage",
    "Health",
    "LockView",
    "Need",
    "NeedKind",
    "PaneView",
    "ReceiptView",
    "StatusReads",
    "TaskCounts",
    "TaskGraph",
    "TaskNode",
    "TaskRecord",
    "TasksView",
    "UsageView",
    "World",
    "agent_view",
    "heartbeat_age",
    "on_other_machines",
    "snapshot",
]


@dataclass(frozen=True, slots=True)
class World:
    """Everything the control room and `comm-node status` show, at one moment."""

    project: str
    workspace: str
    agents: tuple[AgentView, ...]
    tasks: TasksView
    locks: tuple[LockView, ...]
    budgets: tuple[BudgetView, ...]
    usage: UsageView | None  # None until the engine has read the transcripts
    tasks_version: int | None
    task_graph: TaskGraph
    blocked: Mapping[str, tuple[str, ...]]  # task id -> why it is blocked
    artifacts: tuple[ArtifactView, ...]
    boundaries: BoundaryView | None  # None: not checked yet
    paused: Pause = NOT_PAUSED  # what the operator stopped (coordination/pause.py)
    needs: tuple[Need, ...] = ()  # what waits on the human, ranked (engine/needs.py)
    # the latest deliveries typed into agents, oldest first (protocol/receipts.py)
    receipts: tuple[ReceiptView, ...] = ()
    # two domains' work that cannot be merged, as the last conflict check saw it
    conflicts: tuple[ConflictView, ...] = ()

    def agent(self, name: str) -> AgentView | None:
        return next((a for a in self.agents if a.name == name), None)

    def budget(self, name: str) -> BudgetView | None:
        return next((b for b in self.budgets if b.domain == name), None)

    def usage_of(self, name: str) -> DomainUsage | None:
        return None if self.usage is None else self.usage.domains.get(name)

    def receipts_of(self, name: str) -> tuple[ReceiptView, ...]:
        return tuple(r for r in self.receipts if r.agent == name)

    def to_json(self) -> dict:
        """The plain-data shape `comm-node status --json` prints (a public interface: the
        same keys in the same order as before the World was typed)."""
        return {
            "project": self.project,
            "workspace": self.workspace,
            "agents": [a.to_json() for a in self.agents],
            "tasks": self.tasks.to_json(),
            "locks": [lk.to_json() for lk in self.locks],
            "budgets": [b.to_json() for b in self.budgets],
            "usage": None if self.usage is None else self.usage.to_json(),
            "tasks_version": self.tasks_version,
            "task_graph": {k: v.to_json() for k, v in self.task_graph.items()},
            "blocked": {k: list(v) for k, v in self.blocked.items()},
            "artifacts": [a.to_json() for a in self.artifacts],
            "boundaries": None if self.boundaries is None else self.boundaries.to_json(),
            "paused": self.paused.to_json(),
            "needs": [n.to_json() for n in self.needs],
            "receipts": [r.to_json() for r in self.receipts],
            "conflicts": [c.to_json() for c in self.conflicts],
        }


def heartbeat_age(status: dict, now: float | None = None) -> float | None:
    """Seconds since the last heartbeat, or None when there is none (or it is unreadable)."""
    text = status.get("last_heartbeat")
    if not isinstance(text, str):
        return None
    try:
        then = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return max(0.0, (time.time() if now is None else now) - then)


def _text(v: object) -> str | None:
    """Text the agent side wrote (task, progress): any JSON value is shown as text."""
    return None if v is None else v if isinstance(v, str) else str(v)


def _health(value: object) -> Health | None:
    if not isinstance(value, str):
        return None  # not a judgement (an unreadable agents.json): judged again here
    try:
        return Health(value)
    except ValueError:
        return None


def agent_view(
    ws: Workspace,
    name: str,
    status: dict,
    now: float | None = None,
    problem: str | None = None,
    pane: dict | None = None,
    health: str | None = None,
    context: object = None,
) -> AgentView:
    """One agent as shown: the state reconciled from hooks and screen, and its health (the
    engine's judgement, or, with no engine, what can be seen right now)."""
    now = time.time() if now is None else now
    status = status if isinstance(status, dict) else {}
    age = heartbeat_age(status, now)
    state = shown_state(status, pane, age, now)
    judged = _health(health) if health is not None else None
    if judged is None:
        gone = process_gone(status, pane)
        judged = judge(
            status,
            pane,
            shown=state,
            hook_age_s=age,
            still_s=None,
            gone_for_s=0.0 if gone else None,
            agents=ws.settings.agents,
        )
    hook = status.get("state")
    return AgentView(
        name=name,
        state=AgentState.of(state),
        hook_state=None if hook is None else AgentState.of(hook),
        task=_text(status.get("task")),
        progress=_text(status.get("progress")),
        last_heartbeat=_text(status.get("last_heartbeat")),
        heartbeat_age_s=None if age is None else round(age, 1),
        health=judged,
        role=ws.domains[name].role if name in ws.domains else "",
        problem=problem,
        pane=None if pane is None else PaneView.parse(pane),
        context=ContextUsage.parse(context),
    )


def engine_view(coord: Coordinator) -> dict | None:
    """The running engine's panes and health (.comm-node/state/agents.json), or None when no
    engine holds the workspace: `comm-node status` then shows what the room shows."""
    from comm_node_tui.engine.pidlock import holder_pid

    if holder_pid(coord.ws.paths.engine_lock) is None:
        return None
    try:
        data = coord.store.read("agents.json", None)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class StatusReads:
    """The agents' status.json files, each parsed again only when its stat changed (inode,
    size, mtime: the agent side writes by temp file and rename, so a new write is a new
    inode). A viewer builds its world from the files every few seconds; at 200 agents that
    re-read and re-parsed 200 files that had not changed. One per reader, one thread."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[int, int, int], dict | ValueError | OSError]] = {}

    def read(self, path: str) -> dict:
        """As read_status: {} when missing, ValueError (naming the file) when garbage."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._seen.pop(path, None)
            return {}
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        seen = self._seen.get(path)
        if seen is not None and seen[0] == key:
            value = seen[1]
        else:
            try:
                value = read_status(path)
            except (ValueError, OSError) as exc:
                value = exc
            self._seen[path] = (key, value)
        if isinstance(value, Exception):
            raise value
        return value


def snapshot(
    ws: Workspace,
    coord: Coordinator,
    statuses: dict[str, dict] | None = None,
    panes: dict[str, dict] | None = None,
    tasks_view: TaskView | None = None,
    budgets: Budgets | None = None,
    usage: dict | None = None,
    now: float | None = None,
    tasks_version: int | None = None,
    graph: Mapping[str, TaskNode] | None = None,
    boundaries: dict | None = None,
    health: dict | None = None,
    mail: OperatorMail | None = None,
    reads: StatusReads | None = None,
    conflicts: dict | None = None,
    resources: Mapping[str, tuple[float | None, int]] | None = None,
) -> World:
    """Everything the control room shows, read fresh from the files where not given.
    `graph`: the task graph of an earlier World with the same tasks_version (kept, not
    rebuilt: it is immutable); with no engine, an earlier World's graph is kept while the
    loaded tasks are the same (Coordinator.load_tasks caches them). `reads`: status files
    parsed again only when changed."""
    from comm_node_tui.coordination.coordinator import budget_view

    now = time.time() if now is None else now
    remote: dict[str, tuple[str, float | None]] = {}
    unknown = None
    if panes is None and health is None:
        seen = engine_view(coord) or {}
        panes = seen.get("panes") if isinstance(seen.get("panes"), dict) else None
        health = seen.get("health") if isinstance(seen.get("health"), dict) else None
        if ws.settings.cluster.enabled:  # the other machines' rows, as the engine got them
            statuses, panes, health, remote, unknown = _other_machines(
                ws, now, statuses, panes, health
            )
    agents = []
    contexts = _contexts(usage if usage is not None else _stored(coord, "usage.json"))
    status_of: dict[str, dict] = {}  # as read here: the needs read the tool of a prompt
    for name, dom in ws.domains.items():
        problem = None
        if statuses is not None and name in statuses:
            st = statuses[name]
        else:
            try:
                st = reads.read(dom.paths.status) if reads else read_status(dom.paths.status)
                problem = sane_heartbeat(st, dom.paths.status, now)
            except (ValueError, OSError) as exc:
                st, problem = {}, str(exc)
        status_of[name] = st if isinstance(st, dict) else {}
        pane = (panes or {}).get(name)
        pane = pane if isinstance(pane, dict) else None
        view = agent_view(
            ws, name, st, now, problem, pane, (health or {}).get(name), contexts.get(name)
        )
        if resources and name in resources:  # the engine's last sample (engine/resources.py)
            cpu, rss = resources[name]
            view = replace(view, cpu_pct=cpu, rss_bytes=rss)
        agents.append(view)
    task_graph = _task_graph(tasks_view or coord.load_tasks(), graph)
    budget_views = tuple(
        BudgetView.parse(b)
        for b in ([budgets.snapshot(n) for n in ws.domains] if budgets else budget_view(ws))
    )
    mail = mail if mail is not None else OperatorMail(ws.paths.operator)
    world = World(
        project=ws.project,
        workspace=ws.root,
        agents=tuple(agents),
        tasks=task_graph.tasks,
        locks=tuple(
            LockView(lk.pattern, lk.holder, lk.exclusive, now_iso(lk.expires), lk.reason)
            for lk in coord.locks()
        ),
        budgets=budget_views,
        usage=UsageView.parse(usage),
        tasks_version=tasks_version,
        task_graph=task_graph,
        blocked=task_graph.blocked,
        artifacts=tuple(
            ArtifactView.parse(d.name, n, e)
            for d in ws.domains.values()
            for n, e in coord.manifest(d).items()
            if isinstance(e, Mapping)  # a hand-edited manifest: the entry is not shown
        ),
        # the engine's last boundary check (a viewer reads the engine's copy on disk)
        boundaries=BoundaryView.parse(
            boundaries if boundaries is not None else _stored_boundaries(coord)
        ),
        paused=read_pause(ws.paths.state),
        needs=derive(agents, status_of, budget_views, mail.unread(), coord.overlay()),
        receipts=recent_receipts(ws),
        # the engine's last conflict check (a viewer reads the engine's copy on disk)
        conflicts=ConflictView.all_of(
            conflicts if conflicts is not None else _stored(coord, "conflicts.json")
        ),
    )
    return on_other_machines(world, remote, unknown) if remote else world


def _other_machines(
    ws: Workspace,
    now: float,
    statuses: dict[str, dict] | None,
    panes: dict[str, dict] | None,
    health: dict | None,
) -> tuple[dict, dict, dict, dict[str, tuple[str, float | None]], str | None]:
    """([cluster], a reader that is not the engine) The rows of agents other machines run,
    filled from what this machine's engine last received (cluster/view.py), as the engine's
    own snapshot fills them; a file that is not the engine's is one line in their rows."""
    from comm_node_tui.cluster.relay import local_domains
    from comm_node_tui.cluster.view import ViewError, fill_remote, owners_of, read_view

    statuses, panes, health = dict(statuses or {}), dict(panes or {}), dict(health or {})
    local = local_domains(ws)
    unknown = None
    try:
        nodes = read_view(ws.paths.state)
    except ViewError as exc:
        nodes, unknown = {}, str(exc)
    remote = fill_remote(
        frozenset(ws.domains) - local,
        nodes,
        owners_of(nodes, local),
        now,
        statuses,
        panes,
        health,
    )
    return statuses, panes, health, remote, unknown


REMOTE_STALE_S = 30.0  # a node that has not published for this long may be gone


def on_other_machines(
    world: World, remote: Mapping[str, tuple[str, float | None]], unknown: str | None = None
) -> World:
    """([cluster]) The rows of agents run by other machines' engines, marked with their node
    (domain -> (node, seconds since it last published)); a row whose node has not published
    lately, or at all, says so in `problem`: it shows what was, not what is. `unknown`: why
    no node is known (a reader's copy that could not be read), instead of the usual line."""
    if not remote:
        return world
    rows = []
    for a in world.agents:
        if a.name in remote:
            node, age = remote[a.name]
            problem = a.problem
            if not node:
                problem = unknown or (
                    "no engine on another machine publishes this agent (is it running?)"
                )
            elif age is not None and age > REMOTE_STALE_S:
                problem = f"{node}'s engine last published {age:.0f} s ago"
            a = replace(a, node=node or "?", problem=problem)
        rows.append(a)
    return replace(world, agents=tuple(rows))


RECENT_RECEIPTS = 50


def recent_receipts(ws: Workspace, last: int = RECENT_RECEIPTS) -> tuple[ReceiptView, ...]:
    """The last deliveries from the receipts file (its tail only: the file is append-only
    and a snapshot must stay cheap)."""
    from comm_node_tui.protocol.receipts import path_in, receipts

    return tuple(ReceiptView.parse(r) for r in receipts(path_in(ws.paths.state), last=last))


def _task_graph(view: TaskView, earlier: Mapping[str, TaskNode] | None) -> TaskGraph:
    """The tasks part of the world from (tasks, readiness, problems); an earlier World's
    graph of the same tasks is kept, and so is what was derived with it."""
    from comm_node_tui.coordination.tasks import Uncollected

    tasks, ready, problems = view
    if isinstance(earlier, TaskGraph) and earlier.built_from(ready):
        return earlier
    with Uncollected(keep=True):  # a node and its tuples per task, kept, no cycles among them
        return _new_task_graph(tasks, ready, problems, earlier)


def _new_task_graph(
    tasks: dict, ready: Readiness, problems: list, earlier: Mapping[str, TaskNode] | None
) -> TaskGraph:
    nodes = (
        dict(earlier)
        if earlier is not None
        else {
            t.id: TaskNode(
                title=t.title,
                status=t.status,
                domain=t.domain,
                assignee=t.assignee,
                priority=t.priority,
                parent=t.parent,
                deps=tuple(x for k, x, _m in t.deps if k != "parent-child"),
            )
            for t in tasks.values()
        }
    )
    derived = TasksView(
        counts=TaskCounts.parse(ready.counts()),
        ready=tuple(TaskRecord.of(tasks[t]) for t in ready.ready),
        problems=tuple(str(p) for p in problems),
    )
    blocked = frozen_map({k: tuple(v) for k, v in ready.reasons.items()})
    return TaskGraph(nodes, derived, blocked, ready)


def _contexts(usage: object) -> dict[str, object]:
    """domain -> its context use, from a usage summary (the engine's, or usage.json)."""
    domains = usage.get("domains") if isinstance(usage, dict) else None
    if not isinstance(domains, dict):
        return {}
    return {k: v.get("context") for k, v in domains.items() if isinstance(v, dict)}


def _stored(coord: Coordinator, name: str) -> dict | None:
    """A file the engine keeps in its state folder; None when absent or unreadable (a
    viewer without an engine shows what the last engine measured)."""
    try:
        data = coord.store.read(name, None)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stored_boundaries(coord: Coordinator) -> dict | None:
    try:
        data = coord.store.read("boundaries.json", None)
    except (OSError, ValueError):
        return None  # unreadable: shown as "not checked yet", never a failed snapshot
    return data if isinstance(data, dict) else None
