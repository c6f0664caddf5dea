"""Conflict warnings ahead of time (`[integration] conflict_check_s`): every pair of domains'
current work merged in memory (integration/conflicts.py). A conflict seen for the first time
is an alert and a message from comm-node to both agents (the files and hunks, bounded); one
that went away is reported cleared. What is known is kept in conflicts.json, so a restart
does not warn again, and viewers of this engine (`comm-node status`, a second room) read it.

read() runs git in a worker thread and returns a PassResult; apply() takes it in on the
engine's loop thread: the events, the messages and the file come from there. A domain git
cannot answer for is one line (integration.check_failed, once until it changes) and its
earlier conflicts are kept as they were: not knowing is not "cleared".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from typing import TYPE_CHECKING

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.messages import now_iso, render
from comm_node_tui.protocol.printable import printable

if TYPE_CHECKING:
    from comm_node_tui.integration.conflicts import Conflict, ConflictChecker, PassResult

STORE = "conflicts.json"
MAX_MESSAGE_CHARS = 6000  # the files and hunks told to an agent, at most
MAX_FILES_NAMED = 10  # in an event's one line


def shown(text: str) -> str:
    """A path or a line from an agent's files, on one line with nothing but printable text."""
    return printable(text)


def _names(paths: list[str]) -> str:
    named = ", ".join(shown(p) for p in paths[:MAX_FILES_NAMED])
    more = len(paths) - MAX_FILES_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def message_body(a: str, b: str, conflicts: list[Conflict]) -> str:
    """What both agents are told: which files, where, both sides (bounded)."""
    lines = [
        f"Your work and the other domain's conflict: merging {a}'s and {b}'s current work "
        f"(commits and uncommitted changes) fails in {len(conflicts)} file(s). Nothing was "
        "merged or changed; this is a warning before either of you finishes.",
        "",
    ]
    for c in conflicts:
        lines.append(f"- {shown(c.path)} ({c.kind})")
        for h in c.hunks:
            lines.append(f"  around line {h.line} of {a}'s version:")
            lines += [f"    {a}: {shown(x)}" for x in h.ours] or [f"    {a}: (nothing)"]
            lines += [f"    {b}: {shown(x)}" for x in h.theirs] or [f"    {b}: (nothing)"]
            if h.more:
                lines.append(f"    ({h.more} more lines)")
        if c.more_hunks:
            lines.append(f"  and {c.more_hunks} more conflicting regions")
    lines += [
        "",
        f"Agree who changes what: `comm-node send --to {b} ...` / `--to {a} ...`, or ask the "
        "operator (`comm-node send --to operator ...`).",
    ]
    text = "\n".join(lines)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 40].rsplit("\n", 1)[0] + "\n(the rest left out)"
    return text + "\n"


