"""What an agent is told when its session starts (startup, resume, clear, compact): the task
it holds and that task's contract, its locks, its unread mail, the last failed attempt and
where its own hand-off note is, so that a restart, a `/clear` or a compaction does not start
it from zero (issue 17, item 5).

The text goes into the model's context (`additionalContext` of the SessionStart hook), and
most of it was written by someone else: task titles and criteria (Beads records are written
by agents too), mail subjects from peers, a verify command's output. So every piece is made
one line of printable characters (no terminal escapes, no fake headings), cut to a bound, and
the whole is cut to `MAX_CHARS`.

Imported only by the hook's SessionStart branch. It fires on every start, resume, `/clear`
and compaction of every agent, so `facts` reads only what the text shows (issue 22: it was
3-4x `python -c pass`, mostly imports): the parsed tasks.toml from its JSON cache
(coordination/tasks.py), only the agent's own tasks made into objects, the overlay and
locks.json as plain JSON, no Coordinator (whose imports, flock and readiness judgement of the
whole graph the text never shows). `facts_from_coordinator` is the same answer through the
Coordinator: the cluster's path (its shared state lives in NATS), and the reference the
tests compare `facts` with.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # annotations only
if TYPE_CHECKING:
    from comm_node_tui.workspace.model import Domain, Workspace

MAX_CHARS = 2000  # the whole text; Claude Code accepts 10,000 per hook output
LINE_CHARS = 300  # one piece (a title, a criterion, a subject)
EXCERPT_CHARS = 400  # the tail of the last failure's output
MAX_ITEMS = 5  # criteria, verify commands, locks, mail subjects shown
NOTE_FILE = "handoff.md"  # in the domain's .comm-node/ folder


def one_line(text: object, limit: int = LINE_CHARS) -> str:
    """`text` as one line of printable characters, at most `limit` long."""
    s = text if isinstance(text, str) else "" if text is None else str(text)
    s = " ".join("".join(c if c.isprintable() else " " for c in s).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def note_path(dom: Domain) -> str:
    """Where the agent writes its hand-off note (`comm-node handoff` asks it to)."""
    return os.path.join(dom.paths.dir, NOTE_FILE)


def held_tasks(tasks: dict, name: str) -> list:
    """The tasks domain `name` holds (in progress, assigned to it), highest priority first."""
    held = [t for t in tasks.values() if t.status == "in_progress" and t.assignee == name]
    return sorted(held, key=lambda t: (t.priority, t.id))


def facts(ws: Workspace, dom: Domain) -> dict:
    """Plain data for the text (and for `whoami --json`): task, contract, locks, mail, note."""
    if ws.settings.cluster.enabled:
        return facts_from_coordinator(ws, dom)
    from comm_node_tui.coordination.store import CoordStore

    store = CoordStore(ws.paths.state)
    try:
        overlay = store.read("tasks.json", {})  # coordinator.OVERLAY_FILE
    except ValueError:
        overlay = {}
    over = overlay.get("tasks") if isinstance(overlay, dict) else None
    over = over if isinstance(over, dict) else {}
    held = sorted(_held(ws, dom.name, over), key=lambda t: (t.priority, t.id))
    task = None
    if held:
        t = held[0]
        timeout = dom.verify_timeout_s or ws.settings.tasks.verify_timeout_s
        task = {
            "id": t.id,
            "title": t.title,
            "contract": t.contract.to_json(),
            "verify": [*dom.verify, *t.contract.verify],
            "verify_timeout_s": float(timeout),
            "last_failure": _last_failure(over.get(t.id)),
        }
    return _rest(dom, task, held, _own_locks(store, dom.name))


def _held(ws: Workspace, name: str, over: dict) -> list:
    """Coordinator.overlaid_tasks, then held_tasks' filter (unsorted), from the cache."""
    from comm_node_tui.coordination.tasks import SourceProblem, held_cached

    source = ws.settings.tasks.source
    if source not in ("native", "beads"):
        return []
    path = os.path.join(ws.root, ws.settings.tasks.file())
    try:
        return held_cached(source, path, set(ws.domains), ws.paths.state, over, name)
    except SourceProblem:
        return []


def _last_failure(entry: object) -> dict | None:
    """Coordinator.task_record(...)["last_failure"] from the task's overlay entry."""
    raw = entry.get("attempts") if isinstance(entry, dict) else None
    attempts = [a for a in raw if isinstance(a, dict)] if isinstance(raw, list) else []
    last = next((a for a in reversed(attempts) if a.get("result") != "reopened"), None)
    return last if last and last.get("result") in ("fail", "gave_up") else None


