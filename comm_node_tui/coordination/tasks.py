"""The task DAG: Beads exports or native tasks.toml, with Beads' own readiness rules.

Beads' rules (internal/storage/issueops/blocked_state.go and ready_work.go, early 2026):
- only `blocks`, `conditional-blocks`, `parent-child` and `waits-for` edges matter;
- an issue that is not closed/pinned is blocked when a blocks/conditional-blocks target
  exists and is not closed or pinned; or its parent is blocked (transitively); or a
  waits-for gate still has a child that is not closed/pinned (with gate metadata
  `any-children`, one closed child is enough); edges to absent ids never block;
- ready = status open, not pinned, not ephemeral, not blocked, defer_until empty or past
  (and no ancestor deferred into the future), issue_type not in EXCLUDED_TYPES.
comm-node adds: a task that names required artifacts is not ready until they are published,
and claims/closes made through comm-node (the overlay) take precedence over the source.

A task may carry a completion contract (`Contract`): what "done" means, the artifacts it must
publish, who to tell, and (native tasks only) verify commands for `task done`'s gate
(coordination/verify.py). From Beads: `acceptance_criteria` (one criterion a line),
`design` and `notes` as context, `metadata.artifacts` / `metadata.notify`. Beads issues are
written by agents too (`bd create`), so a Beads record never supplies verify commands: those
run through the shell and come only from the operator's own files (tasks.toml,
comm-node.toml).
"""

from __future__ import annotations

import gc
import os
import time

from comm_node_tui.protocol import jsonfast as json

TYPE_CHECKING = False  # annotations only
if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from typing import Any, BinaryIO

BLOCKING = ("blocks", "conditional-blocks")
EXCLUDED_TYPES = frozenset({"merge-request", "gate", "molecule", "message", "agent", "role", "rig"})
DONE = frozenset({"closed", "pinned"})
MAX_SOURCE_BYTES = 256 * 1024 * 1024
MAX_CONTEXT_CHARS = 4000  # design + notes handed to an agent with its claim


class Contract:
    """What done means for one task; plain data (validated where it is read)."""

    __slots__ = ("artifacts", "context", "done_when", "notify", "verify")

    def __init__(
        self,
        done_when: list[str] | None = None,
        artifacts: list[str] | None = None,
        notify: list[str] | None = None,
        verify: list[str] | None = None,
        context: str = "",
    ) -> None:
        self.done_when = done_when or []
        self.artifacts = artifacts or []  # names the task must publish before it is done
        self.notify = notify or []  # domains (or "operator") told when it is done
        self.verify = verify or []  # extra commands for the gate, after the domain's own
        self.context = context

    def empty(self) -> bool:
        return not (self.done_when or self.artifacts or self.notify or self.verify or self.context)

    def to_json(self) -> dict:
        return {
            "done_when": self.done_when,
            "artifacts": self.artifacts,
            "notify": self.notify,
            "verify": self.verify,
            "context": self.context,
        }


