"""`task add` and `task edit`: native tasks written back into tasks.toml.

tasks.toml is the operator's own file, with their comments and layout. tomlkit would keep
both but is one more dependency for two commands; tomli-w (already one) only writes whole
documents. So the file is edited as text and no more of it than needed: `add` appends one
`[[tasks]]` table, `edit` replaces only the lines of the keys it changes inside that task's
table (a key's lines end where its value parses on its own, so multi-line arrays move as one)
and leaves every other line, comments included, as it was. Every result is parsed again and
compared with what was meant (the other tasks unchanged, this one exactly as asked) before it
is written, atomically; a file this cannot edit safely (tasks written inline, `tasks = [...]`)
is refused with one line, never rewritten.
"""

from __future__ import annotations

import os
import re
import tomllib

from comm_node_tui.coordination.tasks import CONTRACT_KEYS, cycle_through, load_native_text
from comm_node_tui.errors import CommNodeError, UsageError
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.fileio import atomic_write, read_bounded

TYPE_CHECKING = False
if TYPE_CHECKING:
    from comm_node_tui.coordination.coordinator import Coordinator

MAX_TASKS_BYTES = 16 * 1024 * 1024  # what load_native reads
LIST_KEYS = ("depends_on", *CONTRACT_KEYS[:4])  # done_when, artifacts, notify, verify
TEXT_KEYS = ("title", "domain", "parent", "description", "notes")
# the order a new table's keys are written in
KEY_ORDER = ("id", "title", "domain", "priority", "depends_on", "parent", *CONTRACT_KEYS)

_HEADER = re.compile(r"^\s*\[\[\s*tasks\s*\]\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_KEY = re.compile(r"""^\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*=""")


class EditRefused(CommNodeError):
    """The change would break the task graph or cannot be written safely; nothing written."""


def _render(key: str, value: object) -> str:
    import tomli_w

    return tomli_w.dumps({key: value})


def _read(path: str) -> str:
    try:
        return read_bounded(path, MAX_TASKS_BYTES).decode("utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise EditRefused(f"{os.path.basename(path)}: not UTF-8 text; edit it by hand") from None
    except ValueError as exc:  # too large, a symlink, a FIFO, a directory: one line
        raise EditRefused(f"{exc}; edit it by hand") from None


def _write(path: str, text: str) -> None:
    """Atomically, keeping the file's permissions (the operator's 0644 stays 0644)."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        mode = 0o644  # a new tasks.toml, as an editor would make it
    atomic_write(path, text, mode=mode)


def _entries(text: str, name: str) -> list[dict]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EditRefused(f"{name}: invalid TOML ({exc}); fix it first") from None
    entries = data.get("tasks", [])
    if not isinstance(entries, list):
        raise EditRefused(f"{name}: tasks: must be an array of tables ([[tasks]])")
    return entries


def _check(name: str, text: str, tid: str, domains: set[str], old: dict | None) -> None:
    """Refuse the new text when `tid` names an unknown domain, a missing dependency or
    parent, or closes a cycle. Only what this change brings in is judged (`old`: the entry
    before an edit): a dangling edge the file already had is not this command's to refuse."""
    tasks, _problems = load_native_text(text, name, domains)
    t = tasks[tid]
    before = old or {}
    if t.domain and t.domain not in domains and t.domain != before.get("domain"):
        known = ", ".join(sorted(domains)) or "none"
        raise EditRefused(f"{tid}: unknown domain '{t.domain}' (known: {known})")
    had = before.get("depends_on", [])
    had = {had} if isinstance(had, str) else set(had) if isinstance(had, list) else set()
    had.add(before.get("parent"))
    for _kind, target, _m in t.deps:
        if target not in tasks and target not in had:
            raise EditRefused(f"{tid}: depends on '{target}', which is not a task in {name}")
    cycle = cycle_through(tasks, tid)
    if cycle:
        raise EditRefused(f"{tid}: that would make a dependency cycle: {' -> '.join(cycle)}")


