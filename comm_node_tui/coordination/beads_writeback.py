"""Claims, closes and reopens of Beads tasks written back to Beads through its own `bd`.

The overlay (.comm-node/tasks.json) stays the record comm-node decides by: it is written
first, under the coordination lock, and `bd` only follows. So a `bd` that is missing, fails or
hangs costs one warning line, never a claim or a close. Beads' own store is left to `bd`
(its JSONL export is regenerated from its database; writing the export would be undone).

Flags as documented by Beads (early 2026): `bd update ID --status in_progress --assignee
NAME`, `bd close ID --reason TEXT`, `bd reopen ID --reason TEXT`.

Written back: the agent CLI's claim, close and reopen, and the operator's assign from the room
(the same overlay change as a claim: in progress, that assignee). Not written back: the
engine's release of a lost or killed agent's claims (back to open, no assignee), which no CLI
command does, so there is no write-back of it to follow; Beads keeps showing the old claim
until the task is claimed again.
"""

from __future__ import annotations

import shutil
import subprocess

TYPE_CHECKING = False
if TYPE_CHECKING:
    from comm_node_tui.coordination.coordinator import Coordinator

BD_TIMEOUT_S = 30.0
UNAVAILABLE = (
    "bd is not installed, so this is recorded in comm-node's overlay "
    "(.comm-node/tasks.json), not in .beads/"
)


def bd_command(action: str, tid: str, *, assignee: str = "", reason: str = "") -> list[str]:
    """The `bd` argv that mirrors one comm-node task action."""
    if action == "claim":
        return ["bd", "update", tid, "--status", "in_progress", "--assignee", assignee]
    if action == "close":
        return ["bd", "close", tid, "--reason", reason or "done (comm-node)"]
    if action == "reopen":
        return ["bd", "reopen", tid, "--reason", reason or "reopened (comm-node)"]
    raise ValueError(f"no bd write-back for {action}")


def write_back(
    root: str, action: str, tid: str, *, assignee: str = "", reason: str = ""
) -> str | None:
    """Run `bd` in the workspace root for one action; None when it worked, else the one line
    to show (bd missing, failing or too slow)."""
    argv = bd_command(action, tid, assignee=assignee, reason=reason)
    exe = shutil.which("bd")
    if exe is None:
        return UNAVAILABLE
    try:
        res = subprocess.run(
            [exe, *argv[1:]],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=BD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv[:3])}` took over {BD_TIMEOUT_S:g} s; .beads/ not updated"
    except OSError as exc:
        return f"`bd` could not run ({exc.strerror}); .beads/ not updated"
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).decode("utf-8", "replace").strip().splitlines()
        why = tail[-1][:200] if tail else f"exit {res.returncode}"
        return f"`{' '.join(argv[:3])}` failed ({why}); .beads/ not updated"
    return None


def write_back_task(
    coord: Coordinator, action: str, tid: str, *, assignee: str = "", reason: str = ""
) -> str | None:
    """With a Beads source, hand one action (already in the overlay) to `bd`: None when it
    worked or the source is not Beads, else the one line to show (UNAVAILABLE when bd is
    missing). A failing or hanging bd is also a `tasks.writeback_failed` event; nothing is
    undone."""
    if coord.task_source()[0] != "beads":
        return None
    from comm_node_tui.protocol.events import Event

    problem = write_back(coord.ws.root, action, tid, assignee=assignee, reason=reason)
    if problem is not None and problem != UNAVAILABLE:
        coord.emit(
            Event(
                "tasks.writeback_failed",
                f"{tid}: {problem}",
                agent=assignee or None,
                level="warn",
                data={"task": tid, "action": action},
            )
        )
    return problem
