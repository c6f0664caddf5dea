"""The router: validates each outbox message, debits budgets, delivers copies, bounces the rest.

Order of a message's life, chosen so a SIGKILL at any point loses and doubles nothing:
  1. decide (validate, cost, budget) and append the decision to the ledger (commit point);
  2. deliver a copy to each recipient, named by the message id (skipped if already there);
  3. move the original from the outbox into the archive;
  4. append the event.
On restart a message still in an outbox whose id is in the ledger replays its decision.

A copy for another machine ([cluster]) is published in step 2 without waiting; the message
then waits (its steps 3 and 4 held) until the end of the outbox's scan or ACK_BATCH such
messages, whichever is first, and the batch's acks are awaited together: a message leaves
the outbox only once every copy of it is acked, as when each ack was awaited in turn.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import time
from collections.abc import Callable
from typing import Any

from comm_node_tui.coordination.budgets import Budgets
from comm_node_tui.coordination.ledger import Ledger
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.fileio import (
    FileTooLarge,
    NotARegularFile,
    atomic_write,
    ensure_dir,
    read_bounded,
)
from comm_node_tui.protocol.messages import (
    MessageFormatError,
    estimate_tokens,
    now_iso,
    render,
    split,
)
from comm_node_tui.workspace.model import Domain, Workspace

TYPE_CHECKING = False  # pydantic is imported by Router(), not by importing this module
if TYPE_CHECKING:
    from comm_node_tui.protocol.models import OutboxMessage

OPERATOR = "operator"
SETTLE_S = 1.0  # a file that fails to parse this soon after its last write may still be written
BOUNCE_QUOTE_CHARS = 600
ACK_BATCH = 256  # messages with copies for other machines whose acks are awaited together


class Router:
    def __init__(
        self,
        ws: Workspace,
        ledger: Ledger,
        budgets: Budgets,
        emit: Callable[[Event], None],
    ) -> None:
        self.ws = ws
        self.ledger = ledger
        self.budgets = budgets
        self.emit = emit
        self.routed = 0
        self.bounced = 0
        self.deferred: set[str] = set()
        self.delivered_to: set[str] = set()  # recipients since the engine last looked
        self.stuck: dict[str, str] = {}  # outbox path -> why it could not be delivered yet
        # The cluster's seam (cluster/relay.py): domains owned by another machine and how a
        # copy reaches them. OSError from `remote` leaves the message in the outbox.
        # `remote` publishes and returns the pending ack, which `acked(pending, deadline)`
        # waits for (OSError without it).
        self.remote_domains: frozenset[str] = frozenset()
        self.remote: Callable[[str, str, str], Any] | None = None
        self.acked: Callable[[Any, float], None] | None = None
        self.ack_wait_s = 5.0
        # messages whose remote copies are published and not yet acked:
        # (domain, outbox path, what finishes the message, the pending acks)
        self._unacked: list[tuple[Domain, str, Callable[[], None], list]] = []
        from comm_node_tui.protocol.models import OutboxMessage

        self._model = OutboxMessage
        # Paths joined once per workspace, not a dozen os.path.join calls a message (they
        # were a tenth of the routing CPU): rebuilt when the engine swaps in a reloaded
        # Workspace (`router.ws = ws`).
        self._paths_of: Workspace | None = None
        self._mailboxes: dict[str, tuple[str, str, str]] = {}
        self._archive_dirs: tuple[str, str] = ("", "")

    def _paths(self) -> None:
        if self._paths_of is self.ws:
            return
        archive = self.ws.paths.archive
        self._archive_dirs = (os.path.join(archive, "routed"), os.path.join(archive, "bounced"))
        self._mailboxes = {
            name: (dom.path, dom.paths.inbox, dom.paths.inbox_read)
            for name, dom in self.ws.domains.items()
        }
        self._paths_of = self.ws

    def _mailbox(self, name: str) -> tuple[str, str, str]:
        """(domain directory, inbox, inbox/read) of a domain of the current workspace."""
        self._paths()
        found = self._mailboxes.get(name)
        if found is None:  # a domain added to this Workspace in place: join its paths now
            dom = self.ws.domains[name]
            found = self._mailboxes[name] = (dom.path, dom.paths.inbox, dom.paths.inbox_read)
        return found

    # ---- scanning ---------------------------------------------------------------------
    def scan_outbox(self, dom: Domain) -> int:
        """Route everything waiting in one domain's outbox, oldest name first."""
        outbox = dom.paths.outbox
        try:
            names = sorted(os.listdir(outbox))
        except (FileNotFoundError, NotADirectoryError):
            return 0
        except PermissionError:
            self.emit(
                Event(
                    "outbox.unreadable",
                    f"{outbox}: permission denied",
                    agent=dom.name,
                    level="error",
                )
            )
            return 0
        handled = 0
        for name in names:
            if name.startswith("."):
                continue  # temp files of atomic writes
            path = f"{outbox}/{name}"  # os.path.join's checks cost more than the write
            try:
                if self.process(dom, path):
                    handled += 1
                    self.stuck.pop(path, None)
            except OSError as exc:
                self._defer(dom, path, exc)
            if len(self._unacked) >= ACK_BATCH:
                handled += self.settle()
        return handled + self.settle()

    def _defer(self, dom: Domain, path: str, exc: OSError) -> None:
        """A full disk, a recipient whose directory is gone, no ack from another machine:
        this message waits in the outbox (its decision is in the ledger, so a retry neither
        re-debits nor doubles) and the ones behind it still go."""
        name = os.path.basename(path)
        why = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
        if self.stuck.get(path) != why:
            self.stuck[path] = why
            self.emit(
                Event(
                    "message.deferred",
                    f"{dom.name}: '{name}' waits in the outbox: {why}",
                    agent=dom.name,
                    level="error",
                    data={"file": name, "error": why},
                )
            )

    def settle(self) -> int:
        """Wait for the acks of the messages published for other machines (together: one
        deadline for the batch), then finish each message all of whose copies were acked;
        the others wait in their outboxes. The number finished."""
        batch, self._unacked = self._unacked, []
        if not batch or self.acked is None:
            return 0
        deadline = time.monotonic() + self.ack_wait_s
        done = 0
        for dom, path, finish, pending in batch:
            try:
                for ack in pending:
                    self.acked(ack, deadline)
                finish()
            except OSError as exc:
                self._defer(dom, path, exc)
                continue
            done += 1
            self.stuck.pop(path, None)
        return done

    # ---- one message ------------------------------------------------------------------
    def process(self, dom: Domain, path: str) -> bool:
        """Route or bounce one outbox entry; False when it is gone or should be retried."""
        name = os.path.basename(path)
        limit = self.ws.settings.router.max_message_bytes
        try:
            raw = read_bounded(path, limit)
        except FileNotFoundError:
            return False
        except NotARegularFile as exc:
            kind = str(exc).rsplit(" is ", 1)[-1].split(",")[0]
            why = f"outbox entry '{name}' is {kind}; comm-node does not follow it"
            self._reject(dom, path, why, key=self._stat_key(dom, path))
            return True
        except FileTooLarge as exc:
            self._reject(
                dom,
                path,
                f"message file '{name}' is {exc.size} bytes, over the "
                f"limit of {exc.limit} bytes ([router] max_message_bytes)",
                key=self._stat_key(dom, path),
            )
            return True
        except OSError as exc:
            self.emit(
                Event("outbox.unreadable", f"{path}: {exc.strerror}", agent=dom.name, level="error")
            )
            return False
        if not name.endswith(".md"):
            self._reject(
                dom,
                path,
                f"'{name}' is not a message: outbox files end in .md",
                key=self._content_key(dom, name, raw),
            )
            return True
        try:
            meta, body = split(raw.decode("utf-8"))
            msg = self._model.model_validate(meta)
        except (UnicodeDecodeError, MessageFormatError, ValueError) as exc:
            if self._may_still_be_written(path):
                self.deferred.add(path)
                return False
            self.deferred.discard(path)
            from comm_node_tui.protocol.models import first_problem

            if isinstance(exc, UnicodeDecodeError):
                why = f"not UTF-8 text (byte {exc.start})"
            elif isinstance(exc, MessageFormatError):
                why = str(exc)
            else:
                why = first_problem(exc)
            self._reject(
                dom,
                path,
                f"'{name}' has bad front matter: {why}",
                key=self._content_key(dom, name, raw),
            )
            return True
        self.deferred.discard(path)
        ident = msg.id or self._derived_id(dom, name, raw, path)
        archived = self._archived_copy(ident)
        if archived is not None:
            if archived == raw:  # a move into the archive was cut short: finish it
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                return True
            self._reject(
                dom,
                path,
                f"message id '{ident}' was already used; send it again "
                "without an id (comm-node send picks a fresh one)",
                key=self._content_key(dom, name, raw),
                orig_id=ident,
            )
            return True
        decision = self.ledger.decisions.get(ident)
        if decision is None:
            decision = self._decide(dom, msg, ident, body)
            self.ledger.record(decision)
            self.budgets.touched(dom.name)
        if decision["outcome"] == "routed":
            pending = self._deliver(dom, msg, ident, body, decision)

            def finish() -> None:
                # Only this machine's recipients: a copy for another machine's agent is
                # nudged by the engine that owns it, when it lands in that inbox.
                self.delivered_to.update(n for n in decision["to"] if n not in self.remote_domains)
                self._archive(path, ident, bounced=False)
                self.routed += 1
                self.emit(
                    Event(
                        "message.routed",
                        f"{dom.name} -> {', '.join(decision['to'])}: {msg.type}"
                        + (f" ({msg.task})" if msg.task else ""),
                        agent=dom.name,
                        data={
                            "id": ident,
                            "from": dom.name,
                            "to": decision["to"],
                            "type": msg.type,
                            "task": msg.task,
                            "priority": msg.priority,
                            "tokens": decision["tokens"],
                            "cost": decision["cost"],
                            "subject": msg.subject or _subject(body),
                        },
                    )
                )

            if pending:  # finished once its copies on other machines are acked (settle)
                self._unacked.append((dom, path, finish, pending))
                return False
            finish()
        else:
            self._bounce(dom, decision["reason"], ident, body, f"b-{ident}")
            self._archive(path, ident, bounced=True)
            self.bounced += 1
            self.emit(
                Event(
                    "message.bounced",
                    f"{dom.name}: {decision['reason']}",
                    agent=dom.name,
                    level="error",
                    data={"id": ident, "from": dom.name, "reason": decision["reason"]},
                )
            )
        return True

    def _decide(self, dom: Domain, msg: OutboxMessage, ident: str, body: str) -> dict:
        base = {"id": ident, "from": dom.name, "ts": now_iso(), "type": msg.type}
        tokens = estimate_tokens(body)

        def bounce(reason: str) -> dict:
            return {
                **base,
                "outcome": "bounced",
                "reason": reason,
                "to": [],
                "tokens": tokens,
                "cost": 0,
            }

        if msg.from_ is not None and msg.from_ != dom.name:
            return bounce(
                f"'from: {msg.from_}' does not match the outbox it was found in "
                f"({dom.name}); a domain sends only as itself"
            )
        recipients: list[str] = []
        for name in msg.to:
            if name == "*":
                recipients += [d for d in self.ws.domains if d != dom.name]
            elif name == OPERATOR or name in self.ws.domains:
                if name == dom.name:
                    return bounce("a domain cannot send a message to itself")
                recipients.append(name)
            else:
                known = ", ".join(sorted(self.ws.domains)) or "none"
                return bounce(f"unknown recipient '{name[:64]}' (known: {known}, operator, *)")
        recipients = list(dict.fromkeys(recipients))
        if not recipients:
            return bounce("no recipient: '*' found no other domain")
        for name in recipients:
            if (
                name != OPERATOR
                and name not in self.remote_domains
                and not os.path.isdir(self.ws.domains[name].path)
            ):
                return bounce(f"recipient '{name}' has no directory ({self.ws.domains[name].path})")
        if msg.token_budget is not None and tokens > msg.token_budget:
            return bounce(
                f"the message is about {tokens} tokens, over its own token_budget of "
                f"{msg.token_budget}; shorten it or raise --budget"
            )
        per_recipient = self.ws.settings.router.count_broadcast_per_recipient
        cost = tokens * (len(recipients) if per_recipient else 1)
        if not self.budgets.allows(dom.name, cost):
            left = self.budgets.remaining(dom.name)
            return bounce(
                f"over budget: the message costs {cost} tokens and {dom.name} has "
                f"{left} left; ask the operator for more"
            )
        routed = {**base, "outcome": "routed", "to": recipients, "tokens": tokens, "cost": cost}
        asker = self.ledger.senders.get(msg.reply_to) if msg.reply_to else None
        if asker and asker != dom.name:
            routed["answers"] = asker  # counts towards the asker's efficiency
        return routed

    # ---- effects (each idempotent) ------------------------------------------------------
    def _deliver(
        self, dom: Domain, msg: OutboxMessage, ident: str, body: str, decision: dict
    ) -> list:
        """Write the local copies; publish the remote ones: their pending acks."""
        meta = {
            "id": ident,
            "from": dom.name,
            "to": decision["to"],
            "type": msg.type,
            "task": msg.task,
            "priority": msg.priority,
            "token_budget": msg.token_budget,
            "reply_to": msg.reply_to,
            "created": msg.created or decision["ts"],
            "tokens": decision["tokens"],
            "routed": decision["ts"],
        }
        if msg.subject:
            meta["subject"] = msg.subject
        meta = {k: v for k, v in meta.items() if v is not None}
        text = render(meta, body)
        pending = []
        for name in decision["to"]:
            if name == OPERATOR:
                # the operator marks read as an agent does (`comm-node inbox --operator`)
                mailbox = self.ws.paths.operator
                inbox, read_dir = mailbox.inbox, mailbox.inbox_read
            elif name in self.remote_domains and self.remote is not None:
                # on another machine: through the cluster, acked in settle()
                pending.append(self.remote(name, ident, text))
                continue
            else:
                home, inbox, read_dir = self._mailbox(name)
                self.deliver_copy(inbox, read_dir, ident, text, home=home, recipient=name)
                continue
            self.deliver_copy(inbox, read_dir, ident, text)
        return pending

    def deliver_copy(
        self,
        inbox: str,
        read_dir: str | None,
        ident: str,
        text: str,
        *,
        home: str | None = None,
        recipient: str = "",
    ) -> None:
        """Write one copy into `inbox` unless it is there (or read) already. An inbox that is
        missing is created, but never inside a `home` (the domain's directory) that is gone."""
        file = f"{ident}.md"
        target = f"{inbox}/{file}"
        if os.path.exists(target) or (read_dir and os.path.exists(f"{read_dir}/{file}")):
            return  # delivered before a crash: at-least-once becomes exactly-once here
        try:
            atomic_write(target, text)
        except (FileNotFoundError, NotADirectoryError) as exc:
            # Only now ask whether the domain's directory is there: a write into an inbox
            # that exists proves it, so the usual copy costs no extra stat.
            if home is not None and not os.path.isdir(home):
                # never re-create a domain directory someone removed: wait for it
                raise FileNotFoundError(2, f"{recipient}'s directory is missing", home) from None
            if isinstance(exc, NotADirectoryError):
                raise  # the inbox (or a folder above it) is a file: it waits, as before
            ensure_dir(inbox)
            atomic_write(target, text)

    def _bounce(
        self, dom: Domain, reason: str, orig_id: str | None, body: str, bounce_id: str
    ) -> None:
        quoted = body.strip()
        if len(quoted) > BOUNCE_QUOTE_CHARS:
            quoted = quoted[:BOUNCE_QUOTE_CHARS] + " [...]"
        text_body = f"Not delivered: {reason}.\n"
        if quoted:
            text_body += (
                "\nYour message began:\n\n"
                + "\n".join("> " + line for line in quoted.splitlines())
                + "\n"
            )
        meta = {
            "id": bounce_id,
            "from": "comm-node",
            "to": [dom.name],
            "type": "bounce",
            "priority": "high",
            "reply_to": orig_id,
            "created": now_iso(),
            "reason": reason,
        }
        meta = {k: v for k, v in meta.items() if v is not None}
        self.deliver_copy(dom.paths.inbox, dom.paths.inbox_read, bounce_id, render(meta, text_body))

    def _reject(
        self, dom: Domain, path: str, reason: str, *, key: str, orig_id: str | None = None
    ) -> None:
        """Bounce an entry that never became a message (unreadable, malformed, duplicate)."""
        bounce_id = f"b-{key}"
        self._bounce(dom, reason, orig_id, "", bounce_id)
        self._archive(path, bounce_id, bounced=True)
        self.bounced += 1
        self.emit(
            Event(
                "message.bounced",
                f"{dom.name}: {reason}",
                agent=dom.name,
                level="error",
                data={
                    "id": orig_id,
                    "from": dom.name,
                    "reason": reason,
                    "file": os.path.basename(path),
                },
            )
        )

    def _archive(self, path: str, ident: str, *, bounced: bool) -> None:
        self._paths()
        folder = self._archive_dirs[1 if bounced else 0]
        target = f"{folder}/{ident}.md"
        try:
            self._move(path, target)
        except FileNotFoundError:
            ensure_dir(folder)
            try:
                self._move(path, target)
            except FileNotFoundError:
                pass  # already archived before a crash

    @staticmethod
    def _move(src: str, dst: str) -> None:
        # One lstat tells a link, a directory and a file apart (islink + isdir were two).
        mode = os.lstat(src).st_mode
        if stat.S_ISLNK(mode):
            # Keep the evidence, not the link: an archived symlink would still point at
            # whatever it named (another inbox, /etc/passwd) for anyone who opens it.
            target = os.readlink(src)
            atomic_write(dst, f"(an outbox entry that was a symlink to {target!r})\n")
            os.unlink(src)
            return
        if stat.S_ISDIR(mode):
            if os.path.exists(dst):
                dst += f".{os.urandom(3).hex()}"
            shutil.move(src, dst)
            return
        try:
            os.replace(src, dst)
        except OSError as exc:
            if exc.errno != 18:  # EXDEV: the domain lives on another filesystem
                raise
            shutil.copy2(src, dst, follow_symlinks=False)
            os.unlink(src)

    # ---- helpers ------------------------------------------------------------------------
    def _archived_copy(self, ident: str) -> bytes | None:
        """The archived bytes of a routed message with this id, or None."""
        self._paths()
        try:
            return read_bounded(f"{self._archive_dirs[0]}/{ident}.md", 16 << 20)
        except (OSError, FileTooLarge, NotARegularFile):
            return None

    @staticmethod
    def _may_still_be_written(path: str) -> bool:
        try:
            return time.time() - os.lstat(path).st_mtime < SETTLE_S
        except OSError:
            return False

    @staticmethod
    def _derived_id(dom: Domain, name: str, raw: bytes, path: str) -> str:
        """A stable id for a hand-written message without one.

        The same file (name, bytes, mtime) always gets the same id, so a restart replays
        it; the same text written again later is a new file and a new message.
        """
        try:
            mtime = str(os.lstat(path).st_mtime_ns).encode()
        except OSError:
            mtime = b""
        digest = hashlib.sha256(b"\0".join((dom.name.encode(), name.encode(), mtime, raw)))
        return f"m-{dom.name}-{digest.hexdigest()[:16]}"

    @staticmethod
    def _content_key(dom: Domain, name: str, raw: bytes) -> str:
        digest = hashlib.sha256(dom.name.encode() + b"\0" + name.encode() + b"\0" + raw)
        return digest.hexdigest()[:20]

    @staticmethod
    def _stat_key(dom: Domain, path: str) -> str:
        try:
            st = os.lstat(path)
            token = f"{dom.name}\0{path}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}"
        except OSError:
            token = f"{dom.name}\0{path}"
        return hashlib.sha256(token.encode()).hexdigest()[:20]


def _subject(body: str) -> str:
    for line in body.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""