class ConflictMonitor:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.known: dict[tuple[str, str, str], dict] = {}  # key -> the conflict as data
        self.problems: dict[str, str] = {}  # domain -> the one line reported
        self.checked_at: float | None = None
        self._checker: ConflictChecker | None = None
        self._reading = threading.Lock()  # one pass at a time shares the checker's cache

    def interval_s(self) -> float:
        return self.ctx.ws.settings.integration.conflict_check_s

    def load(self) -> None:
        """What an earlier run knew (at start): its conflicts are not new."""
        try:
            data = self.ctx.coord.store.read(STORE, {})
        except (OSError, ValueError):
            data = {}
        items = data.get("conflicts") if isinstance(data, dict) else None
        for item in items if isinstance(items, list) else []:
            try:
                a, b = item["domains"]
                self.known[(str(a), str(b), str(item["path"]))] = item
            except (KeyError, TypeError, ValueError):
                continue  # a hand-edited entry: seen again on the next pass, if real

    # ---- in a worker thread ---------------------------------------------------------------
    def read(self) -> PassResult:
        """One pass; blocking (git), and touches no engine state."""
        from comm_node_tui.integration.conflicts import ConflictChecker

        domains = {d.name: d.path for d in self.ctx.ws.domains.values()}
        with self._reading:
            if self._checker is None:
                self._checker = ConflictChecker()
            return self._checker.run(domains)

    # ---- on the loop thread ---------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Check at once, then every conflict_check_s until `stop` (0 turns it off)."""
        from comm_node_tui.engine.periodic import run_every

        await run_every(
            stop, self.interval_s, self.read, self.apply, self.ctx.emit, "conflict check"
        )

    def check(self) -> PassResult:
        """read() and apply() in the caller's thread (a caller driving the engine itself)."""
        result = self.read()
        self.apply(result)
        return result

    def apply(self, result: PassResult) -> None:
        ctx = self.ctx
        changed = self._problems(result)
        unknown = set(result.problems)  # git could not say: their conflicts stay as known
        now = {c.key: c for c in result.conflicts}
        new = [c for k, c in now.items() if k not in self.known]
        gone = [
            k for k in self.known if k not in now and k[0] not in unknown and k[1] not in unknown
        ]
        for (a, b), group in _by_pair(new).items():
            self._warn(a, b, group)
        cleared: dict[tuple[str, str], list[str]] = {}
        for a, b, path in gone:
            cleared.setdefault((a, b), []).append(path)
            del self.known[(a, b, path)]
        for (a, b), paths in cleared.items():
            ctx.emit(
                Event(
                    "integration.conflict_cleared",
                    f"{a} and {b}: no longer conflicting in {_names(paths)}",
                    agent=a,
                    data={"domains": [a, b], "files": paths},
                )
            )
        before = dict(self.known)
        for key, c in now.items():
            self.known[key] = c.to_json()
        self.checked_at = ctx.clock.time()
        # written when it changed (hunks move as agents edit): not every pass, and never in
        # a workspace where there is nothing to say
        if changed or gone or self.known != before:
            with contextlib.suppress(OSError):
                ctx.coord.store.write(STORE, self.to_json())
        if new or gone or changed:
            ctx.changed()

    def _warn(self, a: str, b: str, group: list[Conflict]) -> None:
        ctx = self.ctx
        paths = [c.path for c in group]
        ctx.emit(
            Event(
                "integration.conflict",
                f"{a} and {b}: conflicting changes in {_names(paths)}",
                agent=a,
                level="warn",
                data={
                    "domains": [a, b],
                    "files": paths,
                    "kinds": [c.kind for c in group],
                    "alert": True,
                },
            )
        )
        body = message_body(a, b, group)
        digest = hashlib.sha256("\0".join([a, b, *paths]).encode()).hexdigest()[:12]
        # the time too: the same files conflicting again later is a new warning
        ident = f"conflict-{a}-{b}-{int(ctx.clock.time())}-{digest}"
        for name in (a, b):
            dom = ctx.ws.domains.get(name)
            if dom is None:
                continue
            meta = {
                "id": ident,
                "from": "comm-node",
                "to": [name],
                "type": "conflict_warning",
                "priority": "high",
                "created": now_iso(ctx.clock.time()),
                "subject": f"your work conflicts with {b if name == a else a}'s",
            }
            try:
                ctx.router.deliver_copy(
                    dom.paths.inbox, dom.paths.inbox_read, ident, render(meta, body)
                )
            except OSError as exc:
                ctx.emit(
                    Event(
                        "integration.check_failed",
                        f"{name}: the conflict warning could not be delivered: {exc}",
                        agent=name,
                        level="warn",
                    )
                )
                continue
            ctx.router.delivered_to.add(name)  # wakes it (engine/nudges.py)

    def _problems(self, result: PassResult) -> bool:
        ctx = self.ctx
        changed = False
        for name, text in result.problems.items():
            if self.problems.get(name) != text:
                ctx.emit(
                    Event(
                        "integration.check_failed",
                        f"conflict check: {shown(text)}",
                        agent=name,
                        level="warn",
                    )
                )
                changed = True
        for name in set(self.problems) - set(result.problems):
            ctx.emit(
                Event("integration.check_back", f"conflict check: {name} read again", agent=name)
            )
            changed = True
        self.problems = dict(result.problems)
        return changed

    def to_json(self) -> dict:
        return {
            "conflicts": [self.known[k] for k in sorted(self.known)],
            "problems": dict(self.problems),
            "checked_at": self.checked_at,
        }


def _by_pair(conflicts: list[Conflict]) -> dict[tuple[str, str], list[Conflict]]:
    out: dict[tuple[str, str], list[Conflict]] = {}
    for c in conflicts:
        out.setdefault((c.a, c.b), []).append(c)
    return out
