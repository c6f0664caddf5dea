"""Locks, task claims, budget grants and artifacts: decided under the coordination flock.

Used by the agent CLI (an agent asks and gets its answer at once) and by the engine (expiry,
the watchdog, announcements). Every change is an event in the log.
"""

from __future__ import annotations

import os
import time

from comm_node_tui.coordination.locks import LOCKS_FILE, Lock, LockTable, check_pattern, ttl_seconds
from comm_node_tui.coordination.pause import read_pause
from comm_node_tui.coordination.store import CoordStore
from comm_node_tui.errors import BoundaryError, CommNodeError, ConflictError
from comm_node_tui.protocol.events import Event, EventLog
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir, read_bounded
from comm_node_tui.protocol.globs import Glob
from comm_node_tui.protocol.messages import now_iso
from comm_node_tui.workspace.model import Domain, Workspace

TYPE_CHECKING = False  # the task graph is imported when tasks are used, not for every lock
if TYPE_CHECKING:
    from comm_node_tui.coordination.tasks import Readiness, Task

    TaskView = tuple[dict[str, Task], Readiness, list[str]]  # tasks, readiness, problems

OVERLAY_FILE = "tasks.json"
GRANTS_FILE = "budget-grants.json"
MANIFEST = "manifest.json"
MAX_ARTIFACT_BYTES = 50 * 1024 * 1024
MAX_ATTEMPTS_KEPT = 20  # per task in the overlay: the newest; the event log has them all
FAILED_RESULTS = ("fail", "gave_up")
NO_ROTATE = 1 << 62  # CLI writers append only; the engine rotates the log


