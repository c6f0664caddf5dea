"""The world as plain dicts, exactly as comm-node built it before the World was typed
(comm_node_tui/engine/world.py at 9b41901, copied verbatim but for the names). The reference
that tests/test_world.py holds `World.to_json()` to: `comm-node status --json` is a public
interface, and its bytes must not change."""

from __future__ import annotations

import time
from datetime import datetime

from comm_node_tui.protocol.status import read_status, sane_heartbeat
from comm_node_tui.workspace.model import Workspace


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


def legacy_agent_view(
    ws: Workspace,
    name: str,
    status: dict,
    now: float | None = None,
    problem: str | None = None,
    pane: dict | None = None,
    health: str | None = None,
) -> dict:
    """One agent as shown: the state reconciled from hooks and screen, and its health (the
    engine's judgement, or, with no engine, what can be seen right now)."""
    from comm_node_tui.engine.agent_state import Health, judge, process_gone, shown_state

    now = time.time() if now is None else now
    age = heartbeat_age(status, now)
    state = shown_state(status, pane, age, now)
    if health is None:
        gone = process_gone(status, pane)
        health = judge(
            status,
            pane,
            shown=state,
            hook_age_s=age,
            still_s=None,
            gone_for_s=0.0 if gone else None,
            agents=ws.settings.agents,
        )
    health = str(health)
    view = {
        "name": name,
        "state": state,
        "hook_state": status.get("state") if status else None,
        "task": status.get("task"),
        "progress": status.get("progress"),
        "last_heartbeat": status.get("last_heartbeat"),
        "heartbeat_age_s": None if age is None else round(age, 1),
        "health": health,
        "stale": health in (Health.STUCK, Health.SILENT),
        "lost": health == Health.LOST,
        "role": ws.domains[name].role if name in ws.domains else "",
        "problem": problem,
    }
    if pane is not None:
        view["pane"] = pane
        view["dialog"] = pane.get("dialog")
    view["context"] = None  # added by issue 17 item 6; legacy_snapshot fills it
    return view


def legacy_engine_view(coord) -> dict | None:
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


def legacy_snapshot(
    ws: Workspace,
    coord,
    statuses: dict[str, dict] | None = None,
    panes: dict[str, dict] | None = None,
    tasks_view: tuple | None = None,
    budgets=None,
    usage: dict | None = None,
    now: float | None = None,
    tasks_version: int | None = None,
    graph: dict | None = None,
    boundaries: dict | None = None,
    health: dict | None = None,
) -> dict:
    """Everything the control room shows, read fresh from the files where not given."""
    from comm_node_tui.coordination.coordinator import budget_view

    now = time.time() if now is None else now
    if panes is None and health is None:
        seen = legacy_engine_view(coord) or {}
        panes = seen.get("panes") if isinstance(seen.get("panes"), dict) else None
        health = seen.get("health") if isinstance(seen.get("health"), dict) else None
    agents = []
    for name, dom in ws.domains.items():
        problem = None
        if statuses is not None and name in statuses:
            st = statuses[name]
        else:
            try:
                st = read_status(dom.paths.status)
                problem = sane_heartbeat(st, dom.paths.status, now)
            except (ValueError, OSError) as exc:
                st, problem = {}, str(exc)
        pane = (panes or {}).get(name)
        pane = pane if isinstance(pane, dict) else None
        view = legacy_agent_view(ws, name, st, now, problem, pane, (health or {}).get(name))
        # issue 17 item 6: the one key added since: the agent's context use, from the usage
        # summary given (else the engine's usage.json)
        source = usage
        if source is None:
            try:
                source = coord.store.read("usage.json", None)
            except (OSError, ValueError):
                source = None
        domains = source.get("domains") if isinstance(source, dict) else None
        entry = domains.get(name) if isinstance(domains, dict) else None
        view["context"] = entry.get("context") if isinstance(entry, dict) else None
        agents.append(view)
    tasks, ready, problems = tasks_view or coord.load_tasks()
    locks = [lk.to_json() for lk in coord.locks()]
    return {
        "project": ws.project,
        "workspace": ws.root,
        "agents": agents,
        "tasks": {
            "counts": ready.counts(),
            "ready": [tasks[t].to_json() for t in ready.ready],
            "problems": problems,
        },
        "locks": [
            {k: lk[k] for k in ("pattern", "holder", "exclusive", "expires_at", "reason")}
            for lk in locks
        ],
        "budgets": [budgets.snapshot(n) for n in ws.domains] if budgets else budget_view(ws),
        "usage": usage,
        "tasks_version": tasks_version,
        "task_graph": graph
        if graph is not None
        else {
            t.id: {
                "title": t.title,
                "status": t.status,
                "domain": t.domain,
                "assignee": t.assignee,
                "priority": t.priority,
                "parent": t.parent,
                "deps": [x for k, x, _m in t.deps if k != "parent-child"],
            }
            for t in tasks.values()
        },
        "blocked": dict(ready.reasons),
        "artifacts": [
            {"domain": d.name, "name": n, **e}
            for d in ws.domains.values()
            for n, e in coord.manifest(d).items()
        ],
        # the engine's last boundary check (a viewer reads the engine's copy on disk)
        "boundaries": boundaries if boundaries is not None else _stored_boundaries(coord),
        # added with per-domain pause (issue 19): the one key after the legacy ones
        "paused": _paused(ws),
        # added with "needs you" (issue 19): nothing waits on the operator in the workspaces
        # this reference is built for; tests/test_needs.py holds the items themselves
        "needs": [],
        # added with delivery receipts (issue 15): the latest deliveries, after "paused"
        "receipts": _receipts(ws),
        # added with conflict warnings (issue 18): no conflict check ran in the workspaces
        # this reference is built for; tests/test_conflicts.py holds the items themselves
        "conflicts": [],
    }


def _receipts(ws: Workspace) -> list[dict]:
    from comm_node_tui.engine.world_views import ReceiptView
    from comm_node_tui.protocol.receipts import path_in, receipts

    return [ReceiptView.parse(r).to_json() for r in receipts(path_in(ws.paths.state), last=50)]


def _paused(ws: Workspace) -> dict:
    """paused.json as the operator's stop means it: none, everyone, or agents by name."""
    import json
    import os

    try:
        with open(os.path.join(ws.paths.state, "guarded", "paused.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {"all": False, "domains": [], "paused_at": None}
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        return {"all": True, "domains": [], "paused_at": None}
    domains = data.get("domains")
    return {
        "all": bool(data.get("all", True)),
        "domains": [d for d in domains if isinstance(d, str)] if isinstance(domains, list) else [],
        "paused_at": data["paused_at"] if isinstance(data.get("paused_at"), str) else None,
    }


def _stored_boundaries(coord) -> dict | None:
    try:
        data = coord.store.read("boundaries.json", None)
    except (OSError, ValueError):
        return None  # unreadable: shown as "not checked yet", never a failed snapshot
    return data if isinstance(data, dict) else None
