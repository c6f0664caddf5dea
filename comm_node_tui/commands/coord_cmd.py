"""lock, task, budget and artifact commands: decided at once, engine running or not."""

from __future__ import annotations

from comm_node_tui.commands.context import print_json, workspace, workspace_and_domain
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.errors import UsageError
from comm_node_tui.protocol.messages import now_iso


def _coord(args, need_domain: bool = True):
    if need_domain:
        ws, dom = workspace_and_domain(args)
    else:
        ws, dom = workspace(args), None
    return Coordinator(ws), dom


def _lock_json(lock) -> dict:
    """What the CLI shows of a lock: Lock.to_json's fields but the index ones. Built here, not
    filtered from to_json, whose regex would import pathspec (~25 ms) only to be dropped."""
    return {
        "pattern": lock.pattern,
        "holder": lock.holder,
        "exclusive": lock.exclusive,
        "expires_at": now_iso(lock.expires),
        "reason": lock.reason,
        "acquired_at": lock.acquired_at,
        "path": lock.glob.text,
    }


# ---- locks -------------------------------------------------------------------------------
def lock_acquire(args) -> int:
    coord, dom = _coord(args)
    try:
        locks = coord.acquire(
            dom, args.patterns, exclusive=not args.shared, ttl=args.ttl, reason=args.reason
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print_json([_lock_json(lk) for lk in locks])
    else:
        for lk in locks:
            print(f"granted '{lk.pattern}' to {lk.holder} until {_lock_json(lk)['expires_at']}")
    return 0


def lock_release(args) -> int:
    coord, dom = _coord(args)
    if not args.all and not args.patterns:
        raise UsageError("name the patterns to release, or --all")
    released = coord.release(dom.name, None if args.all else args.patterns)
    if args.json:
        print_json([_lock_json(lk) for lk in released])
    else:
        print(f"released {len(released)} lock(s)")
    return 0


def lock_renew(args) -> int:
    coord, dom = _coord(args)
    try:
        renewed = coord.renew(dom.name, args.patterns or None, args.ttl)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print_json([_lock_json(lk) for lk in renewed])
    else:
        print(f"renewed {len(renewed)} lock(s)")
    return 0


def lock_list(args) -> int:
    coord, _dom = _coord(args, need_domain=False)
    locks = coord.locks()
    if args.json:
        print_json([_lock_json(lk) for lk in locks])
        return 0
    if not locks:
        print("no locks held")
    for lk in locks:
        kind = "excl" if lk.exclusive else "shared"
        reason = f"  ({lk.reason})" if lk.reason else ""
        print(
            f"{lk.holder:<14} {kind:<6} {lk.pattern}  until {_lock_json(lk)['expires_at']}{reason}"
        )
    return 0


# ---- tasks -------------------------------------------------------------------------------
def _task_row(t, ready) -> dict:
    d = t.to_json()
    d["ready"] = t.id in ready.ready
    return d


def _problems(problems: list[str]) -> None:
    import sys

    for p in problems[:5]:
        print(f"comm-node: warning: {p}", file=sys.stderr)
    if len(problems) > 5:
        print(
            f"comm-node: warning: and {len(problems) - 5} more problems in the task source",
            file=sys.stderr,
        )


def task_ready(args) -> int:
    if args.all:
        coord, dom = _coord(args, need_domain=False)
    else:
        coord, dom = _coord(args)
    tasks, ready, problems = coord.load_tasks()
    _problems(problems)
    rows = [
        _task_row(tasks[tid], ready)
        for tid in ready.ready
        if args.all or tasks[tid].domain in (None, dom.name)
    ]
    if args.json:
        print_json(rows)
        return 0
    if dom is not None:
        from comm_node_tui.hooks.handoff import held_tasks, one_line

        # the task it already holds first: after a restart, that is where it was
        for t in held_tasks(tasks, dom.name):
            print(f"holding: {t.id} ({t.status}) {one_line(t.title)}")
    if not rows:
        print("nothing is ready" + ("" if args.all else f" for {dom.name}"))
    for r in rows:
        print(f"{r['id']:<14} P{r['priority']}  {r['domain'] or '-':<12} {r['title']}")
    return 0


def task_list(args) -> int:
    coord, _dom = _coord(args, need_domain=False)
    tasks, ready, problems = coord.load_tasks()
    _problems(problems)
    rows = [_task_row(t, ready) for t in sorted(tasks.values(), key=lambda t: t.id)]
    if args.json:
        print_json(rows)
        return 0
    c = ready.counts()
    for r in rows:
        mark = "ready" if r["ready"] else r["status"]
        print(f"{r['id']:<14} {mark:<12} {r['domain'] or '-':<12} {r['title']}")
    print(
        f"{len(rows)} tasks: {c['ready']} ready, {c['in_progress']} in progress, "
        f"{c['blocked']} blocked, {c['done']} done"
    )
    return 0


def task_show(args) -> int:
    coord, _dom = _coord(args, need_domain=False)
    tasks, ready, problems = coord.load_tasks()
    _problems(problems)
    t = tasks.get(args.id)
    if t is None:
        from comm_node_tui.errors import CommNodeError

        raise CommNodeError(f"no task '{args.id}'")
    row = _task_row(t, ready)
    row["blocked_by"] = ready.why_not_ready(t.id)
    row["unblocks"] = ready.unblocks(t.id)
    row["description"] = t.description
    row["contract"] = t.contract.to_json()
    dom = coord.ws.domains.get(t.domain or "")
    if dom is not None:
        row["verify"], row["verify_timeout_s"] = coord.verify_plan(dom, t)
    else:  # no domain yet: whoever claims it adds its domain's commands
        row["verify"], row["verify_timeout_s"] = t.contract.verify, None
    row.update(coord.task_record(t.id))
    if args.json:
        print_json(row)
        return 0
    print(f"{t.id}: {t.title}")
    print(
        f"status: {'ready' if row['ready'] else t.status}   domain: {t.domain or '-'}   "
        f"priority: P{t.priority}   assignee: {t.assignee or '-'}"
    )
    for why in row["blocked_by"]:
        print(f"  not ready: {why}")
    if row["unblocks"]:
        print(f"  unblocks: {', '.join(row['unblocks'])}")
    _print_contract(row)
    attempts = row["attempts"]
    if attempts:
        print(f"attempts ({row['failures']} failed since the last reopen):")
        for a in attempts:
            why = f": {a['reason']}" if a.get("reason") else ""
            print(f"  {a.get('at', '?')}  {a.get('by', '?'):<12} {a.get('result', '?')}{why}")
    _print_failure(row["last_failure"])
    return 0


def _print_contract(row: dict) -> None:
    """The contract and the gate, as a claim or `task show` hands them to a person/agent."""
    c = row["contract"]
    if c["done_when"]:
        print("done when:")
        for line in c["done_when"]:
            print(f"  - {line}")
    if c["artifacts"]:
        print(f"publish: {', '.join(c['artifacts'])} (`task done ID --artifact FILE`)")
    if c["notify"]:
        print(f"notify: {', '.join(c['notify'])} (told when it is done)")
    if row.get("verify"):
        print("`task done` runs, in the domain's folder, and closes only if all pass:")
        for cmd in row["verify"]:
            print(f"  $ {cmd}")
    elif c["done_when"] or c["artifacts"]:
        print("`task done` runs no verify command for it: check the criteria yourself")
    if c["context"]:
        print("context:")
        for line in c["context"].splitlines()[:40]:
            print(f"  {line}")


def _print_failure(last: dict | None) -> None:
    if not last:
        return
    print(
        f"last attempt failed ({last.get('by', '?')}, {last.get('at', '?')}): {last.get('reason')}"
    )
    excerpt = last.get("excerpt")
    excerpt = excerpt.rstrip() if isinstance(excerpt, str) else ""
    if excerpt:
        print("  its output ended with:")
        for line in excerpt.splitlines()[-30:]:
            print(f"  | {line}")


def _write_back(coord, action: str, tid: str, *, assignee: str = "", reason: str = "") -> None:
    """With a Beads source, hand the claim/close/reopen (already in the overlay) to `bd`;
    one stderr line when it cannot, and nothing is undone (coordination/beads_writeback.py
    writes the event, shared with the room's assign)."""
    if coord.task_source()[0] != "beads":
        return  # as write_back_task decides, before importing it: it brings subprocess, shutil
    import sys

    from comm_node_tui.coordination.beads_writeback import UNAVAILABLE, write_back_task

    problem = write_back_task(coord, action, tid, assignee=assignee, reason=reason)
    if problem is None:
        return
    kind = "note" if problem == UNAVAILABLE else "warning"
    print(f"comm-node: {kind}: {problem}", file=sys.stderr)


def task_claim(args) -> int:
    coord, dom = _coord(args)
    row = coord.claim(dom, args.id)
    if args.json:
        print_json(row)
    else:
        print(f"{dom.name} claimed {args.id}: {row['title']}")
        _print_contract(row)
        _print_failure(row["last_failure"])
    _write_back(coord, "claim", args.id, assignee=dom.name)
    return 0


def caller_agent() -> str | None:
    """The domain of the agent this command runs for, or None for the operator.

    $COMM_NODE_DOMAIN is set in every agent's pane; an agent could unset it in its own shell,
    so the Claude Code process above this one is asked too (its environment is the pane's).
    An operator's own Claude Code session has no COMM_NODE_DOMAIN and stays the operator."""
    import os

    from comm_node_tui.protocol.procs import agent_process

    name = os.environ.get("COMM_NODE_DOMAIN")
    if name:
        return name
    agent = agent_process()
    if agent is None:
        return None
    try:
        with open(f"/proc/{agent[0]}/environ", "rb") as fh:
            env = fh.read(1 << 20).split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"COMM_NODE_DOMAIN=") and len(item) > len(b"COMM_NODE_DOMAIN="):
            return item.split(b"=", 1)[1].decode("utf-8", "replace")
    return None


