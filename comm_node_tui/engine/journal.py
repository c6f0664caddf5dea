"""The routing journal (ledger.jsonl) kept short while the engine runs (it is compacted at
start too): without this, memory and the file grow with every message of a long session."""

from __future__ import annotations

import os

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event

LEDGER_COMPACT_AT = 5_000  # decisions kept in memory before the journal is compacted


class JournalKeeper:
    def __init__(self, ctx: EngineContext, compact_at: int = LEDGER_COMPACT_AT) -> None:
        self.ctx = ctx
        self.compact_at = compact_at

    def tick(self) -> None:
        if len(self.ctx.ledger.decisions) > self.compact_at:
            self.compact()

    def compact(self) -> None:
        """Every decision whose message has left its outbox becomes part of the per-domain
        totals; the decisions still in flight are kept."""
        ctx = self.ctx
        archive = ctx.ws.paths.archive
        in_flight = {
            ident
            for ident in ctx.ledger.decisions
            if not os.path.exists(os.path.join(archive, "routed", f"{ident}.md"))
            and not os.path.exists(os.path.join(archive, "bounced", f"{ident}.md"))
        }
        try:
            ctx.ledger.compact(keep_ids=in_flight)
        except OSError as exc:
            ctx.emit(Event("ledger.compact_failed", str(exc), level="warn"))
