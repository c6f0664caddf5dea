"""Every node's agents as the state bucket holds them (read-only: intervening in an agent on
another machine is a request to that machine's engine, cluster/ops.py)."""

from __future__ import annotations

import json

from comm_node_tui.cluster.client import ClusterClient
from comm_node_tui.cluster.names import Names
from comm_node_tui.workspace.model import Workspace


def cluster_state(ws: Workspace) -> list[dict]:
    """[{node, ts, domains, agents}] for every engine that published, by node name."""
    from nats.js.errors import BucketNotFoundError

    client = ClusterClient(ws.settings.cluster, "comm-node-cli-status")
    bucket = Names(ws.project).state_bucket

    async def read() -> list[dict]:
        try:
            kv = await client.js.key_value(bucket)
        except BucketNotFoundError:
            return []
        out = []
        try:
            keys = await kv.keys()
        except Exception:  # nats-py: NoKeysError on an empty bucket
            return []
        for key in sorted(keys):
            entry = await kv.get(key)
            try:
                doc = published_state(json.loads(entry.value or b""))
            except ValueError:
                continue
            if doc is not None:
                out.append(doc)
        return out

    try:
        return client.call(read)
    finally:
        client.close()


def published_state(doc: object) -> dict | None:
    """Another engine's published state with the shape every reader relies on, or None: a
    node name, its domains (names), a number `ts`, and `agents`, `panes` and `health` as
    objects (a part of another shape is dropped, not believed). Another machine's bytes are
    input: a wrong type must not raise in every World this engine builds."""
    if not isinstance(doc, dict) or not isinstance(doc.get("node"), str):
        return None
    domains = doc.get("domains")
    if not isinstance(domains, list):
        return None
    ts = doc.get("ts")
    out = dict(doc)
    out["domains"] = [d for d in domains if isinstance(d, str)]
    out["ts"] = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else 0.0
    for part in ("agents", "panes", "health"):
        if not isinstance(out.get(part), dict):
            out[part] = {}
    return out
