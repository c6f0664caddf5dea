"""What the control room reads besides the engine's world: a routed message's full text, and
each domain's git branch. Read-only IO, run in the room's workers."""

from __future__ import annotations

import os
from collections.abc import Iterable

from comm_node_tui.workspace.model import Workspace


def find_message_text(ws: Workspace, ident: str) -> str | None:
    """A routed message's text from the archive or an inbox (read-only)."""
    from comm_node_tui.protocol.fileio import read_bounded
    from comm_node_tui.protocol.messages import is_valid_id

    if not is_valid_id(ident):
        return None
    places = [
        os.path.join(ws.paths.archive, "routed", f"{ident}.md"),
        os.path.join(ws.paths.archive, "bounced", f"{ident}.md"),
    ]
    for d in ws.domains.values():
        places += [
            os.path.join(d.paths.inbox, f"{ident}.md"),
            os.path.join(d.paths.inbox_read, f"{ident}.md"),
        ]
    for p in places:
        try:
            return read_bounded(p, 1024 * 1024).decode("utf-8", "replace")
        except Exception:  # missing, unreadable, not a regular file: try the next place
            continue
    return None


def git_summary(ws: Workspace, names: Iterable[str] | None = None) -> dict[str, str]:
    """branch, dirty mark and ahead/behind per domain (gitpython; blank when not a repo);
    of the domains named, or of every domain."""
    try:
        import git
    except ImportError:
        return {}
    out = {}
    wanted = ws.domains if names is None else {n: ws.domains[n] for n in names if n in ws.domains}
    for name, dom in wanted.items():
        try:
            repo = git.Repo(dom.path, search_parent_directories=True)
            branch = repo.active_branch.name if not repo.head.is_detached else "detached"
            dirty = "*" if repo.is_dirty(untracked_files=True) else ""
            text = f"{branch}{dirty}"
            tracking = None if repo.head.is_detached else repo.active_branch.tracking_branch()
            if tracking is not None:
                ahead = sum(1 for _ in repo.iter_commits(f"{tracking}..HEAD"))
                behind = sum(1 for _ in repo.iter_commits(f"HEAD..{tracking}"))
                text += f" ↑{ahead} ↓{behind}"
            out[name] = text
        except Exception:
            out[name] = ""
    return out
