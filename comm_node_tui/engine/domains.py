"""The workspace's domains and its comm-node.toml: directories that vanish and come back,
each domain's registry.json, and a config edited while the engine runs."""

from __future__ import annotations

import contextlib
import json
import os

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.fileio import atomic_write
from comm_node_tui.workspace.model import Workspace
from comm_node_tui.workspace.registry import peer_entry, registry_head


class DomainMonitor:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._missing: set[str] = set()  # domains whose directory is gone or unreadable
        # Taken now, not after start-up: an edit made while the engine starts (after its
        # "engine.started" event) must still count as a change (a race seen under load).
        self._config_stamp: tuple | None = self._stamp_config()

    def start(self) -> None:
        """At start: report domains that are missing or unwritable, write the registries."""
        ctx = self.ctx
        for dom in ctx.ws.domains.values():
            if not os.path.isdir(dom.path):
                ctx.emit(
                    Event(
                        "domain.missing",
                        f"{dom.name}: {dom.path} does not exist",
                        agent=dom.name,
                        level="error",
                    )
                )
                self._missing.add(dom.name)
                continue
            try:
                dom.paths.ensure()
            except OSError as exc:
                ctx.emit(
                    Event("domain.unwritable", f"{dom.name}: {exc}", agent=dom.name, level="error")
                )
        self.write_registries()

    def check(self) -> None:
        """A domain directory that disappears (or stops being a directory) mid-run is an
        alert; its mail waits in the senders' outboxes until it is back."""
        ctx = self.ctx
        for dom in ctx.ws.domains.values():
            ok = os.path.isdir(dom.path) and os.access(dom.path, os.R_OK | os.X_OK)
            if ok and dom.name in self._missing:
                self._missing.discard(dom.name)
                ctx.emit(Event("domain.back", f"{dom.name}: {dom.path} is back", agent=dom.name))
                with contextlib.suppress(OSError):
                    dom.paths.ensure()
            elif not ok and dom.name not in self._missing:
                self._missing.add(dom.name)
                what = "is not readable" if os.path.isdir(dom.path) else "is gone"
                ctx.emit(
                    Event(
                        "domain.missing",
                        f"{dom.name}: {dom.path} {what}; its mail waits until it is back",
                        agent=dom.name,
                        level="error",
                        data={"alert": True},
                    )
                )

    def write_registries(self) -> None:
        """registry.json in every domain: its peers, their roles and what they export."""
        ws = self.ctx.ws
        texts = registry_texts(ws)
        for dom in ws.domains.values():
            text = texts[dom.name]
            with contextlib.suppress(OSError), open(dom.paths.registry, encoding="utf-8") as fh:
                if fh.read() == text:
                    continue  # unchanged: leave the file (and its mtime) alone
            with contextlib.suppress(OSError):
                atomic_write(dom.paths.registry, text)

    def _stamp_config(self) -> tuple | None:
        try:
            st = os.stat(self.ctx.ws.paths.config)
            return (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            return None

    def reload_config(self) -> None:
        """Pick up an edited comm-node.toml; a broken one is reported and the old one kept.
        The new Workspace replaces the old one everywhere it is held."""
        from comm_node_tui.errors import CommNodeError
        from comm_node_tui.workspace.discovery import load_workspace

        ctx = self.ctx
        stamp = self._stamp_config()
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        try:
            ws = load_workspace(ctx.ws.root)
        except CommNodeError as exc:
            ctx.emit(
                Event("config.invalid", f"{exc}; keeping the previous configuration", level="error")
            )
            return
        ctx.ws = ws
        ctx.router.ws = ws
        ctx.budgets.ws = ws
        ctx.coord.ws = ws
        for dom in ws.domains.values():
            if os.path.isdir(dom.path):
                with contextlib.suppress(OSError):
                    dom.paths.ensure()
        self.write_registries()
        ctx.budgets.flush(everything=True)
        ctx.emit(
            Event(
                "config.reloaded",
                f"{len(ws.domains)} domains",
                data={"domains": sorted(ws.domains)},
            )
        )


def registry_texts(ws: Workspace) -> dict[str, str]:
    """Each domain's registry.json text: `json.dumps(registry_for(ws, dom), indent=1) + "\\n"`
    to the byte (tests/test_registry_texts.py), made in time linear in what is written.

    Every domain's file lists all its peers, so N domains write N files of N entries. Encoded
    one by one, `json` with `indent` runs its pure-Python encoder over all N*N entries (121 ms
    of CPU at 200 domains, growing with N*N; issue 22). Here each peer entry is encoded once,
    indented for its place in the list, and each file is joined from those texts (4 ms)."""
    doms = list(ws.domains.values())
    chunks = []
    for p in doms:
        peer = peer_entry(p)
        # one level down in `peers`: two more spaces on every line (JSON strings hold no raw
        # newline, so each one is a line break of the layout)
        chunks.append("  " + json.dumps(peer, indent=1).replace("\n", "\n  "))
    out = {}
    for i, dom in enumerate(doms):
        head = registry_head(ws, dom)
        others = chunks[:i] + chunks[i + 1 :]
        peers = "[\n" + ",\n".join(others) + "\n ]" if others else "[]"
        out[dom.name] = (
            json.dumps(head, indent=1).removesuffix("\n}")
            + f',\n "peers": {peers},\n "operator": "operator"\n}}\n'
        )
    return out
