"""The routing journal: one JSON line per message the router decided on.

It is the commit point that makes routing exactly-once across crashes: a decision is
appended before any copy is delivered, so an engine killed mid-message replays the same
decision on restart (deliveries are idempotent by message id) instead of deciding again and
debiting twice. It is also where budgets come from: spent tokens are summed from it.

The workspace's journal is `.comm-node/guarded/ledger.jsonl` (`Ledger.in_store`), walled
from sandboxed agents as a folder: compaction renames a new file in, which undid a single
file's read-only mount in a sandbox already running, and a waiting command could then rewrite
what its domain had spent. An older comm-node's `.comm-node/ledger.jsonl` is read until the
engine's first append or compaction moves it (protocol/guarded.py).
"""

from __future__ import annotations

import json
import os

from comm_node_tui.protocol import guarded, jsonfast
from comm_node_tui.protocol.fileio import FILE_MODE, atomic_write

KEEP_SENDERS = 20_000
LEDGER_FILE = "ledger.jsonl"


class Ledger:
    def __init__(self, path: str) -> None:
        self.path = path
        self.state_dir: str | None = None  # in_store: guarded/'s journal, read from there
        self.decisions: dict[str, dict] = {}
        self.spent: dict[str, int] = {}
        self.sent: dict[str, int] = {}  # messages routed, per sender
        self.answered: dict[str, int] = {}  # replies received to a domain's messages
        self.senders: dict[str, str] = {}  # message id -> sender, kept across compaction
        self._fd: int | None = None

    @classmethod
    def in_store(cls, state_dir: str) -> Ledger:
        """The workspace's journal, in guarded/ (an older comm-node's read until moved)."""
        ledger = cls(guarded.path_of(state_dir, LEDGER_FILE))
        ledger.state_dir = state_dir
        return ledger

    def load(self) -> None:
        self.decisions.clear()
        self.spent.clear()
        self.sent.clear()
        self.answered.clear()
        self.senders.clear()
        path = self.path if self.state_dir is None else guarded.source(self.state_dir, LEDGER_FILE)
        try:
            fh = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return
        with fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except (ValueError, RecursionError):
                    continue  # a torn last line from a crash
                if isinstance(rec, dict):
                    self._apply(rec)

    def _apply(self, rec: dict) -> None:
        if "carry" in rec:
            dom = str(rec["carry"])
            for field, table in (
                ("spent", self.spent),
                ("sent", self.sent),
                ("answered", self.answered),
            ):
                table[dom] = table.get(dom, 0) + int(rec.get(field, 0))
            return
        if "sender_of" in rec:
            self.senders[str(rec["sender_of"])] = str(rec.get("from"))
            return
        ident = rec.get("id")
        if not isinstance(ident, str) or ident in self.decisions:
            return
        self.decisions[ident] = rec
        sender = rec.get("from")
        if isinstance(sender, str) and rec.get("outcome") == "routed":
            self.senders[ident] = sender
        if isinstance(sender, str):
            self.spent[sender] = self.spent.get(sender, 0) + int(rec.get("cost", 0))
            if rec.get("outcome") == "routed":
                self.sent[sender] = self.sent.get(sender, 0) + 1
        answers = rec.get("answers")
        if isinstance(answers, str):
            self.answered[answers] = self.answered.get(answers, 0) + 1

    def record(self, rec: dict) -> None:
        # jsonfast: the same text as json.dumps (tests/test_jsonfast.py), without building
        # a JSONEncoder per line, once per routed message.
        line = (jsonfast.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        if self._fd is None:
            if self.state_dir is not None:
                # an older comm-node's journal moves in first (same inode): one file, never
                # the old decisions in one and the new in another
                guarded.adopt(self.state_dir, LEDGER_FILE)
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE
            )
        os.write(self._fd, line)
        self._apply(rec)

    def compact(self, keep_ids: set[str]) -> None:
        """Rewrite as one carry line per domain plus the decisions still in flight."""
        kept = Ledger(self.path)
        for ident in sorted(keep_ids):
            if ident in self.decisions:
                kept._apply(self.decisions[ident])
        lines: list[dict] = []
        for dom in sorted(set(self.spent) | set(self.sent) | set(self.answered)):
            lines.append(
                {
                    "carry": dom,
                    "spent": self.spent.get(dom, 0) - kept.spent.get(dom, 0),
                    "sent": self.sent.get(dom, 0) - kept.sent.get(dom, 0),
                    "answered": self.answered.get(dom, 0) - kept.answered.get(dom, 0),
                }
            )
        # Who sent the most recent messages, so a reply after a restart still credits the
        # asker (bounded: replies to very old messages stop counting).
        recent = list(self.senders.items())[-KEEP_SENDERS:]
        lines += [{"sender_of": i, "from": f} for i, f in recent if i not in keep_ids]
        lines += [self.decisions[i] for i in sorted(keep_ids) if i in self.decisions]
        self.close()
        text = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines)
        if self.state_dir is None:
            atomic_write(self.path, text)
        else:
            guarded.write(self.state_dir, LEDGER_FILE, text)  # moves an older comm-node's
        self.load()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