def _operator_only(what: str) -> None:
    from comm_node_tui.errors import BoundaryError

    agent = caller_agent()
    if agent is not None:
        raise BoundaryError(
            f"{what} is the operator's decision; this runs in agent {agent}'s environment"
        )


def task_done(args) -> int:
    if args.force:
        _operator_only("closing a task without its verify gate (--force)")
        if not args.reason:
            raise UsageError("--force needs --reason (the override is logged)")
        coord, _dom = _coord(args, need_domain=False)
        row = coord.override(args.id, args.by, args.reason)
        print_json(row) if args.json else print(f"{args.id} closed by {args.by} (override)")
        _write_back(coord, "close", args.id, reason=f"override by {args.by}: {args.reason}")
        return 0
    if args.reason or args.by != "operator":
        raise UsageError("--by and --reason go with --force")
    from comm_node_tui.coordination.verify import GateFailed

    coord, dom = _coord(args)
    try:
        row = coord.done(dom, args.id, args.artifact)
    except GateFailed as exc:
        import sys

        if args.json:
            print_json({"id": args.id, "closed": False, "error": str(exc), **exc.attempt})
        print(f"comm-node: {exc}", file=sys.stderr)
        excerpt = (exc.attempt.get("excerpt") or "").rstrip()
        if excerpt:
            print("its output ended with:", file=sys.stderr)
            for line in excerpt.splitlines()[-40:]:
                print(f"| {line}", file=sys.stderr)
        return exc.exit_code
    ran = row["attempt"]["commands"]
    if args.json:
        print_json(row)
    else:
        print(f"{args.id} done" + (f" (verified: {len(ran)} passed)" if ran else ""))
    why = f"done: {len(ran)} verify command(s) passed (comm-node)" if ran else "done (comm-node)"
    _write_back(coord, "close", args.id, assignee=dom.name, reason=why)
    return 0


