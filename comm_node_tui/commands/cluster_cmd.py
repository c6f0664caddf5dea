"""comm-node cluster up | status: a local JetStream server for a trial, and every machine's
agents as the cluster sees them (docs/cluster.md)."""

from __future__ import annotations

import os
import signal
import sys
import time

from comm_node_tui.commands.context import print_json
from comm_node_tui.errors import CommNodeError
from comm_node_tui.protocol.printable import printable


def up(args) -> int:
    """nats-server with JetStream, in the foreground until Ctrl-C (or SIGTERM)."""
    from comm_node_tui.cluster.server import server_config, start_server
    from comm_node_tui.workspace.discovery import find_root

    folder = args.dir
    if not folder:
        try:
            folder = os.path.join(find_root(getattr(args, "workspace", None)), ".comm-node", "nats")
        except CommNodeError:
            folder = os.path.join(os.getcwd(), ".comm-node-nats")
    folder = os.path.abspath(folder)
    token = os.environ.get("COMM_NODE_NATS_TOKEN", "")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise CommNodeError(
            f"--host {args.host} opens the server to the network: set COMM_NODE_NATS_TOKEN "
            "(every engine then needs the same), or use an SSH tunnel (docs/cluster.md)"
        )
    config = server_config(
        name=args.name,
        port=args.port,
        host=args.host,
        store_dir=os.path.join(folder, "jetstream"),
        token=token,
    )
    proc = start_server(folder, config)
    stop = {"now": False}

    def ask_stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, ask_stop)
    signal.signal(signal.SIGTERM, ask_stop)
    log = os.path.join(folder, "nats.log")
    url = f"nats://{args.host}:{args.port}"
    deadline = time.monotonic() + 15
    while not _accepts(args.host, args.port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise CommNodeError(f"nats-server did not start on {url}: {_last_line(log)}")
        time.sleep(0.05)  # the server's own start-up; a bounded wait, not a spin
    print(f"comm-node: NATS JetStream on {url} (data in {folder}, log {log}); Ctrl-C stops")
    print("in each machine's comm-node.toml:")
    print(f'[cluster]\nnats = "{url}"\nnode = "<this machine>"\nlocal = ["<its domains>"]')
    if token:
        print("(the engines need COMM_NODE_NATS_TOKEN set to the same token)")
    sys.stdout.flush()
    while not stop["now"] and proc.poll() is None:
        time.sleep(0.2)  # waiting for Ctrl-C or the server's exit
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except Exception:
            proc.kill()
        return 0
    raise CommNodeError(f"nats-server exited ({proc.returncode}): {_last_line(log)}")


def status(args) -> int:
    """Every node: its engine alive or silent, its domains and agents with their state, and
    what waits for it in the streams (mail for its domains, the others' events)."""
    from comm_node_tui.cluster.state import cluster_state
    from comm_node_tui.commands.context import workspace

    ws = workspace(args)
    if not ws.settings.cluster.enabled:
        raise CommNodeError("no [cluster] in comm-node.toml (docs/cluster.md)")
    nodes = cluster_state(ws)
    if args.json:
        print_json(nodes)
        return 0
    if not nodes:
        print("no engine has published its agents yet")
    for node in nodes:
        age = node["age_s"]
        when = "never" if age is None else f"{age:.0f} s ago"
        alive = "alive" if node["alive"] else "SILENT"
        name = _text(node["node"])
        print(f"{name}: {', '.join(_text(d) for d in node['domains'])} ({alive}: published {when})")
        for dom, st in sorted((node.get("agents") or {}).items()):
            state = st.get("state", "unknown") if isinstance(st, dict) else "unknown"
            task = st.get("task") if isinstance(st, dict) else None
            line = f"  {_text(dom):<16} {_text(state)}" + (f"  {_text(task)}" if task else "")
            print(line)
        mail = ", ".join(f"{_text(d)} {_count(n)}" for d, n in sorted(node["mail_waiting"].items()))
        print(f"  waiting: mail {mail or '-'}; events {_count(node['events_waiting'])}")
    return 0


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)  # ?: no consumer yet (that engine never set up)


def _text(value: object) -> str:
    """Another machine's words, printable only (a name or a state could carry escapes)."""
    return printable(str(value), 80)


def _accepts(host: str, port: int) -> bool:
    import socket

    try:
        socket.create_connection((host, port), 0.5).close()
        return True
    except OSError:
        return False


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            lines = fh.read()[-4000:].decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:300] if lines else "(no log)"
    except OSError:
        return "(no log)"
