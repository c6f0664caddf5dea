"""The no-progress half of spiral detection: an agent busy for [agents] spiral_minutes with no
file written in its folder and no progress raises `agent.spiral` (and is paused when
spiral_policy = "pause"); coordination/spiral.py has the rest and the repeat half.

Unlike "stuck" (engine/agent_state.py: no hook and a still screen), a spiralling agent looks
alive: hooks fire and its screen moves while it reads, retries and explains. What it lacks
is output, so progress here is what it leaves behind: an edit through its tools (the hook
notes the time), any file in its folder written since (a Bash `sed -i`, a generator; walked
only when an alert is due, and bounded), or a new task or progress line in its status. One
alert per stretch: the next needs new progress first.
"""

from __future__ import annotations

import os

from comm_node_tui.coordination.spiral import raise_spiral, read_spiral, spiral_path
from comm_node_tui.engine.context import EngineContext

MAX_WALK_ENTRIES = 20_000  # a folder bigger than this is judged by what was walked
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "target", "dist", "build"})


def newest_write(root: str, after: float) -> float | None:
    """The mtime of a file under `root` written after `after`, or None (hidden folders such
    as .git and .comm-node, and build output, are not the agent's work)."""
    seen = 0
    stack = [root]
    while stack and seen < MAX_WALK_ENTRIES:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    seen += 1
                    if entry.name.startswith(".") or entry.name in SKIP_DIRS:
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.stat(follow_symlinks=False).st_mtime > after:
                            return entry.stat(follow_symlinks=False).st_mtime
                    except OSError:
                        continue
        except OSError:
            continue
    return None


class SpiralWatch:
    """Called by the watchdog for each agent on every check."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._busy_since: dict[str, float] = {}
        self._progress: dict[str, tuple[object, float]] = {}  # (task, progress), since
        self._wrote: dict[str, float] = {}  # the newest write a walk found
        self._raised: dict[str, float] = {}  # the stretch (its start) already raised

    def check(self, name: str, status: dict, shown: str, now: float) -> None:
        minutes = self.ctx.ws.settings.agents.spiral_minutes
        if minutes <= 0 or shown != "busy":
            self._busy_since.pop(name, None)
            return
        busy_since = self._busy_since.setdefault(name, now)
        marker = (status.get("task"), status.get("progress"))
        prev = self._progress.get(name)
        if prev is None or prev[0] != marker:
            self._progress[name] = (marker, now)
        dom = self.ctx.ws.domains[name]
        since = max(busy_since, self._progress[name][1], self._wrote.get(name, 0.0))
        window = minutes * 60
        if now - since < window:
            # The hook's last edit can only make the stretch shorter: no need to read it
            # (a file per busy agent every second was the largest part of the idle check).
            return
        last_edit = read_spiral(spiral_path(dom.paths.dir)).get("last_edit")
        since = max(since, last_edit if isinstance(last_edit, (int, float)) else 0.0)
        if now - since < window or self._raised.get(name) == since:
            return
        wrote = newest_write(dom.path, now - window)
        if wrote is not None:
            self._wrote[name] = wrote  # progress: no walk again until a window after it
            return
        self._raised[name] = since
        raise_spiral(
            self.ctx.coord,
            name,
            f"busy for {int((now - busy_since) // 60)} min with no file written in its "
            f"folder and no progress for {int((now - since) // 60)} min",
            {"kind": "no_progress", "minutes": int((now - since) // 60)},
        )
