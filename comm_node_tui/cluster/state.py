"""Every node's agents as the state bucket holds them (read-only: intervening in an agent on
another machine goes through that machine's engine or its tmux, not through NATS yet)."""

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
                out.append(json.loads(entry.value or b""))
            except ValueError:
                continue
        return out

    try:
        return client.call(read)
    finally:
        client.close()
