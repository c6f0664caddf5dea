"""Artifact announcements: every importer of a newly published artifact gets a message
(type artifact_ready). What was announced is kept in announced.json, so a restart does not
announce again."""

from __future__ import annotations

import contextlib
import os

from comm_node_tui.coordination.coordinator import MANIFEST
from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.messages import now_iso, render


class ArtifactAnnouncer:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._announced: dict[str, str] = {}  # "domain:name" -> sha256 announced
        # domain -> its manifest's stamp when last read in full (None: there was none). A
        # manifest is rewritten whole (atomic_write: a new inode), so an equal stamp is the
        # same file: the timer's pass reads 200 manifests no more every second, only stats.
        self._stamps: dict[str, tuple | None] = {}

    def load(self) -> None:
        """What earlier runs announced (at start)."""
        try:
            data = self.ctx.coord.store.read("announced.json", {})
        except ValueError:
            data = {}
        self._announced = data if isinstance(data, dict) else {}

    def tick(self) -> None:
        ctx = self.ctx
        changed = False
        for dom in ctx.ws.domains.values():
            stamp = manifest_stamp(dom.paths.artifacts)
            if dom.name in self._stamps and self._stamps[dom.name] == stamp:
                continue
            for name, entry in ctx.coord.manifest(dom).items():
                key = f"{dom.name}:{name}"
                sha = str(entry.get("sha256", ""))
                if self._announced.get(key) == sha:
                    continue
                self._announced[key] = sha
                changed = True
                importers = [
                    d
                    for d in ctx.ws.domains.values()
                    if any(x in ("*", name) for x in d.imports.get(dom.name, []))
                ]
                # The id is the content: a restart or a re-publish of the same bytes does not
                # announce twice.
                ident = f"a-{dom.name}-{sha[:16]}"
                body = (
                    f"{dom.name} published {name} ({entry.get('size', '?')} bytes, "
                    f"sha256 {sha[:12]}).\nRead it at: "
                    f"{os.path.join(dom.paths.artifacts, name)}\n"
                )
                for imp in importers:
                    meta = {
                        "id": ident,
                        "from": "comm-node",
                        "to": [imp.name],
                        "type": "artifact_ready",
                        "priority": "normal",
                        "created": now_iso(ctx.clock.time()),
                        "artifact": name,
                        "publisher": dom.name,
                        "sha256": sha,
                    }
                    ctx.router.deliver_copy(
                        imp.paths.inbox, imp.paths.inbox_read, ident, render(meta, body)
                    )
                    ctx.router.delivered_to.add(imp.name)  # wakes it (engine/nudges.py)
                to = [d.name for d in importers]
                ctx.emit(
                    Event(
                        "artifact.announced",
                        f"{key} to {', '.join(to) or 'no one'}",
                        agent=dom.name,
                        data={"name": name, "sha256": sha, "to": to},
                    )
                )
            self._stamps[dom.name] = stamp  # after its announcements: a failure reads again
        if changed:
            with contextlib.suppress(OSError):
                self.ctx.coord.store.write("announced.json", self._announced)


def manifest_stamp(folder: str) -> tuple | None:
    """What tells a rewritten manifest apart (inode, size, times); None when there is none."""
    try:
        st = os.stat(os.path.join(folder, MANIFEST))
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