def _own_locks(store: object, name: str) -> list[dict]:
    """The unexpired locks `name` holds, as Coordinator.locks() lists them, read without the
    flock: a snapshot for the text. Expiring others' locks (and setting a damaged file
    aside) stays with the engine and the lock commands."""
    try:
        data = store.read("locks.json", {})  # type: ignore[attr-defined]
    except ValueError:
        return []
    records = data.get("locks", []) if isinstance(data, dict) else []
    now = time.time()
    out = []
    for rec in records if isinstance(records, list) else []:
        try:
            if rec["holder"] != name:
                continue
            pattern, expires = rec["pattern"], float(rec["expires"])
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(pattern, str) and expires > now:
            out.append({"pattern": pattern, "expires": expires})
    return sorted(out, key=lambda lk: lk["pattern"])


def facts_from_coordinator(ws: Workspace, dom: Domain) -> dict:
    """`facts` through the Coordinator (the cluster's shared state)."""
    from comm_node_tui.coordination.coordinator import Coordinator

    coord = Coordinator(ws)
    tasks, _problems = coord.overlaid_tasks()
    held = held_tasks(tasks, dom.name)
    task = None
    if held:
        t = held[0]
        task = {"id": t.id, "title": t.title, **coord.handover(dom, t)}
    locks = [
        {"pattern": lk.pattern, "expires": lk.expires}
        for lk in coord.locks()
        if lk.holder == dom.name
    ]
    return _rest(dom, task, held, locks)


def _rest(dom: Domain, task: dict | None, held: list, locks: list[dict]) -> dict:
    from comm_node_tui.hooks.mail import unread

    mail = unread(dom.paths)
    note = note_path(dom)
    try:
        note_mtime: float | None = os.stat(note).st_mtime
    except OSError:
        note_mtime = None
    return {
        "task": task,
        "more_tasks": [t.id for t in held[1:]],
        "locks": locks,
        "unread": len(mail),
        "newest_mail": list(reversed(mail[-3:])),
        "note": os.path.relpath(note, dom.path) if note_mtime is not None else None,
        "note_mtime": note_mtime,
    }


def _clock(ts: object) -> str:
    if not isinstance(ts, int | float):
        return "?"
    return time.strftime("%H:%M", time.localtime(ts))


def render(dom_name: str, source: str, f: dict) -> str:
    """The additionalContext text: a few short lines, at most MAX_CHARS."""
    why = {
        "startup": "your session started",
        "resume": "your session was resumed",
        "clear": "your context was cleared",
        "compact": "your context was compacted",
    }.get(source, "your session started")
    lines = [f"comm-node hand-off for {one_line(dom_name, 60)} ({why}). Where you were:"]
    task = f.get("task")
    if task:
        lines.append(f"- Your task: {one_line(task['id'], 80)}: {one_line(task['title'])}")
        contract = task.get("contract") or {}
        done_when = contract.get("done_when") or []
        if done_when:
            shown = "; ".join(one_line(c, 150) for c in done_when[:MAX_ITEMS])
            more = f" (+{len(done_when) - MAX_ITEMS} more)" if len(done_when) > MAX_ITEMS else ""
            lines.append(f"- Done when: {shown}{more}")
        if contract.get("artifacts"):
            shown = ", ".join(one_line(a, 80) for a in contract["artifacts"][:MAX_ITEMS])
            lines.append(f"- Publish: {shown}")
        verify = task.get("verify") or []
        if verify:
            shown = ", ".join(f"`{one_line(c, 120)}`" for c in verify[:MAX_ITEMS])
            lines.append(f"- `comm-node task done {one_line(task['id'], 80)}` runs: {shown}")
        last = task.get("last_failure")
        if last:
            lines.append(f"- Last attempt failed: {one_line(last.get('reason'), 200)}")
            excerpt = one_line((last.get("excerpt") or "")[-EXCERPT_CHARS:], EXCERPT_CHARS)
            if excerpt:
                lines.append(f"  output (end): {excerpt}")
        if f.get("more_tasks"):
            lines.append(f"- Also held: {', '.join(one_line(t, 80) for t in f['more_tasks'][:5])}")
    else:
        lines.append("- You hold no task: `comm-node task ready` lists what you can claim.")
    locks = f.get("locks") or []
    if locks:
        shown = ", ".join(
            f"{one_line(lk['pattern'], 100)} (until {_clock(lk.get('expires'))})"
            for lk in locks[:MAX_ITEMS]
        )
        more = f" (+{len(locks) - MAX_ITEMS} more)" if len(locks) > MAX_ITEMS else ""
        lines.append(f"- Your locks: {shown}{more}")
    unread = f.get("unread") or 0
    if unread:
        subjects = "; ".join(
            f"{one_line(m.get('from'), 40)}: {one_line(m.get('subject'), 100)}"
            for m in f.get("newest_mail") or []
        )
        lines.append(
            f"- Unread mail: {unread} (newest: {subjects}); read it with `comm-node inbox`"
        )
    if f.get("note"):
        lines.append(
            f"- Your hand-off note: {one_line(f['note'], 200)} (written "
            f"{_clock(f.get('note_mtime'))}): read it first."
        )
    text = "\n".join(lines)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def context(ws: Workspace, dom: Domain, source: object) -> str:
    return render(dom.name, source if isinstance(source, str) else "startup", facts(ws, dom))
