"""Communication budgets: what each domain may still spend on messages, from the ledger."""

from __future__ import annotations

import json
import os

from comm_node_tui.coordination.ledger import Ledger
from comm_node_tui.protocol import guarded
from comm_node_tui.protocol.fileio import atomic_write
from comm_node_tui.protocol.messages import now_iso
from comm_node_tui.workspace.model import Workspace


class Budgets:
    """budget_tokens = 0 means unlimited (spending is still counted)."""

    def __init__(self, ws: Workspace, ledger: Ledger) -> None:
        self.ws = ws
        self.ledger = ledger
        self._dirty: set[str] = set()
        self._grants: dict[str, int] = {}
        self.work: dict[str, dict] = {}  # model-token use against work budgets (engine)
        self._grants_stamp: object = None
        self._legacy_dropped: set[str] = set()  # domains whose old budget.json is gone

    def granted(self, domain: str) -> int:
        """Tokens granted on top of the base budget (re-read when the grants file changes)."""
        path = guarded.source(self.ws.paths.state, GRANTS_FILE)
        try:
            st = os.stat(path)
            stamp = (path, st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            stamp = None
        if stamp != self._grants_stamp:
            self._grants_stamp = stamp
            self._grants = grant_totals(self.ws)
            self._dirty.update(self._grants)
        return self._grants.get(domain, 0)

    def limit(self, domain: str) -> int:
        base = self.ws.domains[domain].budget_tokens
        return base + self.granted(domain) if base else 0

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
            "base_tokens": self.ws.domains[domain].budget_tokens,
            "granted_tokens": self.granted(domain),
            "spent_tokens": self.spent(domain),
            "messages_sent": self.ledger.sent.get(domain, 0),
            "answers_received": self.ledger.answered.get(domain, 0),
            "remaining_tokens": left,
            "unlimited": left is None,
            "work": self.work.get(domain),
            "updated": now_iso(),
        }

    def flush(self, everything: bool = False) -> None:
        """Write the budget file (`.comm-node/guarded/budget.<domain>.json`: the hooks
        enforce its work budget's pause there) of every domain whose spending changed
        (batched per scan)."""
        names = list(self.ws.domains) if everything else sorted(self._dirty)
        self._dirty.clear()
        if not names:
            return
        try:
            guarded.make_folder(self.ws.paths.state)
        except OSError:
            return  # the workspace's store is gone: nothing to write into
        for name in names:
            dom = self.ws.domains.get(name)
            if dom is None:
                continue
            try:
                atomic_write(
                    self.ws.paths.budget(name), json.dumps(self.snapshot(name), indent=1) + "\n"
                )
            except OSError:
                continue
            if name not in self._legacy_dropped:
                # an older comm-node's file in the domain's folder: never read from now on
                self._legacy_dropped.add(name)
                guarded.drop_file(dom.paths.legacy_budget)


GRANTS_FILE = "budget-grants.json"


def grant_totals(ws: Workspace) -> dict[str, int]:
    """Granted tokens per domain from `.comm-node/guarded/budget-grants.json` (or an older
    comm-node's `.comm-node/budget-grants.json` until it is moved: protocol/guarded.py)."""
    from comm_node_tui.protocol.fileio import read_json_bounded

    try:
        path = guarded.source(ws.paths.state, GRANTS_FILE)
        data = read_json_bounded(path, 16 * 1024 * 1024)
    except (OSError, ValueError):
        return {}
    totals: dict[str, int] = {}
    for g in data.get("grants", []) if isinstance(data, dict) else []:
        if isinstance(g, dict) and isinstance(g.get("domain"), str):
            try:
                totals[g["domain"]] = totals.get(g["domain"], 0) + int(g.get("tokens", 0))
            except (TypeError, ValueError):
                continue
    return totals