def task_reopen(args) -> int:
    coord, _dom = _coord(args, need_domain=False)
    agent = caller_agent()
    row = coord.reopen(args.id, agent or "operator", args.reason, operator=agent is None)
    print_json(row) if args.json else print(f"{args.id} reopened")
    _write_back(coord, "reopen", args.id, reason=args.reason)
    return 0


def task_fail(args) -> int:
    coord, dom = _coord(args)
    row = coord.fail(dom, args.id, args.reason)
    print_json(row) if args.json else print(f"{args.id} failed: {args.reason}")
    return 0


def _edit_fields(args) -> dict:
    return {
        "title": args.title,
        "domain": getattr(args, "domain", None),  # the common --domain, absent when not given
        "priority": args.priority,
        "depends_on": args.depends_on,
        "parent": args.parent,
        "done_when": args.done_when,
        "verify": args.verify,
        "artifacts": args.artifacts,
        "notify": args.notify,
        "notes": args.notes,
    }


def task_add(args) -> int:
    """Operator only: tasks.toml is the operator's file, and its verify commands run in a
    shell on `task done`, so an agent that could write them could run anything."""
    from comm_node_tui.coordination.task_edit import add_native

    _operator_only("adding a task to tasks.toml")
    coord, _dom = _coord(args, need_domain=False)
    entry = add_native(coord, args.id, _edit_fields(args))
    print_json(entry) if args.json else print(f"added {entry['id']}: {entry['title']}")
    return 0


