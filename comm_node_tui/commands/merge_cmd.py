"""`comm-node merge D` queues a domain's branch; `--status` lists the queue; `--run` takes
the queued entries now (one pass) for a workspace whose engine is not running: the engine
runs the same pass by itself (engine/merges.py), and a pass lock keeps the two apart."""

from __future__ import annotations

import os


def merge(args) -> int:
    from comm_node_tui.commands.context import print_json, workspace
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.errors import CommNodeError
    from comm_node_tui.integration.queue import MergeQueue, queue_status

    ws = workspace(args)
    queue = MergeQueue(Coordinator(ws))
    name = getattr(args, "domain_name", None)
    if not (name or args.status or args.run):
        raise CommNodeError("name a domain to queue, or pass --status or --run")
    out: dict = {}
    if name:
        by = os.environ.get("COMM_NODE_DOMAIN") or "operator"
        entry = queue.enqueue(name, by=by)
        out["queued"] = entry
        if not args.json:
            if entry.get("already"):
                print(f"{name}: {entry['branch']} is already queued as {entry['id']}")
            else:
                print(f"{name}: {entry['branch']} queued as {entry['id']}")
            if entry.get("uncommitted"):
                print(f"note: {name} has uncommitted changes: only its commits are merged")
    if args.run:
        done = queue.run_pass()
        out["ran"] = done
        if not args.json:
            if done is None:
                print("another merge pass is running: it takes the queue")
            else:
                for line in queue_status(done) or ["nothing queued"]:
                    print(line)
    if args.status:
        entries = queue.entries()
        out["entries"] = entries
        if not args.json:
            for line in queue_status(entries) or ["the merge queue is empty"]:
                print(line)
    if args.json:
        print_json(out)
    failed = [e for e in out.get("ran") or [] if e.get("state") != "landed"]
    return 1 if failed else 0
