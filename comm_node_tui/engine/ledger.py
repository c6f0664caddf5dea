"""The routing journal: one JSON line per message the router decided on.

It is the commit point that makes routing exactly-once across crashes: a decision is
appended before any copy is delivered, so an engine killed mid-message replays the same
decision on restart (deliveries are idempotent by message id) instead of deciding again and
debiting twice. It is also where budgets come from: spent tokens are summed from it.
"""

from __future__ import annotations

import json
import os

from comm_node_tui.protocol.fileio import FILE_MODE, atomic_write


class Ledger:
    def __init__(self, path: str) -> None:
        self.path = path
        self.decisions: dict[str, dict] = {}
        self.spent: dict[str, int] = {}
        self.granted: dict[str, int] = {}
        self._fd: int | None = None

    def load(self) -> None:
        self.decisions.clear()
        self.spent.clear()
        self.granted.clear()
        try:
            fh = open(self.path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return
        with fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a crash
                if isinstance(rec, dict):
                    self._apply(rec)

    def _apply(self, rec: dict) -> None:
        if "carry" in rec:
            dom = str(rec["carry"])
            self.spent[dom] = self.spent.get(dom, 0) + int(rec.get("spent", 0))
            self.granted[dom] = self.granted.get(dom, 0) + int(rec.get("granted", 0))
            return
        if "grant" in rec:
            dom = str(rec["grant"])
            self.granted[dom] = self.granted.get(dom, 0) + int(rec.get("tokens", 0))
            return
        ident = rec.get("id")
        if not isinstance(ident, str) or ident in self.decisions:
            return
        self.decisions[ident] = rec
        sender = rec.get("from")
        if isinstance(sender, str):
            self.spent[sender] = self.spent.get(sender, 0) + int(rec.get("cost", 0))

    def record(self, rec: dict) -> None:
        line = (json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        if self._fd is None:
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE
            )
        os.write(self._fd, line)
        self._apply(rec)

    def compact(self, keep_ids: set[str]) -> None:
        """Rewrite as one carry line per domain plus the decisions still in flight."""
        decided_spent: dict[str, int] = {}
        for ident in keep_ids:
            rec = self.decisions.get(ident)
            if rec and isinstance(rec.get("from"), str):
                decided_spent[rec["from"]] = decided_spent.get(rec["from"], 0) + int(
                    rec.get("cost", 0)
                )
        lines = []
        for dom in sorted(set(self.spent) | set(self.granted)):
            carry = self.spent.get(dom, 0) - decided_spent.get(dom, 0)
            lines.append({"carry": dom, "spent": carry, "granted": self.granted.get(dom, 0)})
        lines += [self.decisions[i] for i in sorted(keep_ids) if i in self.decisions]
        self.close()
        atomic_write(self.path, "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines))
        self.load()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
