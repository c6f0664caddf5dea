"""status and whoami: what an agent says about itself and what it may know of its peers."""

from __future__ import annotations

import os

from comm_node_tui.commands.context import print_json, workspace, workspace_and_domain
from comm_node_tui.errors import UsageError
from comm_node_tui.protocol.printable import printable
from comm_node_tui.protocol.status import MAX_PROGRESS_CHARS, STATES, update_status


def status_set(args) -> int:
    _ws, dom = workspace_and_domain(args)
    if args.state not in STATES:
        raise UsageError(f"STATE must be one of {', '.join(STATES)} (got '{args.state}')")
    progress = args.progress
    if progress is not None and len(progress) > MAX_PROGRESS_CHARS:
        progress = progress[: MAX_PROGRESS_CHARS - 1] + "…"
    os.makedirs(dom.paths.dir, mode=0o700, exist_ok=True)
    status = update_status(
        dom.paths.status,
        dom.name,
        state=args.state,
        task=args.task,
        progress=progress,
        updated_by="cli",
    )
    if args.json:
        print_json(status)
    else:
        print(
            f"{dom.name}: {status['state']}"
            + (f" on {status['task']}" if status.get("task") else "")
        )
    return 0


def status_show(args) -> int:
    """The world: agents with heartbeat age, stale/lost, tasks, locks, budgets."""
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.engine.agent_state import AgentState, Health
    from comm_node_tui.engine.world import snapshot

    ws = workspace(args)
    world = snapshot(ws, Coordinator(ws))
    if args.json:
        print_json(world.to_json())
        return 0
    for a in world.agents:
        extra = f" on {a.task}" if a.task else ""
        if a.dialog and a.state == AgentState.WAITING:
            extra += f" ({a.dialog} dialog)"
        health = "" if a.health == Health.OK else f" {a.health.upper()}"
        age = "-" if a.heartbeat_age_s is None else f"{a.heartbeat_age_s:.0f}s ago"
        note = f"  ({a.problem})" if a.problem else ""
        ctx = "" if a.context is None else f"  ctx {a.context.pct:.0f}%"
        # [cluster]: another machine's agent, as the room marks it (`b @m2`); the node's
        # name comes from another machine: printable text only
        name = a.name if a.node is None else f"{a.name} @{printable(a.node, 32)}"
        print(f"{name:<16} {a.state:<9}{health}{extra}  heartbeat {age}{ctx}{note}")
    c = world.tasks.counts
    print(
        f"tasks: {c.ready} ready, {c.in_progress} in progress, {c.blocked} blocked, "
        f"{c.done} done; locks: {len(world.locks)}"
    )
    stop = world.paused
    if stop.any:
        who = "every agent" if stop.all else ", ".join(stop.domains)
        print(f"PAUSED: {who} (since {stop.paused_at or '?'}); `comm-node resume` ends it")
    from comm_node_tui.integration.coordinator import status_line

    for cf in world.conflicts:  # paths from agents' files: printable text only
        print(f"CONFLICT: {cf.a} and {cf.b} in {printable(cf.path)} ({cf.kind})")
    line = status_line(ws)
    if line:
        print(line)
    return 0


def whoami(args) -> int:
    ws, dom = workspace_and_domain(args)
    try:
        from comm_node_tui.protocol.fileio import read_json_bounded
        from comm_node_tui.protocol.guarded import budget_source

        path = budget_source(ws.paths.state, dom.name, dom.paths.legacy_budget)
        budget = read_json_bounded(path, 64 * 1024)
    except (OSError, ValueError):
        budget = None
    try:
        unread = sum(
            1 for n in os.listdir(dom.paths.inbox) if n.endswith(".md") and not n.startswith(".")
        )
    except OSError:
        unread = 0
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.hooks.handoff import held_tasks

    coord = Coordinator(ws)
    held = held_tasks(coord.load_tasks()[0], dom.name)
    # the task it holds and its contract: what a restarted or cleared agent asks first
    task = (
        {"id": held[0].id, "title": held[0].title, **coord.handover(dom, held[0])} if held else None
    )
    info = {
        "workspace": ws.root,
        "project": ws.project,
        "domain": dom.name,
        "path": dom.path,
        "role": dom.role,
        "scope": dom.scope,
        "exports": dom.exports,
        "imports": dom.imports,
        "peers": [
            {"name": p.name, "role": p.role, "exports": p.exports}
            for p in ws.domains.values()
            if p.name != dom.name
        ],
        "budget": budget,
        "unread": unread,
        "state_dir": dom.paths.dir,
        "task": task,
        "also_held": [t.id for t in held[1:]],
    }
    if args.json:
        print_json(info)
        return 0
    print(f"{dom.name} in {ws.project} ({ws.root})")
    if dom.role:
        print(f"role:   {dom.role}")
    print(f"path:   {dom.path}")
    print(f"scope:  {', '.join(dom.scope)}")
    if budget:
        left = budget.get("remaining_tokens")
        print(f"budget: {'unlimited' if left is None else f'{left} tokens left'}")
    print(f"unread: {unread}")
    if task:
        _print_task(task)
    else:
        print("task:   none (`comm-node task ready` lists what you can claim)")
    peers = ", ".join(p["name"] for p in info["peers"]) or "none"
    print(f"peers:  {peers}")
    return 0


def _print_task(task: dict) -> None:
    from comm_node_tui.hooks.handoff import one_line

    print(f"task:   {task['id']}: {one_line(task['title'])}")
    for line in task["contract"]["done_when"]:
        print(f"  done when: {one_line(line)}")
    for name in task["contract"]["artifacts"]:
        print(f"  publish:   {one_line(name)}")
    for command in task["verify"]:
        print(f"  verify:    {one_line(command)}")
    last = task.get("last_failure")
    if last:
        print(f"  last failure: {one_line(last.get('reason'))}")
