"""Every node's agents as the state bucket holds them (read-only: intervening in an agent on
another machine is a request to that machine's engine, cluster/ops.py)."""

from __future__ import annotations

import json
import time

from comm_node_tui.cluster.client import ClusterClient
from comm_node_tui.cluster.names import Names
from comm_node_tui.workspace.model import Workspace

STALE_S = 30.0  # a node silent this long may be gone (as the rooms say: engine/world.py)


def cluster_state(ws: Workspace, now: float | None = None) -> list[dict]:
    """Every engine that published, by node name: its published state ({node, ts, domains,
    agents, panes, health}) and what `comm-node cluster status` adds: `age_s` since it last
    published and `alive` (under STALE_S), `mail_waiting` (domain -> messages its inbox
    consumer has not had acked yet) and `events_waiting` (the other nodes' events its engine
    has not read yet: its consumer of the events stream), None where no consumer exists."""
    client = ClusterClient(ws.settings.cluster, "comm-node-cli-status")  # imports nats first
    from nats.js.errors import BucketNotFoundError

    names = Names(ws.project)

    async def waiting(stream: str, consumer: str) -> int | None:
        try:
            info = await client.js.consumer_info(stream, consumer)
        except Exception:  # none yet (that engine never set up), or no stream
            return None
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def read() -> list[dict]:
        try:
            kv = await client.js.key_value(names.state_bucket)
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
            if doc is None:
                continue
            doc["mail_waiting"] = {
                dom: await waiting(names.stream, names.consumer(dom)) for dom in doc["domains"]
            }
            doc["events_waiting"] = await waiting(
                names.events_stream, names.events_consumer(doc["node"])
            )
            out.append(doc)
        return out

    try:
        nodes = client.call(read)
    finally:
        client.close()
    at = time.time() if now is None else now
    for doc in nodes:
        doc["age_s"] = round(max(0.0, at - doc["ts"]), 1) if doc["ts"] else None
        doc["alive"] = doc["age_s"] is not None and doc["age_s"] < STALE_S
    return nodes


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
