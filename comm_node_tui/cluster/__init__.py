"""Engines on several machines, one NATS JetStream between them (docs/cluster.md).

Imported only when comm-node.toml has `[cluster] nats = ...`; nats-py itself is imported
lazily inside, so `import comm_node_tui.cluster` alone costs nothing. Sits just above the
workspace layer: coordination uses `kvstore.ClusterStore` for its compare-and-set decisions,
the engine uses `relay.Relay` for messages and state; neither is imported from here.
"""
