"""Store files no agent may change, kept in `.comm-node/guarded/` (paths.guarded).

A sandboxed agent sees guarded/ read-only as a whole (adapters/claude/sandbox.py). A
read-only mount of a single file does not hold: the host replaces a store file by renaming a
new version over it (atomic_write), and in a sandbox already running (one long Bash call)
the new inode is unwalled. A rename inside a walled folder leaves the folder walled.

The coordination store names its files (`locks.json`, `budget-grants.json`, ...), and in a
cluster the same names are the keys of the shared bucket (cluster/kvstore.py, relay.py): a
guarded name keeps its name and its key, only its local file lives in guarded/.

An older comm-node kept these files in `.comm-node/` itself. That file is read while
guarded/ holds none, and the next write moves it (the way the pause's is: coordination/
pause.py). `settle`, run before any sandboxed agent starts (write_sandbox), moves it at once
and otherwise leaves an empty one in guarded/: `.comm-node/` stays writable to agents, and a
file one makes at the old place later must never be read (an agent granting itself budget).

A link (or a file) where guarded/ should be is not ours: nothing is read or written through
it (the old place is read instead, never more than the operator's own data), and the next
write replaces it with the folder.

Each domain's budget (`budget.<domain>.json`, written by the engine: its "work" part is the
work budget's pause the hooks enforce) lives here too, not in the domain's own protocol folder
where an older comm-node kept it (`<domain>/.comm-node/budget.json`): an agent may write
there, and a folder walled inside it does not hold either (renaming the writable
`<domain>/.comm-node` moves the walled folder away with it, and a new one made in its place
is the agent's; checked with bwrap). The workspace's `.comm-node/` is a mount of its own in
the sandbox (allowWrite), which cannot be renamed. An older comm-node's file is read while
guarded/ has none for the domain; the engine's next write drops it, and `adopt_budget`
(write_sandbox) moves it before a sandboxed agent starts. No empty one is made there: until
the engine writes one, no pause of its can be in force, and an older engine's pause, written
at the old place meanwhile, would be hidden by it.

Standard library and protocol/fileio only: the agent CLI reads grants through here.
"""

from __future__ import annotations

import os

from comm_node_tui.protocol.fileio import atomic_write, ensure_dir

FOLDER = "guarded"
# name -> what `settle` leaves in guarded/ when there is no file to move (None: nothing)
FILES: dict[str, str | None] = {
    "budget-grants.json": '{"grants":[]}\n',  # coordination: the operator's and policy's grants
    "ledger.jsonl": "",  # coordination/ledger.py: the routing journal, spent tokens
    # cluster/events.py: how far this engine shared its log (none: from the log's end, as
    # on a cluster's first start, which the engine decides, not an empty file)
    "cluster-events.json": None,
}


def folder_is_ours(state_dir: str) -> bool:
    """guarded/ is a real folder (lstat: a link to a folder is not ours)."""
    try:
        import stat

        return stat.S_ISDIR(os.lstat(os.path.join(state_dir, FOLDER)).st_mode)
    except OSError:
        return False


def path_of(state_dir: str, name: str) -> str:
    """Where `name` is written: in guarded/ for a guarded name, else `.comm-node/<name>`."""
    if name in FILES:
        return os.path.join(state_dir, FOLDER, name)
    return os.path.join(state_dir, name)


def source(state_dir: str, name: str) -> str:
    """Where `name` is read: guarded/'s file, or while there is none (or guarded/ is not a
    real folder) where an older comm-node kept it (which may not exist either)."""
    if name in FILES:
        found = os.path.join(state_dir, FOLDER, name)
        if folder_is_ours(state_dir) and os.path.lexists(found):
            return found
    return os.path.join(state_dir, name)


def budget_name(domain: str) -> str:
    """The file holding `domain`'s budget in guarded/ (a domain name is [a-z0-9-]: it never
    collides with another guarded name)."""
    return f"budget.{domain}.json"


def budget_source(state_dir: str, domain: str, legacy: str) -> str:
    """Where `domain`'s budget is read: guarded/'s file, or while there is none (or guarded/
    is not a real folder) `legacy`, where an older comm-node kept it. Two system calls on
    the hook's path: the folder's lstat and the file's."""
    found = os.path.join(state_dir, FOLDER, budget_name(domain))
    if folder_is_ours(state_dir) and os.path.lexists(found):
        return found
    return legacy


def adopt_budget(state_dir: str, domain: str, legacy: str) -> None:
    """Before a sandboxed agent starts: an older comm-node's budget file (perhaps the
    engine's pause) moves into guarded/ unless guarded/ holds one already (then the old one
    is dropped: never read again). A link at the old place is not the engine's: dropped."""
    folder = make_folder(state_dir)
    new = os.path.join(folder, budget_name(domain))
    if not os.path.islink(legacy) and not os.path.lexists(new):
        try:
            os.link(legacy, new, follow_symlinks=False)
        except OSError:
            return  # none there (or written meanwhile, or a folder): nothing to move
    drop_file(legacy)


def make_folder(state_dir: str) -> str:
    """guarded/ as a real folder: a link or a file put there is removed, never followed."""
    folder = os.path.join(state_dir, FOLDER)
    if os.path.islink(folder) or (os.path.lexists(folder) and not os.path.isdir(folder)):
        os.unlink(folder)
    ensure_dir(folder)
    return folder


def write(state_dir: str, name: str, data: bytes | str) -> None:
    """Write a store file atomically; a guarded one into guarded/, where it then moves from
    the old place (the caller read the old file if it was the one in force)."""
    if name not in FILES:
        atomic_write(os.path.join(state_dir, name), data)
        return
    atomic_write(os.path.join(make_folder(state_dir), name), data)
    drop_legacy(state_dir, name)


def settle(state_dir: str) -> None:
    """Before a sandboxed agent starts: every guarded file exists in guarded/ (`adopt`)."""
    for name in FILES:
        adopt(state_dir, name)


def adopt(state_dir: str, name: str) -> str:
    """`name`'s file in guarded/, made there if missing: moved from the old place when an
    older comm-node left it there (nothing is lost: a hard link, then the old name goes;
    a file appended to meanwhile keeps its inode; a link there is dropped), else empty.
    Never replaces a file already in guarded/ (a hard link and a create by link both fail
    on one), so it needs no lock against a concurrent write. Its path."""
    folder = make_folder(state_dir)
    new, old = os.path.join(folder, name), os.path.join(state_dir, name)
    if os.path.lexists(new):
        return new
    if os.path.islink(old):
        # not an older comm-node's file (it wrote files): an agent's link, which guarded/
        # would then read through to wherever it points
        drop_legacy(state_dir, name)
    else:
        try:
            os.link(old, new)
        except FileExistsError:
            return new  # written meanwhile: that one is newer
        except OSError:
            pass  # none there (or a folder, which never held readable data)
        else:
            drop_legacy(state_dir, name)
            return new
    # start empty; what is at the old place stays, unread from now on
    empty = FILES[name]
    if empty is not None:
        _create(new, empty)
    return new


def _create(path: str, data: str) -> None:
    """`path` with `data` unless a file is there already (written whole, then linked in)."""
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.new"
    atomic_write(tmp, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def drop_legacy(state_dir: str, name: str) -> None:
    """The old place's file, once guarded/ holds the one in force."""
    drop_file(os.path.join(state_dir, name))


def drop_file(path: str) -> None:
    """An old place's file (or link), once guarded/ holds the one in force."""
    try:
        os.unlink(path)
    except OSError:
        pass  # gone already, or a folder put there: never read once guarded/ holds the file