class Coordinator:
    def __init__(self, ws: Workspace, log: EventLog | None = None) -> None:
        self.ws = ws
        self.store: CoordStore = CoordStore(ws.paths.state)
        if ws.settings.cluster.enabled:
            # Several machines: the shared decisions go through compare-and-set on NATS
            # (cluster/kvstore.py); nats is imported only here, only then.
            from comm_node_tui.cluster.kvstore import ClusterStore

            shared = frozenset({LOCKS_FILE, OVERLAY_FILE, GRANTS_FILE})
            self.store = ClusterStore(self.store, ws, shared)  # type: ignore[assignment]
        self._log = log

    # ---- events -------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        log = self._log or EventLog(self.ws.paths.events, max_bytes=NO_ROTATE)
        try:
            ensure_dir(self.ws.paths.state)
            log.append(event)
        except OSError:
            pass
        finally:
            if self._log is None:
                log.close()

    # ---- locks --------------------------------------------------------------------------
    def _domain_paths(self) -> dict[str, str]:
        return {d.name: d.path for d in self.ws.domains.values()}

    def _load_locks(self) -> LockTable:
        """The lock table with expired locks removed (and logged); call under the flock."""
        corrupt = False
        try:
            data = self.store.read(LOCKS_FILE, {})
        except ValueError as exc:
            # Set the garbage aside (kept, named in the event) so it is reported once, not on
            # every one of the many reads a second.
            path = os.path.join(self.store.dir, LOCKS_FILE)
            kept = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}"
            try:
                os.replace(path, kept)
            except OSError:
                kept = "(could not be moved aside)"
            self.emit(
                Event(
                    "locks.invalid",
                    f"{exc}; starting from no locks; the old file is {kept}",
                    level="error",
                )
            )
            data, corrupt = {}, True
        table, problems = LockTable.from_json(data, self._domain_paths())
        for p in problems:
            self.emit(Event("locks.invalid", f"{LOCKS_FILE}: {p}", level="warn"))
        expired = table.expire()
        for lock in expired:
            self.emit(
                Event(
                    "lock.expired",
                    f"{lock.holder}: '{lock.pattern}' expired",
                    agent=lock.holder,
                    data={"pattern": lock.pattern},
                )
            )
        if expired or problems or corrupt:
            self.store.write(LOCKS_FILE, table.to_json())
        return table

    def locks(self) -> list[Lock]:
        if self.ws.settings.cluster.enabled:
            # A view (the room, `lock list`): this machine's mirror of the bucket, expired
            # locks left out, so it works while NATS is away and costs no round trip; the
            # engine's expire_locks writes expiry under the cluster's lease.
            try:
                data = self.store.read(LOCKS_FILE, {})
            except ValueError:
                data = {}
            table, _ = LockTable.from_json(data, self._domain_paths())
            table.expire()
            return sorted(table.all(), key=lambda lk: (lk.holder, lk.pattern))
        with self.store.locked():
            return sorted(self._load_locks().all(), key=lambda lk: (lk.holder, lk.pattern))

    def scope_globs(self, dom: Domain) -> list[Glob]:
        return [Glob(dom.path, s) for s in dom.scope]

    def owner_of(self, glob: Glob, exclude: str) -> str | None:
        for other in self.ws.domains.values():
            if other.name != exclude and any(s.overlaps(glob) for s in self.scope_globs(other)):
                return other.name
        return None

    def check_in_scope(self, dom: Domain, pattern: str) -> Glob:
        problem = check_pattern(pattern)
        if problem and "'..'" in problem:
            raise BoundaryError(f"'{pattern}': {problem}")
        if problem:
            raise CommNodeError(f"'{pattern}': {problem}")
        glob = Glob(dom.path, pattern)
        if not any(s.covers(glob) for s in self.scope_globs(dom)):
            owner = self.owner_of(glob, dom.name)
            who = f"; it belongs to domain {owner}" if owner else ""
            raise BoundaryError(
                f"'{pattern}' is outside {dom.name}'s scope ({', '.join(dom.scope)}){who}"
            )
        return glob

    def acquire(
        self,
        dom: Domain,
        patterns: list[str],
        *,
        exclusive: bool = True,
        ttl: float | None = None,
        reason: str = "",
    ) -> list[Lock]:
        """All the patterns or none: exit 3 on a conflict, 4 outside the scope."""
        seconds = ttl_seconds(ttl)
        try:
            globs = [self.check_in_scope(dom, p) for p in patterns]
        except BoundaryError as exc:
            self.emit(
                Event(
                    "lock.refused",
                    str(exc),
                    agent=dom.name,
                    level="warn",
                    data={"patterns": patterns, "why": "boundary"},
                )
            )
            raise
        with self.store.locked():
            table = self._load_locks()
            for pattern, glob in zip(patterns, globs, strict=True):
                held = table.conflicts(dom.name, glob, exclusive)
                if held is not None:
                    msg = (
                        f"'{pattern}' conflicts with {held.describe()}"
                        + (f" for: {held.reason}" if held.reason else "")
                        + f", until {now_iso(held.expires)}"
                    )
                    self.emit(
                        Event(
                            "lock.refused",
                            f"{dom.name}: {msg}",
                            agent=dom.name,
                            level="warn",
                            data={
                                "pattern": pattern,
                                "holder": held.holder,
                                "held_pattern": held.pattern,
                            },
                        )
                    )
                    raise ConflictError(msg)
            granted = []
            expires = time.time() + seconds
            for pattern, glob in zip(patterns, globs, strict=True):
                own = table.own(dom.name, pattern)
                if own is not None:
                    own.expires = max(own.expires, expires)
                    own.exclusive = exclusive
                    own.reason = reason or own.reason
                    granted.append(own)
                else:
                    lock = Lock(dom.name, pattern, glob, exclusive, expires, reason)
                    table.add(lock)
                    granted.append(lock)
            self.store.write(LOCKS_FILE, table.to_json())
        for lock in granted:
            self.emit(
                Event(
                    "lock.granted",
                    f"{dom.name}: '{lock.pattern}' "
                    f"({'exclusive' if lock.exclusive else 'shared'}, "
                    f"{int(seconds)} s)",
                    agent=dom.name,
                    data={
                        "pattern": lock.pattern,
                        "exclusive": lock.exclusive,
                        "expires_at": now_iso(lock.expires),
                        "reason": reason,
                    },
                )
            )
        return granted

    def release(
        self,
        dom_name: str,
        patterns: list[str] | None,
        *,
        why: str = "released",
    ) -> list[Lock]:
        """Release these patterns (None = all) held by `dom_name`."""
        with self.store.locked():
            table = self._load_locks()
            mine = [lk for lk in table.all() if lk.holder == dom_name]
            if patterns is not None:
                unknown = [p for p in patterns if p not in {lk.pattern for lk in mine}]
                if unknown:
                    raise CommNodeError(f"{dom_name} holds no lock '{unknown[0]}'")
                mine = [lk for lk in mine if lk.pattern in patterns]
            for lock in mine:
                table.remove(lock)
            if mine:
                self.store.write(LOCKS_FILE, table.to_json())
        for lock in mine:
            self.emit(
                Event(
                    "lock.released",
                    f"{dom_name}: '{lock.pattern}' {why}",
                    agent=dom_name,
                    data={"pattern": lock.pattern, "why": why},
                )
            )
        return mine

    def renew(self, dom_name: str, patterns: list[str] | None, ttl: float | None) -> list[Lock]:
        seconds = ttl_seconds(ttl)
        with self.store.locked():
            table = self._load_locks()
            mine = [
                lk
                for lk in table.all()
                if lk.holder == dom_name and (patterns is None or lk.pattern in patterns)
            ]
            if patterns is not None:
                missing = set(patterns) - {lk.pattern for lk in mine}
                if missing:
                    raise CommNodeError(
                        f"{dom_name} holds no lock '{sorted(missing)[0]}' "
                        "(expired? acquire it again)"
                    )
            for lock in mine:
                lock.expires = time.time() + seconds
            if mine:
                self.store.write(LOCKS_FILE, table.to_json())
        for lock in mine:
            self.emit(
                Event(
                    "lock.renewed",
                    f"{dom_name}: '{lock.pattern}' for {int(seconds)} s",
                    agent=dom_name,
                    data={"pattern": lock.pattern},
                )
            )
        return mine

    def expire_locks(self) -> None:
        try:
            with self.store.locked():
                self._load_locks()
        except CommNodeError:
            if not self.ws.settings.cluster.enabled:
                raise
            # NATS unreachable: the relay has reported it once (cluster.down); expiry waits
            # for the server, as every other shared decision does

    # ---- tasks --------------------------------------------------------------------------
    def task_source(self) -> tuple[str, str]:
        tasks = self.ws.settings.tasks
        path = tasks.file()
        return tasks.source, os.path.join(self.ws.root, path) if path else ""

    def tasks_stamp(self) -> tuple:
        """Size, mtime and inode of every input of the task view (source, overlay, manifests)."""
        paths = [self.task_source()[1], os.path.join(self.ws.paths.state, OVERLAY_FILE)]
        paths += [os.path.join(d.paths.artifacts, MANIFEST) for d in self.ws.domains.values()]
        out: list[tuple[int, int, int] | None] = []
        for p in paths:
            try:
                st = os.stat(p)
                out.append((st.st_size, st.st_mtime_ns, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def load_tasks(self) -> TaskView:
        """(tasks, Readiness, problems), cached until the source, the overlay or a manifest
        changes (a viewer re-reads the world every few seconds)."""
        if getattr(self.store, "held", False):
            # deciding under the cluster's lease: the shared overlay as the bucket has it now,
            # never a view cached from this machine's mirror of it
            return self._load_tasks()
        stamp = self.tasks_stamp()
        cached = getattr(self, "_tasks_cache", None)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        result = self._load_tasks()
        self._tasks_cache = (stamp, result)
        return result

    def _load_tasks(self) -> TaskView:
        """Read the source, apply the overlay and the published artifacts."""
        from comm_node_tui.coordination.tasks import Readiness, Uncollected

        with Uncollected(keep=True):  # tens of thousands of objects kept, no cycles among them
            tasks, problems = self.overlaid_tasks()
            return tasks, Readiness(tasks, self.published_names()), problems

    def overlaid_tasks(self) -> tuple[dict[str, Task], list[str]]:
        """The source's tasks with the overlay's claims and closes applied, and the problems
        found; no readiness (the SessionStart hand-off needs only the agent's own task)."""
        from comm_node_tui.coordination.tasks import (
            SourceProblem,
            load_beads_jsonl,
            load_native_cached,
        )

        source, path = self.task_source()
        domains = set(self.ws.domains)
        problems: list[str] = []
        tasks: dict[str, Task] = {}
        try:
            if source == "beads":
                tasks, problems = load_beads_jsonl(path, domains)
            elif source == "native":
                tasks, problems = load_native_cached(path, domains, self.ws.paths.state)
        except SourceProblem as exc:
            problems = [str(exc)]
        try:
            overlay = self.store.read(OVERLAY_FILE, {})
        except ValueError as exc:
            problems.append(str(exc))
            overlay = {}
        for tid, over in (overlay.get("tasks", {}) if isinstance(overlay, dict) else {}).items():
            t = tasks.get(tid)
            if t is None or not isinstance(over, dict):
                continue
            if isinstance(over.get("status"), str):
                t.status = over["status"]
            if over.get("assignee"):
                t.assignee = over["assignee"]
        return tasks, problems

    def overlay(self) -> dict:
        try:
            data = self.store.read(OVERLAY_FILE, {})
        except ValueError:
            data = {}
        if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
            data = {"version": 1, "tasks": {}}
        return data

    def set_task(self, overlay: dict, tid: str, **fields: object) -> None:
        entry = overlay["tasks"].setdefault(tid, {})
        entry.update({k: v for k, v in fields.items()})
        entry["updated"] = now_iso()

    # ---- attempts: the verify gate's record in the overlay ------------------------------
    def task_record(self, tid: str) -> dict:
        """The overlay's record of one task: attempts (oldest first), failures since the last
        reopen, the last failure (None when the last attempt passed or there is none)."""
        entry = self.overlay()["tasks"].get(tid)
        entry = entry if isinstance(entry, dict) else {}
        raw = entry.get("attempts")  # tasks.json is a file anyone may have edited
        attempts = [a for a in raw if isinstance(a, dict)] if isinstance(raw, list) else []
        last = next((a for a in reversed(attempts) if a.get("result") != "reopened"), None)
        failures = entry.get("failures", 0)
        return {
            "attempts": attempts,
            "failures": failures if isinstance(failures, int) else 0,
            "last_failure": last if last and last.get("result") in FAILED_RESULTS else None,
        }

    def _record(self, overlay: dict, tid: str, attempt: dict) -> dict:
        entry = overlay["tasks"].get(tid)
        if not isinstance(entry, dict):  # missing, or hand-edited into something else
            entry = overlay["tasks"][tid] = {}
        attempts = entry.get("attempts")
        attempts = attempts if isinstance(attempts, list) else []
        attempts.append({"at": now_iso(), **attempt})
        entry["attempts"] = attempts[-MAX_ATTEMPTS_KEPT:]
        return entry

    def verify_plan(self, dom: Domain, t: Task) -> tuple[list[str], float]:
        """The gate's commands for `t` in `dom` (the domain's, then the task's) and the
        per-command timeout."""
        timeout = dom.verify_timeout_s or self.ws.settings.tasks.verify_timeout_s
        return [*dom.verify, *t.contract.verify], float(timeout)

    def handover(self, dom: Domain, t: Task) -> dict:
        """What an agent is told when it claims `t`: the contract, how `task done` verifies
        it, and the last failure when the last attempt failed."""
        commands, timeout = self.verify_plan(dom, t)
        return {
            "contract": t.contract.to_json(),
            "verify": commands,
            "verify_timeout_s": timeout,
            "last_failure": self.task_record(t.id)["last_failure"],
        }

    def claim(self, dom: Domain, tid: str) -> dict:
        stop = read_pause(self.ws.paths.state)
        if stop.covers(dom.name):
            who = "every agent" if stop.all else dom.name
            raise ConflictError(
                f"comm-node is paused by the operator ({who}): no new claims; wait for the resume"
            )
        with self.store.locked():
            tasks, ready, _problems = self.load_tasks()
            t = tasks.get(tid)
            if t is None:
                raise CommNodeError(f"no task '{tid}'")
            if t.status == "in_progress" and t.assignee:
                if t.assignee == dom.name:
                    return {**t.to_json(), **self.handover(dom, t)}
                raise ConflictError(f"task {tid} is already claimed by {t.assignee}")
            if t.status == "parked":
                rec = self.task_record(tid)
                last = (rec["last_failure"] or {}).get("reason", "?")
                raise ConflictError(
                    f"task {tid} is parked after {rec['failures']} failed attempts "
                    f"(last: {last}); the operator can `comm-node task reopen {tid}`"
                )
            if tid not in ready.ready:
                why = "; ".join(ready.why_not_ready(tid)) or "not ready"
                raise ConflictError(f"task {tid} is not ready: {why}")
            if t.domain and t.domain != dom.name:
                raise BoundaryError(f"task {tid} belongs to domain {t.domain}")
            overlay = self.overlay()
            self.set_task(
                overlay, tid, status="in_progress", assignee=dom.name, claimed_at=now_iso()
            )
            self.store.write(OVERLAY_FILE, overlay)
            t.status, t.assignee = "in_progress", dom.name
            out = {**t.to_json(), **self.handover(dom, t)}
        self.emit(
            Event(
                "task.claimed",
                f"{dom.name} claimed {tid}: {t.title}",
                agent=dom.name,
                data={"task": tid},
            )
        )
        return out

    def _own_task(self, dom: Domain, tid: str) -> Task:
        tasks, _ready, _p = self.load_tasks()
        t = tasks.get(tid)
        if t is None:
            raise CommNodeError(f"no task '{tid}'")
        if t.status != "in_progress" or t.assignee != dom.name:
            raise ConflictError(
                f"task {tid} is not claimed by {dom.name} "
                f"(status {t.status}, assignee {t.assignee or 'none'})"
            )
        return t

    def done(self, dom: Domain, tid: str, artifacts: list[str]) -> dict:
        """Close a task `dom` holds once its verify gate passes; GateFailed (nothing closed,
        the attempt recorded, the task parked after [tasks] max_attempts) when it does not.

        The gate runs outside the coordination lock (its commands may take minutes; every
        lock and claim in the workspace waits on that lock), so the claim is checked again
        before the result is written."""
        from comm_node_tui.coordination.verify import GateFailed, run_gate

        for path in artifacts:
            self.publish(dom, path, None)
        with self.store.locked():
            t = self._own_task(dom, tid)
        commands, timeout = self.verify_plan(dom, t)
        started = time.monotonic()
        published = self.published_names()
        missing = [
            a
            for a in t.contract.artifacts
            if a not in published and f"{dom.name}:{a}" not in published
        ]
        # a missing artifact fails at once: no reason to spend minutes on the commands first
        results = [] if missing else run_gate(commands, dom.path, timeout)
        failed = next((r for r in results if not r.ok), None)
        attempt: dict = {
            "by": dom.name,
            "result": "pass",
            "commands": [r.to_json() for r in results],
            "seconds": round(time.monotonic() - started, 3),
        }
        if failed is not None:
            attempt.update(result="fail", reason=failed.describe(), excerpt=failed.tail)
        elif missing:
            attempt.update(
                result="fail",
                reason="the contract's artifacts are not published: " + ", ".join(missing),
                excerpt="",
            )
        max_attempts = self.ws.settings.tasks.max_attempts
        with self.store.locked():
            t = self._own_task(dom, tid)
            overlay = self.overlay()
            entry = self._record(overlay, tid, attempt)
            if attempt["result"] == "pass":
                self.set_task(
                    overlay,
                    tid,
                    status="closed",
                    assignee=dom.name,
                    closed_at=now_iso(),
                    artifacts=[os.path.basename(a) for a in artifacts],
                )
                parked = False
            else:
                failures = entry.get("failures", 0)
                failures = (failures if isinstance(failures, int) else 0) + 1
                parked = failures >= max_attempts
                fields: dict = {"failures": failures}
                if parked:
                    fields.update(status="parked", assignee=None, parked_at=now_iso())
                self.set_task(overlay, tid, **fields)
            self.store.write(OVERLAY_FILE, overlay)
        if attempt["result"] == "pass":
            self.emit(
                Event(
                    "task.done",
                    f"{dom.name} finished {tid}: {t.title}"
                    + (f" (verified: {len(results)} commands)" if results else ""),
                    agent=dom.name,
                    data={"task": tid, "verified": [r.command for r in results]},
                )
            )
            self._notify(dom, t)
            return {**t.to_json(), "status": "closed", "attempt": attempt}
        reason = attempt["reason"]
        self.emit(
            Event(
                "task.verify_failed",
                f"{dom.name}: {tid} not closed: {reason} (attempt {failures} of {max_attempts})",
                agent=dom.name,
                level="warn",
                data={"task": tid, "reason": reason, "failures": failures},
            )
        )
        if parked:
            self.emit(
                Event(
                    "task.parked",
                    f"{tid} parked after {failures} failed attempts ({dom.name}): {reason}; "
                    f"`comm-node task reopen {tid}` to try again",
                    agent=dom.name,
                    level="error",
                    data={"task": tid, "reason": reason, "failures": failures},
                )
            )
        after = (
            f"; parked after {failures} failed attempts: the operator must reopen it"
            if parked
            else f"; attempt {failures} of {max_attempts}, the task is still yours: fix it "
            f"and run `comm-node task done {tid}` again"
        )
        raise GateFailed(
            f"task {tid} not closed: {reason}{after}",
            {**attempt, "failures": failures, "parked": parked},
        )

    def _notify(self, dom: Domain, t: Task) -> None:
        """Tell the contract's `notify` list that `t` is done, as a message from `dom`."""
        from comm_node_tui.protocol.mailbox import write_outbox
        from comm_node_tui.protocol.messages import new_message_id

        known = set(self.ws.domains) | {"operator"}
        to = [n for n in t.contract.notify if n in known and n != dom.name]
        if not to:
            return
        meta = {
            "id": new_message_id(),
            "from": dom.name,
            "to": to,
            "type": "info",
            "task": t.id,
            "created": now_iso(),
            "subject": f"{t.id} done",
        }
        try:
            write_outbox(dom.paths, meta, f"{t.id} is done: {t.title}\n")
        except OSError:
            pass  # the task is closed; a message that could not be queued is no reason to fail

    def override(self, tid: str, by: str, reason: str) -> dict:
        """The operator closes a task without its gate; logged (task.override) and recorded."""
        if not reason.strip():
            raise CommNodeError("an override needs --reason (it is logged)")
        with self.store.locked():
            tasks, _ready, _p = self.load_tasks()
            t = tasks.get(tid)
            if t is None:
                raise CommNodeError(f"no task '{tid}'")
            if t.status == "closed":
                raise ConflictError(f"task {tid} is already closed")
            overlay = self.overlay()
            self._record(overlay, tid, {"by": by, "result": "override", "reason": reason})
            self.set_task(overlay, tid, status="closed", closed_at=now_iso(), overridden_by=by)
            self.store.write(OVERLAY_FILE, overlay)
            before = t.status
        self.emit(
            Event(
                "task.override",
                f"{by} closed {tid} without its verify gate (was {before}): {reason}",
                agent=t.assignee,
                level="warn",
                data={"task": tid, "by": by, "reason": reason, "was": before},
            )
        )
        return {**t.to_json(), "status": "closed"}

    def reopen(self, tid: str, by: str, reason: str, *, operator: bool) -> dict:
        """A failed, parked or closed task back to open (its failure count starts again)."""
        with self.store.locked():
            tasks, _ready, _p = self.load_tasks()
            t = tasks.get(tid)
            if t is None:
                raise CommNodeError(f"no task '{tid}'")
            overlay = self.overlay()
            entry = overlay["tasks"].get(tid) or {}
            failed = t.status == "blocked" and bool(entry.get("failed_by"))
            if t.status not in ("closed", "parked") and not failed:
                raise ConflictError(
                    f"task {tid} is {t.status}: only a failed, parked or closed task can be "
                    "reopened"
                )
            if not operator and by not in (t.domain, t.assignee, entry.get("failed_by")):
                # Another domain's finished work is not put back up for claim by a peer.
                raise ConflictError(
                    f"task {tid} is {t.domain or 'no domain'}'s: only its own agent or the "
                    "operator can reopen it"
                )
            if t.status == "parked" and not operator:
                raise ConflictError(
                    f"task {tid} is parked: only the operator can reopen it (the circuit "
                    "breaker stops an agent retrying it)"
                )
            before = t.status
            self._record(overlay, tid, {"by": by, "result": "reopened", "reason": reason})
            self.set_task(
                overlay, tid, status="open", assignee=None, failures=0, reopened_at=now_iso()
            )
            self.store.write(OVERLAY_FILE, overlay)
        self.emit(
            Event(
                "task.reopened",
                f"{by} reopened {tid} (was {before})" + (f": {reason}" if reason else ""),
                data={"task": tid, "by": by, "reason": reason, "was": before},
            )
        )
        return {**t.to_json(), "status": "open", "assignee": None}

    def fail(self, dom: Domain, tid: str, reason: str) -> dict:
        with self.store.locked():
            t = self._own_task(dom, tid)
            overlay = self.overlay()
            self._record(overlay, tid, {"by": dom.name, "result": "gave_up", "reason": reason})
            self.set_task(
                overlay,
                tid,
                status="blocked",
                assignee=None,
                failed_by=dom.name,
                reason=reason,
                failed_at=now_iso(),
            )
            self.store.write(OVERLAY_FILE, overlay)
        self.emit(
            Event(
                "task.failed",
                f"{dom.name} failed {tid}: {reason}",
                agent=dom.name,
                level="error",
                data={"task": tid, "reason": reason},
            )
        )
        return {**t.to_json(), "status": "blocked"}

    def unclaim_holder(self, dom_name: str, why: str) -> list[str]:
        """Put every task `dom_name` has claimed back to open (the watchdog's hand)."""
        with self.store.locked():
            overlay = self.overlay()
            back = [
                tid
                for tid, e in overlay["tasks"].items()
                if e.get("status") == "in_progress" and e.get("assignee") == dom_name
            ]
            for tid in back:
                self.set_task(overlay, tid, status="open", assignee=None, released=why)
            if back:
                self.store.write(OVERLAY_FILE, overlay)
        for tid in back:
            self.emit(
                Event(
                    "task.released",
                    f"{tid} back to ready: {dom_name} {why}",
                    agent=dom_name,
                    level="warn",
                    data={"task": tid, "why": why},
                )
            )
        return back

    # ---- artifacts ----------------------------------------------------------------------
    def manifest(self, dom: Domain) -> dict:
        path = os.path.join(dom.paths.artifacts, MANIFEST)
        try:
            from comm_node_tui.protocol.fileio import read_json_bounded

            data = read_json_bounded(path, 4 * 1024 * 1024)
        except (OSError, ValueError):
            return {}
        arts = data.get("artifacts") if isinstance(data, dict) else None
        return arts if isinstance(arts, dict) else {}

    def published_names(self) -> set[str]:
        names: set[str] = set()
        for dom in self.ws.domains.values():
            for name in self.manifest(dom):
                names.add(name)
                names.add(f"{dom.name}:{name}")
        return names

    def publish(self, dom: Domain, file: str, name: str | None) -> dict:
        name = name or os.path.basename(file)
        bad = artifact_name_problem(name)
        if bad:
            raise CommNodeError(f"artifact name '{name}': {bad}")
        real = os.path.realpath(file)
        root = self.ws.root.rstrip("/") + "/"
        if not (real.startswith(root) or real.startswith(dom.path.rstrip("/") + "/")):
            raise BoundaryError(f"{file}: outside the workspace; publish files of your domain")
        try:
            data = read_bounded(real, MAX_ARTIFACT_BYTES)
        except FileNotFoundError:
            raise CommNodeError(f"{file}: no such file") from None
        except Exception as exc:
            raise CommNodeError(str(exc)) from None
        import hashlib  # here, not at the top: it costs the SessionStart hand-off 9 ms

        digest = hashlib.sha256(data).hexdigest()
        ensure_dir(dom.paths.artifacts)
        with self.store.locked():
            atomic_write(os.path.join(dom.paths.artifacts, name), data, mode=0o644)
            arts = self.manifest(dom)
            entry = {
                "sha256": digest,
                "size": len(data),
                "published": now_iso(),
                "source": os.path.relpath(real, dom.path)
                if real.startswith(dom.path)
                else os.path.relpath(real, self.ws.root),
            }
            arts[name] = entry
            atomic_write(
                os.path.join(dom.paths.artifacts, MANIFEST),
                _json({"domain": dom.name, "artifacts": arts}),
            )
        self.emit(
            Event(
                "artifact.published",
                f"{dom.name}: {name} ({len(data)} bytes, sha256 {digest[:12]})",
                agent=dom.name,
                data={"name": name, "sha256": digest, "size": len(data)},
            )
        )
        return {"name": name, "domain": dom.name, **entry}


def artifact_name_problem(name: str) -> str | None:
    if not name or len(name) > 120:
        return "must be 1 to 120 characters"
    if "/" in name or "\\" in name or "\x00" in name:
        return "must not contain a path separator or NUL"
    if name in (".", "..") or name.startswith("."):
        return "must not start with '.'"
    if name == MANIFEST:
        return f"'{MANIFEST}' is reserved"
    if any(ord(c) < 32 for c in name):
        return "must not contain control characters"
    return None


def _json(data: object) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


# ---- budgets ----------------------------------------------------------------------------
def budget_view(ws: Workspace) -> list[dict]:
    """Every domain's budget from the ledger and the grants (no engine needed)."""
    from comm_node_tui.coordination.budgets import Budgets
    from comm_node_tui.coordination.ledger import Ledger

    ledger = Ledger.in_store(ws.paths.state)
    ledger.load()
    budgets = Budgets(ws, ledger)
    out = []
    for name in ws.domains:
        snap = budgets.snapshot(name)
        spent = snap["spent_tokens"]
        useful = snap["messages_sent"] + snap["answers_received"]
        snap["efficiency"] = round(useful * 1000 / spent, 2) if spent else None
        out.append(snap)
    return out


def _record_grant(coord: Coordinator, domain: str, tokens: int, by: str, reason: str) -> None:
    from comm_node_tui.coordination.budgets import GRANTS_FILE

    stored = coord.store.read(GRANTS_FILE, {"grants": []})
    data: dict[str, list[dict]] = {"grants": []}
    if isinstance(stored, dict) and isinstance(stored.get("grants"), list):
        data = stored
    data["grants"].append(
        {"domain": domain, "tokens": tokens, "by": by, "reason": reason, "ts": now_iso()}
    )
    coord.store.write(GRANTS_FILE, data)


def request_budget(coord: Coordinator, dom: Domain, tokens: int, reason: str) -> dict:
    """Grant or deny by the [budgets] policy; raises ConflictError when denied."""
    if tokens <= 0:
        raise CommNodeError("the request must be a positive number of tokens")
    policy = coord.ws.settings.budgets
    with coord.store.locked():
        view = {b["domain"]: b for b in budget_view(coord.ws)}[dom.name]
        from comm_node_tui.coordination.budgets import GRANTS_FILE

        data = coord.store.read(GRANTS_FILE, {"grants": []})
        grants = data.get("grants", []) if isinstance(data, dict) else []
        auto_so_far = sum(
            int(g.get("tokens", 0))
            for g in grants
            if isinstance(g, dict) and g.get("domain") == dom.name and g.get("by") == "policy"
        )
        eff, min_eff = view["efficiency"], policy.min_efficiency
        cap = policy.max_auto_grant_tokens
        total_cap = int(policy.max_auto_total_ratio * view["base_tokens"])
        why = None
        if view["unlimited"]:
            why = "the budget is unlimited; nothing to grant"
        elif not policy.auto_grant:
            why = "auto-grant is off ([budgets] auto_grant = false)"
        elif tokens > cap:
            why = f"{tokens} is over the {cap} a request may get ([budgets] max_auto_grant_tokens)"
        elif auto_so_far + tokens > total_cap:
            why = (
                f"auto-grants would reach {auto_so_far + tokens}, over {total_cap} "
                "([budgets] max_auto_total_ratio of the base budget)"
            )
        elif eff is not None and view["spent_tokens"] >= 1000 and eff < min_eff:
            why = (
                f"efficiency is {eff} delivered+answered messages per 1k tokens, under "
                f"{min_eff:g} ([budgets] min_efficiency)"
            )
        if why is None:
            _record_grant(coord, dom.name, tokens, "policy", reason)
    if why is not None:
        msg = (
            f"budget request of {tokens} denied: {why}; the operator can grant it: "
            f"`comm-node budget grant {dom.name} {tokens}`"
        )
        coord.emit(
            Event(
                "budget.denied",
                f"{dom.name}: {msg}",
                agent=dom.name,
                level="warn",
                data={"tokens": tokens, "reason": reason, "why": why},
            )
        )
        raise ConflictError(msg)
    coord.emit(
        Event(
            "budget.granted",
            f"{dom.name}: +{tokens} tokens by policy ({reason})",
            agent=dom.name,
            data={"tokens": tokens, "by": "policy", "reason": reason},
        )
    )
    return {"domain": dom.name, "granted": tokens, "by": "policy"}


def grant_budget(coord: Coordinator, domain: str, tokens: int, reason: str) -> dict:
    """The operator's grant: always allowed (negative takes tokens back)."""
    coord.ws.domain(domain)
    with coord.store.locked():
        _record_grant(coord, domain, tokens, "operator", reason)
    coord.emit(
        Event(
            "budget.granted",
            f"{domain}: {tokens:+d} tokens by the operator" + (f" ({reason})" if reason else ""),
            agent=domain,
            data={"tokens": tokens, "by": "operator", "reason": reason},
        )
    )
    return {"domain": domain, "granted": tokens, "by": "operator"}