def task_edit(args) -> int:
    from comm_node_tui.coordination.task_edit import edit_native

    _operator_only("editing tasks.toml")
    coord, _dom = _coord(args, need_domain=False)
    entry = edit_native(coord, args.id, _edit_fields(args), args.add_dep, args.remove_dep)
    print_json(entry) if args.json else print(f"edited {entry['id']}: {entry.get('title', '')}")
    return 0


# ---- budgets -----------------------------------------------------------------------------
def budget_show(args) -> int:
    from comm_node_tui.coordination.coordinator import budget_view

    coord, _dom = _coord(args, need_domain=False)
    rows = budget_view(coord.ws)
    if args.json:
        print_json(rows)
        return 0
    for b in rows:
        left = "unlimited" if b["unlimited"] else f"{b['remaining_tokens']} left"
        eff = "-" if b["efficiency"] is None else b["efficiency"]
        print(
            f"{b['domain']:<14} {left:<16} spent {b['spent_tokens']:<8} "
            f"granted {b['granted_tokens']:<8} efficiency {eff}"
        )
    return 0


def budget_request(args) -> int:
    from comm_node_tui.coordination.coordinator import request_budget

    coord, dom = _coord(args)
    out = request_budget(coord, dom, args.tokens, args.reason)
    print_json(out) if args.json else print(f"granted {args.tokens} tokens to {dom.name}")
    return 0


def budget_grant(args) -> int:
    from comm_node_tui.coordination.coordinator import grant_budget

    coord, _dom = _coord(args, need_domain=False)
    out = grant_budget(coord, args.target, args.tokens, args.reason)
    print_json(out) if args.json else print(f"granted {args.tokens} tokens to {args.target}")
    return 0


# ---- artifacts ---------------------------------------------------------------------------
def artifact_publish(args) -> int:
    coord, dom = _coord(args)
    out = coord.publish(dom, args.file, args.name)
    print_json(out) if args.json else print(
        f"published {out['name']} ({out['size']} bytes, sha256 {out['sha256'][:12]})"
    )
    return 0


def artifact_list(args) -> int:
    coord, _dom = _coord(args, need_domain=False)
    rows = [
        {"name": name, "domain": d.name, **entry}
        for d in coord.ws.domains.values()
        for name, entry in coord.manifest(d).items()
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no artifacts published")
    for r in rows:
        print(
            f"{r['domain']:<14} {r['name']:<30} {r.get('size', '?')} bytes  "
            f"{str(r.get('sha256', ''))[:12]}  {r.get('published', '')}"
        )
    return 0