def criteria_lines(text: str) -> list[str]:
    """Beads' acceptance criteria (free text) as one criterion a line, list marks dropped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        for mark in ("- [ ] ", "- [x] ", "* [ ] ", "- ", "* ", "+ "):
            if line.startswith(mark):
                line = line[len(mark) :].strip()
                break
        else:
            head, dot, rest = line.partition(". ")
            if dot and head.isdigit():
                line = rest.strip()
        if line:
            out.append(line)
    return out


def _strings(v: object) -> list[str]:
    return [x for x in v if isinstance(x, str) and x] if isinstance(v, list) else []


class Task:
    __slots__ = (
        "assignee",
        "contract",
        "defer_until",
        "deps",
        "description",
        "domain",
        "ephemeral",
        "id",
        "issue_type",
        "labels",
        "parent",
        "pinned",
        "priority",
        "required_artifacts",
        "status",
        "title",
    )
    contract: Contract  # a slot left unset until read: see __getattr__

    def __init__(
        self,
        id: str,
        title: str = "",
        status: str = "open",
        priority: int = 2,
        issue_type: str = "task",
    ) -> None:
        self.id = id
        self.title = title
        self.status = status
        self.priority = priority
        self.issue_type = issue_type
        self.domain: str | None = None
        self.assignee: str | None = None
        self.labels: list[str] = []
        self.deps: list[tuple[str, str, dict]] = []  # (type, target id, metadata)
        self.parent: str | None = None
        self.pinned = False
        self.ephemeral = False
        self.defer_until: str | None = None
        self.required_artifacts: list[str] = []
        self.description = ""
        # self.contract: left unset, made empty when first read (__getattr__ below)

    if not TYPE_CHECKING:  # hidden from mypy: any other name stays an error there

        def __getattr__(self, name: str) -> Contract:
            # Called only for an unset slot. Most tasks have no contract: making an empty one
            # (an object and four lists) for each of 10,000 tasks was a fifth of the objects
            # of a Beads load, which the collector then walked (issue 22). The same empty
            # Contract as before, made once, when some caller asks for it.
            if name == "contract":
                c = self.contract = Contract()
                return c
            raise AttributeError(f"'Task' object has no attribute '{name}'")

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "domain": self.domain,
            "priority": self.priority,
            "status": self.status,
            "type": self.issue_type,
            "assignee": self.assignee,
            "parent": self.parent,
            "labels": self.labels,
            "depends_on": [{"id": t, "type": k} for k, t, _m in self.deps],
            "required_artifacts": self.required_artifacts,
        }


class SourceProblem(Exception):
    pass


# ---- loading -----------------------------------------------------------------------------
def _text(v: object, default: str = "") -> str:
    return v if isinstance(v, str) else default


def _priority(v: object) -> int:
    if isinstance(v, bool):
        return 2
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().upper().lstrip("P").isdigit():
        return int(v.strip().upper().lstrip("P"))
    return 2


def task_from_beads(rec: dict, domains: set[str]) -> Task:
    """One Beads record (an export's line, as json reads it) as a Task."""
    t = _beads_task(rec, domains, True)
    assert t is not None  # only an inexact read is refused
    return t


def _beads_task(rec: dict, domains: set[str], exact: bool) -> Task | None:
    # Written for speed (issue 22: 10,000 tasks loaded and judged in 100 ms): each field read
    # once and set once (no Task.__init__ defaults overwritten), no contract made when the
    # record has none (Task.__getattr__ makes the empty one if asked), "{}" metadata not
    # parsed. Same result as Task(...) + the fields.
    # `exact` False: `rec` was read by orjson, which reads an integer past 64 bits as a float
    # where json reads an int. The only such values that reach a task are the priority and a
    # dependency's metadata given as an object; None when one of those is met, so the caller
    # reads the line again with json (rare: Beads writes int priorities and "{}" metadata).
    get = rec.get
    tid = get("id")
    if not isinstance(tid, str) or not tid:
        raise ValueError("record has no text id")
    v = get("priority")
    if type(v) is int:
        priority = v
    elif not exact and type(v) is float:
        return None
    else:
        priority = _priority(v)
    t = Task.__new__(Task)
    t.id = tid
    t.priority = priority
    v = get("title")
    t.title = v if isinstance(v, str) else ""
    v = get("status")
    status = t.status = v if isinstance(v, str) and v else "open"
    v = get("issue_type")
    t.issue_type = v if isinstance(v, str) and v else "task"
    v = get("description")
    t.description = v if isinstance(v, str) else ""
    v = get("assignee")
    assignee = t.assignee = v if isinstance(v, str) and v else None
    v = get("labels")
    labels = t.labels = [x for x in v if isinstance(x, str)] if isinstance(v, list) else []
    t.pinned = get("pinned") is True or status == "pinned"
    t.ephemeral = get("ephemeral") is True
    v = get("defer_until")
    t.defer_until = v if isinstance(v, str) and v else None
    deps: list[tuple[str, str, dict]] = []
    parent = None
    v = get("dependencies")
    if isinstance(v, list):
        for d in v:
            if not isinstance(d, dict):
                continue
            dget = d.get
            target, kind = dget("depends_on_id"), dget("type")
            if not isinstance(target, str) or not isinstance(kind, str):
                continue
            issuer = dget("issue_id")
            if issuer is not None and issuer != tid:
                continue  # an edge stored on the wrong record: not this issue's dependency
            meta = dget("metadata")
            if isinstance(meta, str):
                if meta == "{}" or not meta.strip():
                    meta = {}
                else:
                    try:
                        meta = json.loads(meta)
                    except (ValueError, RecursionError):
                        meta = {}
                    if not isinstance(meta, dict):
                        meta = {}
            elif isinstance(meta, dict):
                if not exact:
                    return None
            else:
                meta = {}
            deps.append((kind, target, meta))
            if kind == "parent-child":
                parent = target
    if parent is None:
        v = get("parent")
        if isinstance(v, str) and v:
            parent = v
            deps.append(("parent-child", v, {}))
    t.deps = deps
    t.parent = parent
    meta = get("metadata")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except (ValueError, RecursionError):
            meta = None
    if isinstance(meta, dict):
        v = meta.get("required_artifacts")
        t.required_artifacts = [a for a in v if isinstance(a, str)] if isinstance(v, list) else []
    else:
        t.required_artifacts = []
    design, notes, criteria = get("design"), get("notes"), get("acceptance_criteria")
    if design or notes or criteria or isinstance(meta, dict):
        design, notes = _text(design).strip(), _text(notes).strip()
        context = "\n\n".join(f"{k}: {v}" for k, v in (("design", design), ("notes", notes)) if v)
        c = Contract(
            done_when=criteria_lines(criteria) if isinstance(criteria, str) else None,
            artifacts=_strings(meta.get("artifacts")) if isinstance(meta, dict) else None,
            notify=_strings(meta.get("notify")) if isinstance(meta, dict) else None,
            context=context[:MAX_CONTEXT_CHARS],
        )
        if not c.empty():
            t.contract = c
    domain = None
    for label in labels:  # _domain_of, inline
        if label.startswith("domain:"):
            domain = label[7:] or None
            break
    else:
        if assignee and assignee in domains:
            domain = assignee
    t.domain = domain
    return t


def _domain_of(t: Task, domains: set[str]) -> str | None:
    for label in t.labels:
        if label.startswith("domain:"):
            return label.split(":", 1)[1] or None
    if t.assignee and t.assignee in domains:
        return t.assignee
    return t.domain


def load_beads_jsonl(
    path: str, domains: set[str], fast: bool = True
) -> tuple[dict[str, Task], list[str]]:
    """Tasks from a Beads export; bad lines are reported (file:line), never fatal. `fast`
    False: without orjson (the hook's hand-off: its start-up counts more than the parse)."""
    tasks: dict[str, Task] = {}
    problems: list[str] = []
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise SourceProblem(f"{path}: cannot read ({exc.strerror})") from None
    if size > MAX_SOURCE_BYTES:
        raise SourceProblem(f"{path}: {size} bytes is over the limit of {MAX_SOURCE_BYTES}")
    name = os.path.basename(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise SourceProblem(f"{path}: cannot read ({exc.strerror})") from None
    with Uncollected():
        _read_beads(fh, name, domains, tasks, problems, _orjson_loads(size) if fast else None)
    return tasks, problems


class Uncollected:
    """The cyclic garbage collector paused while a task source is loaded: thousands of
    records become tens of thousands of small objects, none of them in a cycle, and the
    collector's passes over the growing heap are pure overhead (5 % of the instructions at
    2,000 tasks; issue 22). Re-entrant and safe beside other threads: only the region that
    found the collector running turns it back on, and it always ends on.

    `keep`: what the region made lives on (the engine's task view, the room's graph), so
    when it is many objects they are frozen (gc.freeze) as the collector resumes, instead of
    being traversed by its next passes and by every full pass after: at 200 agents and
    20,000 tasks the room's first frame spent 0.9 s of its 2.5 s in the collector, 0.13 s
    with this. Frozen objects are still freed when their last reference goes (tasks hold no
    cycles: a replaced view is freed as before); what freezing costs is that a cycle alive
    or not yet collected at that moment is never collected. So it is done for the first two
    big loads of a process only (at start: the task view and the graph made from it); a
    later reload (a claim changes the overlay) is paused, not frozen. A big region not
    frozen has what it made moved to the oldest generation as the collector resumes (see
    __exit__), so the young and middle passes do not walk it twice on its way there."""

    __slots__ = ("keep", "start", "was")
    MANY = 20_000  # objects made while paused: below this, the collector's passes are cheap
    FREEZES = 2  # big kept loads frozen per process
    frozen = 0  # how many were

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep

    def __enter__(self) -> None:
        self.was = gc.isenabled()
        self.start = gc.get_count()[0]
        gc.disable()

    def __exit__(self, *_exc: object) -> None:
        if self.was:
            cls = type(self)
            # What the region made: the young count goes on from where it stood (anything
            # up to the process's threshold; a collection in another thread restarts it).
            count = gc.get_count()[0]
            if count - (self.start if count >= self.start else 0) >= cls.MANY:
                if self.keep and cls.frozen < cls.FREEZES:
                    cls.frozen += 1
                    gc.freeze()
                elif gc.get_freeze_count() == 0:
                    # Otherwise the next allocations run a young pass over all that was made
                    # (10,000 Beads tasks: ~60,000 objects, 25-45 ms of CPU) and, a few young
                    # passes later, a middle one over the same again, before they reach the
                    # oldest generation, where they end anyway. freeze + unfreeze puts every
                    # tracked object there at once (two list splices): only full passes walk
                    # them, as they would have. A cycle made meanwhile (this thread or
                    # another) is collected by the next full pass instead of a young one.
                    # Skipped while something is frozen: unfreeze would thaw it too.
                    gc.freeze()
                    gc.unfreeze()
            gc.enable()


ORJSON_BYTES = 4 * 1024 * 1024  # an export this big pays for orjson's import by its parse


def _orjson_loads(size: int) -> Callable[[bytes], Any] | None:
    """orjson's loads, where it is installed and pays: it reads a Beads export's lines at
    about half the CPU of json's scanner (4-5 ns a byte saved, issue 22), but importing it
    imports dataclasses, uuid and more: ~20 ms of CPU in a process that has none of
    them (a CLI call), under 1 ms in the engine. So: once imported, always; before that, for
    an export of ORJSON_BYTES or more. Never in the hook (its caller passes fast=False)."""
    import sys

    if "orjson" not in sys.modules and size < ORJSON_BYTES:
        return None
    try:
        from orjson import loads
    except ImportError:
        return None
    return loads


def _read_beads(
    fh: BinaryIO,
    name: str,
    domains: set[str],
    tasks: dict,
    problems: list[str],
    fast_loads: Callable[[bytes], Any] | None,
) -> None:
    with fh:
        for n, raw in enumerate(fh, 1):
            if raw.isspace():
                continue
            t = None
            if fast_loads is not None:
                # orjson refuses what json reads differently or refuses (a BOM, NaN, a lone
                # surrogate, bytes not UTF-8, nesting past 1,024) and json then reads the line,
                # so the task or the problem reported is json's, word for word
                try:
                    rec = fast_loads(raw)
                    if type(rec) is dict:
                        t = _beads_task(rec, domains, False)
                except ValueError:  # orjson.JSONDecodeError, or no text id: json decides
                    t = None
            if t is None:
                try:
                    rec = json.loads(raw.decode("utf-8"))
                    if not isinstance(rec, dict):
                        raise ValueError("not an object")
                    t = task_from_beads(rec, domains)
                except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                    why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)[:80]
                    if isinstance(exc, RecursionError):
                        why = "nested too deeply"
                    problems.append(f"{name}:{n}: skipped ({why})")
                    continue
            if t.id in tasks:
                problems.append(f"{name}:{n}: duplicate id '{t.id}' (the later line wins)")
            tasks[t.id] = t


def load_native(path: str, domains: set[str]) -> tuple[dict[str, Task], list[str]]:
    """Tasks from tasks.toml: [[tasks]] id, title, domain, priority, depends_on,
    required_artifacts, status, and the contract: done_when, artifacts, notify, verify,
    notes."""
    from comm_node_tui.protocol.fileio import read_bounded

    name = os.path.basename(path)
    try:
        text = read_bounded(path, 16 * 1024 * 1024).decode("utf-8")
    except FileNotFoundError:
        raise SourceProblem(f"{path}: not found") from None
    except UnicodeDecodeError as exc:
        raise SourceProblem(f"{name}: invalid TOML: {exc}") from None
    except Exception as exc:
        raise SourceProblem(f"{name}: {exc}") from None
    return load_native_text(text, name, domains)


# ---- the parsed task source, kept as JSON ---------------------------------------------------
# tomllib (with re, typing and its parser) is most of a SessionStart hand-off's start-up and
# 55 % of Engine.start at 20,000 tasks (issue 22). Whoever parses tasks.toml (the engine, the
# agent CLI, the hook) keeps the result next to the config cache, keyed by the file's size,
# mtime and inode and by the domains the problems were judged against, so the next reader
# loads JSON with the C scanner instead; the hand-off reads only its agent's rows (a Beads
# export is cached the same way for it). Written atomically; a cache that cannot be read or
# written is only slower, never wrong.
CACHE_FILE = "tasks.cache.json"  # in the workspace's .comm-node/
CACHE_VERSION = 1
RACY_NS = 2_000_000_000  # a source changed this recently is not cached yet


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


# the slot's descriptor: reads it without making the empty contract (Task.__getattr__)
_CONTRACT: Any = Task.__dict__["contract"]


def _task_row(t: Task) -> list:
    try:
        c = _CONTRACT.__get__(t, Task)
        contract = [c.done_when, c.artifacts, c.notify, c.verify, c.context]
    except AttributeError:  # none: the empty one's row
        contract = [[], [], [], [], ""]
    return [
        t.id, t.title, t.status, t.priority, t.issue_type, t.domain, t.assignee, t.labels,
        t.deps, t.parent, t.pinned, t.ephemeral, t.defer_until, t.required_artifacts,
        t.description, contract,
    ]  # fmt: skip


def _task_of(row: list) -> Task:
    t = Task.__new__(Task)
    (
        t.id, t.title, t.status, t.priority, t.issue_type, t.domain, t.assignee, t.labels,
        deps, t.parent, t.pinned, t.ephemeral, t.defer_until, t.required_artifacts,
        t.description, contract,
    ) = row  # fmt: skip
    t.deps = [(k, target, meta) for k, target, meta in deps]
    done_when, artifacts, notify, verify, context = contract
    if done_when or artifacts or notify or verify or context:
        c = t.contract = Contract.__new__(Contract)
        c.done_when, c.artifacts, c.notify, c.verify, c.context = contract
    return t


def load_native_cached(
    path: str, domains: set[str], state_dir: str
) -> tuple[dict[str, Task], list[str]]:
    """load_native's result, from `state_dir`/CACHE_FILE while tasks.toml is unchanged."""
    cached = _cached_rows("native", path, domains, state_dir)
    if cached is not None:
        try:
            return _tasks_of(cached[0]), cached[1]
        except (ValueError, TypeError):  # a damaged row: the source decides
            pass
    # parsed: its tasks as they are (they were rebuilt from their own rows, 20,000 tasks
    # made twice on an engine's first start; issue 22)
    tasks, _rows, problems = _parse("native", path, domains, state_dir, rows=False)
    return tasks, problems


def _tasks_of(rows: list[list]) -> dict[str, Task]:
    tasks = {}
    for row in rows:
        t = _task_of(row)
        tasks[t.id] = t
    return tasks


def held_cached(
    source: str, path: str, domains: set[str], state_dir: str, overlay: dict, name: str
) -> list[Task]:
    """The tasks domain `name` holds once `overlay` (tasks.json's "tasks") is applied, as
    Coordinator.overlaid_tasks applies it (unsorted). Only tasks assigned to `name` (by the
    overlay, or by the source: the cache header lists those) can be held, so only their rows
    are read from the cache (the SessionStart hand-off needs the agent's own task, not the
    graph). SourceProblem as the source's loader."""
    ids = [
        tid
        for tid, over in overlay.items()
        if isinstance(over, dict) and over.get("assignee") == name
    ]
    found = _read_cache(source, path, domains, state_dir)
    if found is None:
        rows, _problems = _parse_and_cache(source, path, domains, state_dir)
        wanted = set(ids) | {r[0] for r in rows if r[6] == name}
        rows = [r for r in rows if r[0] in wanted]
    else:
        head, body = found
        more = head["assigned"].get(name)
        ids += [tid for tid in more if tid not in ids] if isinstance(more, list) else []
        found_rows = _rows_of(body, ids)
        if found_rows is None:  # a damaged row: the source decides
            found_rows, _problems = _parse_and_cache(source, path, domains, state_dir)
            wanted = set(ids) | {r[0] for r in found_rows if r[6] == name}
            found_rows = [r for r in found_rows if r[0] in wanted]
        rows = found_rows
    try:
        return _held_of(rows, overlay, name)
    except (ValueError, TypeError):  # a damaged cache row: the source decides
        rows, _problems = _parse_and_cache(source, path, domains, state_dir)
        return _held_of(rows, overlay, name)


def _held_of(rows: list[list], overlay: dict, name: str) -> list[Task]:
    held = []
    for row in rows:
        status, assignee = row[2], row[6]
        over = overlay.get(row[0])
        if isinstance(over, dict):
            if isinstance(over.get("status"), str):
                status = over["status"]
            if over.get("assignee"):
                assignee = over["assignee"]
        if status == "in_progress" and assignee == name:
            t = _task_of(row)
            t.status, t.assignee = status, assignee
            held.append(t)
    return held


def source_rows(
    source: str, path: str, domains: set[str], state_dir: str
) -> tuple[list[list], list[str]]:
    """The source's tasks as cache rows (_task_row), and its problems."""
    cached = _cached_rows(source, path, domains, state_dir)
    return cached if cached is not None else _parse_and_cache(source, path, domains, state_dir)


def _cached_rows(
    source: str, path: str, domains: set[str], state_dir: str
) -> tuple[list[list], list[str]] | None:
    """The cache's rows and problems, when it is of the source as it is now and whole."""
    found = _read_cache(source, path, domains, state_dir)
    if found is not None:
        head, body = found
        try:
            rows = json.loads(body)
            if all(type(r) is list and len(r) == ROW_FIELDS for r in rows):
                return rows, head["problems"]
        except (ValueError, RecursionError, TypeError, UnicodeDecodeError):
            pass
    return None


def _rows_of(body: bytes, ids: list[str]) -> list[list] | None:
    """The cache rows of these task ids (those that exist), found by their text without
    parsing (or even decoding) the others: each row is one line that starts with `[` and
    its id's JSON. None when a line found is not such a row."""
    out = []
    for tid in ids:
        at = body.find(b"\n[" + json.dumps(tid, ensure_ascii=False).encode() + b",")
        if at < 0:
            continue  # not in the source: claimed once, since deleted
        end = body.find(b"\n", at + 1)
        line = body[at + 1 : end if end >= 0 else len(body)].rstrip().removesuffix(b",")
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            return None
        if type(row) is not list or len(row) != ROW_FIELDS or row[0] != tid:
            return None
        out.append(row)
    return out


ROW_FIELDS = 16  # _task_row's length


def _read_cache(
    source: str, path: str, domains: set[str], state_dir: str
) -> tuple[dict, bytes] | None:
    """(header, rows as bytes) of the cache when it is of this source file as it is now."""
    stamp = _stamp(path)
    if stamp is None:
        return None
    try:
        with open(os.path.join(state_dir, CACHE_FILE), "rb") as fh:
            data = fh.read()
        first, _nl, body = data.partition(b"\n")
        head = json.loads(first)
        if (
            head["key"] == _cache_key(source, path, domains, stamp)
            and head["bytes"] == len(body)  # not cut short, nothing appended
            and isinstance(head["problems"], list)
            and isinstance(head["assigned"], dict)
        ):
            return head, body
    except (OSError, ValueError, RecursionError, KeyError, TypeError, AttributeError):
        pass  # missing, stale or damaged: parse the source and write it again
    return None


def _cache_key(source: str, path: str, domains: set[str], stamp: list[int] | None) -> list:
    return [CACHE_VERSION, source, path, stamp, sorted(domains)]


def _parse_and_cache(
    source: str, path: str, domains: set[str], state_dir: str
) -> tuple[list[list], list[str]]:
    """The source's tasks as rows, written to the cache: a header line (key, problems, the
    ids each assignee of the source holds), then a JSON array of the rows, one row a line."""
    _tasks, rows, problems = _parse(source, path, domains, state_dir)
    assert rows is not None
    return rows, problems


def _parse(
    source: str, path: str, domains: set[str], state_dir: str, rows: bool = True
) -> tuple[dict[str, Task], list[list] | None, list[str]]:
    """_parse_and_cache, with the tasks too; their rows only if `rows` or written."""
    stamp = _stamp(path)
    if source == "native":
        tasks, problems = load_native(path, domains)
    else:  # the hook's hand-off parses here: not with orjson (its import is start-up time)
        tasks, problems = load_beads_jsonl(path, domains, fast=False)
    table = [_task_row(t) for t in tasks.values()] if rows else None
    # Written only for a file not changed while it was read, and last changed RACY_NS
    # before now: a same-size rewrite in place within the file system's timestamp grain
    # keeps size, mtime and inode, and would be answered from the old cache (git's "racy"
    # index entries). A file that new is parsed again at the next call.
    if stamp is not None and _stamp(path) == stamp and time.time_ns() - stamp[1] >= RACY_NS:
        if table is None:
            table = [_task_row(t) for t in tasks.values()]
        from comm_node_tui.protocol.fileio import atomic_write, ensure_dir

        def enc(obj: object) -> str:
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

        assigned: dict[str, list[str]] = {}
        for t in tasks.values():
            if t.assignee is not None:
                assigned.setdefault(t.assignee, []).append(t.id)
        key = _cache_key(source, path, domains, stamp)
        body = ("[\n" + ",\n".join(enc(r) for r in table) + "\n]\n").encode()
        head = enc({"key": key, "problems": problems, "assigned": assigned, "bytes": len(body)})
        text = head.encode() + b"\n" + body
        try:
            ensure_dir(state_dir)
            atomic_write(os.path.join(state_dir, CACHE_FILE), text)
        except (OSError, ValueError, TypeError):
            pass  # a read-only workspace still works, only slower
    return tasks, table, problems


def load_native_text(text: str, name: str, domains: set[str]) -> tuple[dict[str, Task], list[str]]:
    """load_native on text already read (`task edit` checks its result before writing it)."""
    data = plain_tasks_toml(text)
    if data is None:  # anything past the plain shape: TOML's own parser decides
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SourceProblem(f"{name}: invalid TOML: {exc}") from None
    tasks: dict[str, Task] = {}
    problems: list[str] = []
    entries = data.get("tasks", [])
    if not isinstance(entries, list):
        raise SourceProblem(f"{name}: tasks: must be an array of tables ([[tasks]])")
    for i, e in enumerate(entries):
        # Written for speed (issue 22: 0.38 s of an engine's first start at 20,000 tasks):
        # each slot set once, where a problem's location is needed only when one is found,
        # the contract read only where the entry has one of its keys.
        tid = e.get("id") if isinstance(e, dict) else None
        if not isinstance(tid, str) or not tid:
            problems.append(f"{name}: tasks[{i}].id: required text is missing; task skipped")
            continue
        plain = e.keys() <= _PLAIN_KEYS  # no unknown key, no contract key
        if not plain:
            extra = sorted(set(e) - _KNOWN_KEYS)
            if extra:
                problems.append(f"{name}: tasks[{i}] ({tid}).{extra[0]}: unknown key")
        t = Task.__new__(Task)
        t.id = tid
        v = e.get("title")
        t.title = v if isinstance(v, str) else ""
        v = e.get("status")
        t.status = v if isinstance(v, str) and v else "open"
        v = e.get("priority", 2)
        t.priority = v if type(v) is int else _priority(v)
        v = e.get("type")
        t.issue_type = v if isinstance(v, str) and v else "task"
        v = e.get("description")
        t.description = v if isinstance(v, str) else ""
        t.assignee = None
        t.labels = []
        t.pinned = t.ephemeral = False
        t.defer_until = None
        dom = e.get("domain")
        if isinstance(dom, str) and dom:
            if dom not in domains:
                problems.append(f"{name}: tasks[{i}] ({tid}).domain: unknown domain '{dom}'")
            t.domain = dom
        else:
            t.domain = None
        deps: list[tuple[str, str, dict]] = []
        v = e.get("depends_on", [])
        for d in v if isinstance(v, list) else [v]:
            if isinstance(d, str) and d:
                deps.append(("blocks", d, {}))
        v = e.get("parent")
        if isinstance(v, str):
            t.parent = v
            deps.append(("parent-child", v, {}))
        else:
            t.parent = None
        t.deps = deps
        v = e.get("required_artifacts", [])
        t.required_artifacts = [a for a in v if isinstance(a, str)] if isinstance(v, list) else []
        if not plain:
            c = _native_contract(e, f"{name}: tasks[{i}] ({tid})", problems)
            if not c.empty():
                t.contract = c
        if tid in tasks:
            problems.append(f"{name}: tasks[{i}].id: duplicate id '{tid}' (the later one wins)")
        tasks[tid] = t
    return tasks, problems


CONTRACT_KEYS = ("done_when", "artifacts", "notify", "verify", "notes")
_PLAIN_KEYS = frozenset(  # the keys of a [[tasks]] entry but the contract's
    {"id", "title", "domain", "priority", "depends_on", "required_artifacts", "status"}
    | {"description", "parent", "type"}
)
_KNOWN_KEYS = _PLAIN_KEYS | frozenset(CONTRACT_KEYS)

# ---- the plain shape of tasks.toml, read without tomllib ------------------------------------
# tomllib is pure Python: 20,000 tasks took 1.2 s of CPU, most of an engine's first start
# and of the room's first full frame (issue 22). Most task files are `[[tasks]]` headers and
# one-line `key = value` pairs: a basic string without escapes, an integer, a boolean or a
# one-line array of such strings. Those lines are read here with one regular expression
# each; any other line (a multi-line or literal string, an escape, a float, a date, a dotted
# key, an inline table, another table, a repeated key, a carriage return, a control
# character) hands the whole text to tomllib, so the result is tomllib's, or its error
# (tests/test_plain_toml.py compares the two on generated files).
_PLAIN_STR = r'"[^"\\]*"'
_PLAIN_LINE = (
    r"[ \t]*(?:"
    r"(?P<table>\[\[tasks\]\])"
    r"|(?P<key>[A-Za-z0-9_-]+)[ \t]*=[ \t]*(?:"
    rf"(?P<str>{_PLAIN_STR})"
    r"|(?P<bool>true|false)"
    r"|(?P<int>[+-]?(?:0|[1-9][0-9]*))"
    rf"|(?P<arr>\[[ \t]*(?:{_PLAIN_STR}[ \t]*,[ \t]*)*(?:{_PLAIN_STR}[ \t]*)?\])"
    r"))?[ \t]*(?:#.*)?"
)
_NOT_PLAIN = "[\x00-\x08\x0b-\x1f\x7f]"  # control characters but tab and newline


def plain_tasks_toml(text: str) -> dict | None:
    """tomllib.loads(text) for a tasks.toml of the plain shape above; None for any other
    text (valid or not: the caller asks tomllib)."""
    import re

    if re.search(_NOT_PLAIN, text):
        return None
    line_re = re.compile(_PLAIN_LINE)
    strings = re.compile(_PLAIN_STR)
    tasks: list[dict] = []
    table: dict | None = None
    for line in text.split("\n"):
        m = line_re.fullmatch(line)
        if m is None:
            return None
        if m["table"] is not None:
            table = {}
            tasks.append(table)
            continue
        key = m["key"]
        if key is None:
            continue  # blank, or a comment
        if table is None or key in table:
            return None  # a top-level key, or a key given twice (tomllib's error)
        if m["str"] is not None:
            table[key] = m["str"][1:-1]
        elif m["bool"] is not None:
            table[key] = m["bool"] == "true"
        elif m["int"] is not None:
            table[key] = int(m["int"])
        else:
            table[key] = [s[1:-1] for s in strings.findall(m["arr"])]
    return {"tasks": tasks} if tasks else {}


def _native_contract(e: dict, where: str, problems: list[str]) -> Contract:
    """The contract keys of one [[tasks]] entry; a bad value is reported and left out.
    Checked by hand, not with pydantic: this runs in every agent's `task claim`."""
    lists: dict[str, list[str]] = {}
    for key in CONTRACT_KEYS[:4]:
        v = e.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
            problems.append(f"{where}.{key}: must be a list of non-empty strings; ignored")
            v = []
        lists[key] = [x.strip() for x in v]
    notes = e.get("notes", "")
    if not isinstance(notes, str):
        problems.append(f"{where}.notes: must be text; ignored")
        notes = ""
    return Contract(**lists, context=notes.strip()[:MAX_CONTEXT_CHARS])


def cycle_through(tasks: dict[str, Task], start: str) -> list[str] | None:
    """A dependency cycle that passes through `start` (its ids, `start` first and last), or
    None. Every edge kind counts (a task waiting on its own descendant never becomes ready);
    edges to absent ids do not."""
    path = [start]
    on_path = {start}
    done: set[str] = set()
    stack = [iter([t for _k, t, _m in tasks[start].deps])] if start in tasks else []
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            node = path.pop()
            on_path.discard(node)
            done.add(node)
            continue
        if nxt == start:
            return [*path, start]
        if nxt in on_path or nxt in done or nxt not in tasks:
            continue
        path.append(nxt)
        on_path.add(nxt)
        stack.append(iter([t for _k, t, _m in tasks[nxt].deps]))
    return None


# ---- readiness ---------------------------------------------------------------------------
def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    from datetime import UTC, datetime

    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Readiness:
    """Which tasks are blocked (and why) and which are ready."""

    def __init__(
        self, tasks: dict[str, Task], published: set[str] | None = None, now: datetime | None = None
    ) -> None:
        self.tasks = tasks
        self.published = published or set()
        # datetime and collections are imported here, not at the top: the SessionStart
        # hand-off reads tasks without judging readiness, and they were a fifth of its
        # start-up (issue 22)
        from collections import defaultdict
        from datetime import UTC, datetime

        self.now = now or datetime.now(UTC)
        # Written for speed (issue 22): locals for what every edge reads, a reason's list
        # made only for a blocked task, each deferral parsed once, `dependents` (for
        # `unblocks` alone) built when first asked for.
        children: dict[str, list[str]] = defaultdict(list)
        for t in tasks.values():
            for kind, target, _m in t.deps:
                if kind == "parent-child":
                    children[target].append(t.id)
        self.children = children
        self._dependents: dict[str, list[str]] | None = None
        self.reasons: dict[str, list[str]] = {}
        self._compute_blocked()
        reasons = self.reasons
        # the tasks deferred into the future (by identity): a task is deferred when it or an
        # ancestor is one of them, so with none (the usual case) no ancestry is walked
        future = {id(t) for t in tasks.values() if t.defer_until and self._defers(t)}
        ready: list[tuple[int, str]] = []
        for tid, t in tasks.items():  # self._ready(t), inline
            if (
                t.status == "open"
                and not t.pinned
                and not t.ephemeral
                and t.id not in reasons
                and t.issue_type not in EXCLUDED_TYPES
                and not (future and self._under(t, future))
                and not (t.required_artifacts and self.missing_artifacts(t))
            ):
                ready.append((t.priority, tid))
        ready.sort()  # by (priority, id): ids are unique, so no two keys tie
        self.ready: list[str] = [tid for _p, tid in ready]

    @property
    def dependents(self) -> dict[str, list[str]]:
        """Every task's dependents (any edge kind), by the id they depend on."""
        if self._dependents is None:
            from collections import defaultdict

            dependents: dict[str, list[str]] = defaultdict(list)
            for t in self.tasks.values():
                for _kind, target, _m in t.deps:
                    dependents[target].append(t.id)
            self._dependents = dependents
        return self._dependents

    def _open_children(self, gate: str) -> list[str]:
        return [c for c in self.children.get(gate, ()) if self.tasks[c].status not in DONE]

    def _compute_blocked(self) -> None:
        tasks = self.tasks
        get = tasks.get
        direct: dict[str, list[str]] = {}
        for t in tasks.values():
            if t.status in DONE:
                continue
            why = None
            for kind, target, meta in t.deps:
                dep = get(target)
                if dep is None:
                    continue  # dangling edges never block
                if kind in BLOCKING and dep.status not in DONE:
                    reason = f"blocked by {target} ({dep.status})"
                elif kind == "waits-for":
                    open_children = self._open_children(target)
                    if not open_children:
                        continue
                    if meta.get("gate") == "any-children" and any(
                        tasks[c].status == "closed" for c in self.children.get(target, ())
                    ):
                        continue
                    reason = f"waits for {target} ({len(open_children)} open children)"
                else:
                    continue
                if why is None:
                    why = direct[t.id] = [reason]
                else:
                    why.append(reason)
        self.reasons = dict(direct)
        # Blocked parents block their (not closed/pinned) descendants, transitively.
        from collections import deque

        queue = deque(direct)
        while queue:
            pid = queue.popleft()
            for child in self.children.get(pid, ()):
                if tasks[child].status in DONE:
                    continue
                if child not in self.reasons:
                    self.reasons[child] = [f"parent {pid} is blocked"]
                    queue.append(child)
                elif not any(r.startswith("parent ") for r in self.reasons[child]):
                    self.reasons[child].append(f"parent {pid} is blocked")

    def blocked(self, tid: str) -> bool:
        return tid in self.reasons

    def _defers(self, t: Task) -> bool:
        when = _parse_time(t.defer_until)
        return when is not None and when > self.now

    def _under(self, t: Task, future: set[int]) -> bool:
        """_deferred(t), with the future deferrals found already."""
        seen = set()
        node: Task | None = t
        while node is not None and node.id not in seen:
            seen.add(node.id)
            if id(node) in future:
                return True
            node = self.tasks.get(node.parent) if node.parent else None
        return False

    def _deferred(self, t: Task) -> bool:
        seen = set()
        node: Task | None = t
        while node is not None and node.id not in seen:
            seen.add(node.id)
            when = _parse_time(node.defer_until)
            if when is not None and when > self.now:
                return True
            node = self.tasks.get(node.parent) if node.parent else None
        return False

    def missing_artifacts(self, t: Task) -> list[str]:
        return [
            a
            for a in t.required_artifacts
            if a not in self.published and a.split(":", 1)[-1] not in self.published
        ]

    def _ready(self, t: Task) -> bool:
        return (
            t.status == "open"
            and not t.pinned
            and not t.ephemeral
            and t.id not in self.reasons
            and t.issue_type not in EXCLUDED_TYPES
            and not self._deferred(t)
            and not self.missing_artifacts(t)
        )

    def why_not_ready(self, tid: str) -> list[str]:
        t = self.tasks[tid]
        why = list(self.reasons.get(tid, []))
        if t.status != "open":
            why.insert(0, f"status is {t.status}")
        if t.pinned:
            why.append("pinned")
        if t.ephemeral:
            why.append("ephemeral")
        if t.issue_type in EXCLUDED_TYPES:
            why.append(f"type {t.issue_type} is never ready work")
        if self._deferred(t):
            why.append("deferred")
        why += [f"needs artifact {a}" for a in self.missing_artifacts(t)]
        return why

    def unblocks(self, tid: str) -> list[str]:
        """Tasks that depend on `tid` (blocks, waits-for on its parent, children)."""
        return sorted(set(self.dependents.get(tid, ())))

    def counts(self) -> dict[str, int]:
        c = {"ready": len(self.ready), "in_progress": 0, "blocked": 0, "done": 0, "open": 0}
        for t in self.tasks.values():
            if t.status in DONE:
                c["done"] += 1
            elif t.status == "in_progress":
                c["in_progress"] += 1
            elif t.id in self.reasons or t.status in ("blocked", "parked"):
                c["blocked"] += 1
            else:
                c["open"] += 1
        return c
