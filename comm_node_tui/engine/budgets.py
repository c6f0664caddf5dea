"""Communication budgets: what each domain may still spend on messages, from the ledger."""

from __future__ import annotations

import json

from comm_node_tui.engine.ledger import Ledger
from comm_node_tui.protocol.fileio import atomic_write
from comm_node_tui.protocol.messages import now_iso
from comm_node_tui.workspace.model import Workspace


class Budgets:
    """budget_tokens = 0 means unlimited (spending is still counted)."""

    def __init__(self, ws: Workspace, ledger: Ledger) -> None:
        self.ws = ws
        self.ledger = ledger
        self._dirty: set[str] = set()

    def limit(self, domain: str) -> int:
        base = self.ws.domains[domain].budget_tokens
        return base + self.ledger.granted.get(domain, 0) if base else 0

    def spent(self, domain: str) -> int:
        return self.ledger.spent.get(domain, 0)

    def remaining(self, domain: str) -> int | None:
        """Tokens left, or None when unlimited."""
        limit = self.limit(domain)
        return None if not limit else limit - self.spent(domain)

    def allows(self, domain: str, cost: int) -> bool:
        left = self.remaining(domain)
        return left is None or cost <= left

    def touched(self, domain: str) -> None:
        self._dirty.add(domain)

    def snapshot(self, domain: str) -> dict:
        left = self.remaining(domain)
        return {
            "domain": domain,
            "budget_tokens": self.limit(domain),
            "spent_tokens": self.spent(domain),
            "remaining_tokens": left,
            "unlimited": left is None,
            "updated": now_iso(),
        }

    def flush(self, everything: bool = False) -> None:
        """Write budget.json for every domain whose spending changed (batched per scan)."""
        names = list(self.ws.domains) if everything else sorted(self._dirty)
        self._dirty.clear()
        for name in names:
            dom = self.ws.domains.get(name)
            if dom is None:
                continue
            try:
                atomic_write(dom.paths.budget, json.dumps(self.snapshot(name), indent=1) + "\n")
            except OSError:
                pass  # the domain directory vanished; the watchdog reports that