def _clean(fields: dict) -> dict:
    """The fields as tasks.toml keys; None means "leave out"."""
    out: dict = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key in LIST_KEYS:
            value = [v.strip() for v in value if v.strip()]
        elif key in TEXT_KEYS:
            value = value.strip()
        elif key == "priority" and not (isinstance(value, int) and 0 <= value <= 4):
            raise UsageError("--priority: 0 (highest) to 4")
        out[key] = value
    return out


def new_id(existing: set[str]) -> str:
    """The next free `<prefix>-<n>`, the prefix the one most ids already use ("task")."""
    counts: dict[str, int] = {}
    top: dict[str, int] = {}
    for tid in existing:
        m = re.fullmatch(r"(.*?)-?(\d+)", tid)
        if m and m.group(1):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
            top[m.group(1)] = max(top.get(m.group(1), 0), int(m.group(2)))
    prefix = max(counts, key=lambda p: (counts[p], p)) if counts else "task"
    sep = "-" if any(t.startswith(prefix + "-") for t in existing) or not counts else ""
    n = top.get(prefix, 0) + 1
    while f"{prefix}{sep}{n}" in existing:
        n += 1
    return f"{prefix}{sep}{n}"


def add_task(path: str, domains: set[str], tid: str | None, fields: dict) -> dict:
    """Append one `[[tasks]]` table to `path` (created when missing); the new entry."""
    name = os.path.basename(path)
    text = _read(path)
    entries = _entries(text, name)
    ids = {e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)}
    if tid is None:
        tid = new_id(ids)
    elif not tid.strip() or any(c.isspace() for c in tid):
        raise UsageError(f"task id '{tid}': one word, no spaces")
    if tid in ids:
        raise EditRefused(f"{name}: a task '{tid}' exists already (`task edit {tid}` changes it)")
    entry = {"id": tid, **_clean(fields)}
    if not entry.get("title"):
        raise UsageError("task add needs --title")
    entry = {k: entry[k] for k in KEY_ORDER if k in entry and entry[k] not in ([], "")}
    body = "".join(_render(k, v) for k, v in entry.items())
    sep = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
    new = f"{text}{sep}[[tasks]]\n{body}"
    after = _entries(new, name)
    if len(after) != len(entries) + 1 or after[:-1] != entries or after[-1] != entry:
        raise EditRefused(f"{name}: cannot append a [[tasks]] table to it; add {tid} by hand")
    _check(name, new, tid, domains, None)
    _write(path, new)
    return entry


def _table_spans(lines: list[str], count: int, name: str) -> list[tuple[int, int]]:
    """(first line after the header, end) of each `[[tasks]]` table, in file order."""
    heads = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    if len(heads) != count:
        raise EditRefused(f"{name}: its tasks are not all [[tasks]] tables; edit it by hand")
    spans = []
    for i in heads:
        end = next((j for j in range(i + 1, len(lines)) if _ANY_HEADER.match(lines[j])), len(lines))
        spans.append((i + 1, end))
    return spans


def _key_extents(lines: list[str], start: int, end: int) -> dict[str, tuple[int, int]]:
    """Each key's lines inside one table: from its `key =` line to where its value parses."""
    out: dict[str, tuple[int, int]] = {}
    i = start
    while i < end:
        m = _KEY.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j <= end:
            try:
                tomllib.loads("".join(lines[i:j]))
                break
            except tomllib.TOMLDecodeError:
                j += 1
        if j > end:
            raise EditRefused("a key in that task's table does not parse on its own lines")
        out[m.group(1).strip("\"'")] = (i, j)
        i = j
    return out


