"""([cluster]) The other machines' agents as this machine's engine last received them, for
the readers that are not the engine: a viewer room (a second `comm-node` while `serve` or
`web` holds the workspace) and `comm-node status`.

The engine has the other nodes' published state in memory (cluster/relay.py, from the
state bucket's watch); it writes that here, atomically and only when it changed, into
`.comm-node/guarded/cluster-agents.json` (walled from sandboxed agents as a folder: forged,
it would show viewers and `status` remote agents busy or fresh that are not; an older
comm-node's `.comm-node/cluster-agents.json` is never read, the engine writes it anew):
{"node": this node, "written": when, "nodes": {node: its published state}}. Each node's own
`ts` is kept, so a reader says "m2's engine
last published 40 s ago" exactly as the in-process room does: a file left by an engine that
stopped shows its rows stale, never fresh.

No NATS here: the readers are the status command and the viewer, which must not load it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping

from comm_node_tui.cluster.state import published_state
from comm_node_tui.protocol import guarded
from comm_node_tui.protocol.fileio import atomic_write
from comm_node_tui.protocol.printable import printable
from comm_node_tui.workspace.model import Workspace

VIEW_FILE = "cluster-agents.json"
MAX_VIEW_BYTES = 16 * 1024 * 1024  # every node's agents; far past a team of 50


def owners_of(nodes: Mapping[str, dict], local: frozenset[str] | set[str]) -> dict[str, str]:
    """domain -> the node that publishes it (the freshest when two do: a domain moved);
    this machine's own domains are never another's."""
    out: dict[str, tuple[float, str]] = {}
    for node, doc in nodes.items():
        ts = doc["ts"]
        for dom in doc["domains"]:
            fresher = dom not in out or out[dom][0] < ts
            if isinstance(dom, str) and dom not in local and fresher:
                out[dom] = (ts, node)
    return {d: n for d, (_ts, n) in out.items()}


def fill_remote(
    remote_domains: frozenset[str] | set[str],
    nodes: Mapping[str, dict],
    owners: Mapping[str, str],
    now: float,
    statuses: MutableMapping[str, dict],
    panes: MutableMapping[str, dict],
    health: MutableMapping[str, str],
) -> dict[str, tuple[str, float | None]]:
    """Fill the rows of agents on other machines from their engines' published state (this
    machine has no status, pane or judgement of its own for them); domain -> (its node,
    seconds since that node last published; "" and None: none has)."""
    for dom in remote_domains:
        node = owners.get(dom)
        doc = nodes.get(node) if node is not None else None
        panes.pop(dom, None)  # a pane seen here is not that agent's (a shared tmux)
        health.pop(dom, None)
        if doc is None:
            continue
        st = (doc.get("agents") or {}).get(dom)
        statuses[dom] = st if isinstance(st, dict) else {}
        pane = (doc.get("panes") or {}).get(dom)
        if isinstance(pane, dict):
            panes[dom] = pane
        judged = (doc.get("health") or {}).get(dom)
        if isinstance(judged, str):
            health[dom] = judged
    out: dict[str, tuple[str, float | None]] = {}
    for dom in remote_domains:
        node = owners.get(dom, "")
        ts = (nodes.get(node) or {}).get("ts")
        out[dom] = (node, max(0.0, now - float(ts)) if isinstance(ts, int | float) else None)
    return out


class ViewWriter:
    """The engine's side: the file rewritten only when what it holds changed."""

    def __init__(self, state_dir: str, node: str) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, guarded.FOLDER, VIEW_FILE)
        self.node = node
        self._last: object = None

    def write(self, nodes: dict[str, dict], now: float) -> bool:
        """True when written. `nodes` is the relay's map, swapped whole on each change: the
        same object is the same content (the engine calls this every tick)."""
        if nodes is self._last:
            return False
        body = json.dumps(
            {"node": self.node, "written": now, "nodes": nodes},
            default=str,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        try:
            guarded.make_folder(self.state_dir)  # a link put there is never written through
            atomic_write(self.path, body + "\n")
            guarded.drop_legacy(self.state_dir, VIEW_FILE)  # an older comm-node's: stale
        except OSError:
            return False  # a full disk: the next change tries again
        self._last = nodes
        return True


class ViewError(ValueError):
    """The file is there and is not what the engine writes (one line, naming it)."""


def read_view(state_dir: str) -> dict[str, dict]:
    """node -> its published state, as this machine's engine last wrote them; {} when no
    engine has written the file; ViewError naming the file and the field when it is bad."""
    from comm_node_tui.protocol.fileio import read_json_bounded

    if not guarded.folder_is_ours(state_dir):
        return {}  # guarded/ as a link (an agent's): not the engine's word
    path = os.path.join(state_dir, guarded.FOLDER, VIEW_FILE)
    try:
        doc = read_json_bounded(path, MAX_VIEW_BYTES)
    except FileNotFoundError:
        return {}
    except ValueError as exc:  # its message names the file
        raise ViewError(str(exc)[:300]) from None
    except OSError as exc:
        raise ViewError(f"{path}: unreadable ({exc.strerror or exc})") from None
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(nodes, dict):
        raise ViewError(f"{path}: field 'nodes' must be an object")
    out = {}
    for node, raw in nodes.items():
        checked = published_state(raw)
        if checked is not None and checked["node"] == node:
            out[node] = checked
    return out


def machine_of(ws: Workspace, name: str) -> str:
    """The words "machine m2" for another machine's agent, as this machine's engine last heard which
    node publishes it; "another machine" when it has not (or its copy is unreadable)."""
    from comm_node_tui.cluster.relay import local_domains

    try:
        node = owners_of(read_view(ws.paths.state), local_domains(ws)).get(name)
    except ViewError:
        node = None
    if not node:
        return "another machine"
    # a name from another machine: printable text only
    return "machine " + printable(node, 32)
