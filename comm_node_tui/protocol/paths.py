"""Where every protocol file lives. One place, so the contract in docs/protocol.md and the
code cannot drift apart."""

from __future__ import annotations

import os

CONFIG_NAME = "comm-node.toml"
STATE_DIR = ".comm-node"


class WorkspacePaths:
    """Central state in `<workspace>/.comm-node/`, written by the engine alone."""

    __slots__ = ("root",)

    def __init__(self, root: str) -> None:
        self.root = root

    @property
    def config(self) -> str:
        return os.path.join(self.root, CONFIG_NAME)

    @property
    def state(self) -> str:
        return os.path.join(self.root, STATE_DIR)

    @property
    def events(self) -> str:
        return os.path.join(self.state, "events.jsonl")

    @property
    def ledger(self) -> str:
        """Routing journal: one line per routed or bounced message (crash recovery, budgets);
        in guarded/ (protocol/guarded.py; read it with coordination/ledger.Ledger.in_store,
        which also reads an older comm-node's `.comm-node/ledger.jsonl`)."""
        return os.path.join(self.guarded, "ledger.jsonl")

    @property
    def archive(self) -> str:
        return os.path.join(self.state, "archive")

    @property
    def operator_inbox(self) -> str:
        """Messages agents send `--to operator` land here for the control room."""
        return os.path.join(self.state, "operator", "inbox")

    @property
    def operator(self) -> DomainPaths:
        """The operator's mailbox as a domain's (inbox, inbox/read): `comm-node inbox
        --operator` lists it and marks read as an agent does ("operator" is a reserved name,
        no domain has it)."""
        return DomainPaths("operator", self.root, shared=True)

    @property
    def engine_lock(self) -> str:
        return os.path.join(self.state, "engine.pid")

    @property
    def guarded(self) -> str:
        """Files the host writes that no agent may change, in a folder a sandboxed agent
        sees read-only as a whole: a read-only mount of a single file is gone, in a sandbox
        already running, once the host renames a new version over it (atomic_write)."""
        return os.path.join(self.state, "guarded")

    @property
    def config_cache(self) -> str:
        return os.path.join(self.guarded, "config.cache.json")

    def budget(self, domain: str) -> str:
        """Where the engine writes a domain's budget, its work budget's pause included (read
        it with protocol/guarded.budget_source, which also reads an older comm-node's)."""
        from comm_node_tui.protocol.guarded import budget_name

        return os.path.join(self.guarded, budget_name(domain))


class DomainPaths:
    """Per-domain protocol directory: `<domain path>/.comm-node/`.

    When several domains share one directory (a monorepo split by scope), each gets
    `<domain path>/.comm-node/<name>/` so their inboxes never mix.
    """

    __slots__ = ("dir", "name", "path")

    def __init__(self, name: str, path: str, shared: bool = False) -> None:
        self.name = name
        self.path = path
        base = os.path.join(path, STATE_DIR)
        self.dir = os.path.join(base, name) if shared else base

    @property
    def inbox(self) -> str:
        return os.path.join(self.dir, "inbox")

    @property
    def inbox_read(self) -> str:
        return os.path.join(self.dir, "inbox", "read")

    @property
    def outbox(self) -> str:
        return os.path.join(self.dir, "outbox")

    @property
    def artifacts(self) -> str:
        return os.path.join(self.dir, "artifacts")

    @property
    def status(self) -> str:
        return os.path.join(self.dir, "status.json")

    @property
    def legacy_budget(self) -> str:
        """Where an older comm-node kept the domain's budget, in a folder the agent may
        write: read only while guarded/ has none (WorkspacePaths.budget)."""
        return os.path.join(self.dir, "budget.json")

    @property
    def registry(self) -> str:
        return os.path.join(self.dir, "registry.json")

    def ensure(self) -> None:
        from comm_node_tui.protocol.fileio import ensure_dir

        for d in (self.inbox, self.inbox_read, self.outbox, self.artifacts):
            ensure_dir(d)