def edit_task(
    path: str,
    domains: set[str],
    tid: str,
    fields: dict,
    add_deps: list[str] | None = None,
    remove_deps: list[str] | None = None,
) -> dict:
    """Change `tid`'s keys in `path` (an empty text or list removes the key); the entry."""
    name = os.path.basename(path)
    text = _read(path)
    entries = _entries(text, name)
    index = max(
        (i for i, e in enumerate(entries) if isinstance(e, dict) and e.get("id") == tid),
        default=None,  # a duplicate id: the later one is the one that loads
    )
    if index is None:
        raise EditRefused(f"{name}: no task '{tid}'")
    changes = _clean(fields)
    old = entries[index]
    if add_deps or remove_deps:
        deps = changes.get("depends_on", old.get("depends_on", []))
        deps = [deps] if isinstance(deps, str) else list(deps)
        for d in add_deps or []:
            if d not in deps:
                deps.append(d)
        gone = set(remove_deps or [])
        missing = sorted(gone - set(deps))
        if missing:
            raise EditRefused(f"{tid} does not depend on {', '.join(missing)}")
        changes["depends_on"] = [d for d in deps if d not in gone]
    if not changes:
        raise UsageError("task edit: nothing to change (give --title, --domain, ...)")
    if "id" in changes:
        raise UsageError("task edit cannot rename a task")
    want = dict(old)
    for key, value in changes.items():
        if value in ([], ""):
            want.pop(key, None)
        else:
            want[key] = value
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start, end = _table_spans(lines, len(entries), name)[index]
    extents = _key_extents(lines, start, end)
    # replaced and removed keys, from the bottom up so earlier line numbers stay valid
    edits: list[tuple[int, int, str]] = []
    for key, value in changes.items():
        if key in extents:
            a, b = extents[key]
            edits.append((a, b, "" if value in ([], "") else _render(key, value)))
    new_keys = "".join(
        _render(k, v) for k, v in changes.items() if k not in extents and v not in ([], "")
    )
    if new_keys:
        after_last = max((b for _a, b in extents.values()), default=start)
        edits.append((after_last, after_last, new_keys))
    for a, b, repl in sorted(edits, reverse=True):
        lines[a:b] = [repl] if repl else []
    new = "".join(lines)
    after = _entries(new, name)
    if (
        len(after) != len(entries)
        or after[index] != want
        or any(after[i] != entries[i] for i in range(len(entries)) if i != index)
    ):
        raise EditRefused(f"{name}: cannot edit {tid} safely as text; edit it by hand")
    _check(name, new, tid, domains, old)
    _write(path, new)
    return want


# ---- for the CLI and the room: the workspace's tasks.toml, under the coordination lock ------
def native_file(coord: Coordinator) -> str:
    """The workspace's tasks.toml; refused with one line for any other task source."""
    source, path = coord.task_source()
    if source != "native":
        hint = ": `bd create` / `bd update` edit Beads issues" if source == "beads" else ""
        raise CommNodeError(
            f'task add/edit write native tasks ([tasks] source = "native"); this '
            f"workspace's source is {source}{hint}"
        )
    return path


def _edited(coord: Coordinator, verb: str, entry: dict) -> dict:
    coord.emit(
        Event(
            "tasks.edited",
            f"operator {verb} {entry['id']}: {entry.get('title', '')}",
            data={"task": entry["id"], "action": verb},
        )
    )
    return entry


def add_native(coord: Coordinator, tid: str | None, fields: dict) -> dict:
    """`task add` in the workspace: the new entry, logged as `tasks.edited`."""
    path = native_file(coord)
    with coord.store.locked():  # two adds at once must not both take the same new id
        entry = add_task(path, set(coord.ws.domains), tid, fields)
    return _edited(coord, "added", entry)


def edit_native(
    coord: Coordinator,
    tid: str,
    fields: dict,
    add_deps: list[str] | None = None,
    remove_deps: list[str] | None = None,
) -> dict:
    """`task edit` in the workspace: the entry as it now is, logged as `tasks.edited`."""
    path = native_file(coord)
    with coord.store.locked():
        entry = edit_task(path, set(coord.ws.domains), tid, fields, add_deps, remove_deps)
    return _edited(coord, "edited", entry)
