"""Soak test (by hand, not in CI): 20 fake agents hammer one engine for 10 minutes with
messages, lock requests and status updates. Reports messages sent, routed and lost (goal:
0), the engine's resident memory over time (goal: flat), and the p95 routing latency per
minute (written -> delivered, from the delivered file's mtime).

Usage: python bench/soak.py [SECONDS=600] [AGENTS=20] [MSGS_PER_AGENT_PER_S=3] [--json OUT]
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, make_workspace, pct, rss_kb


def agent(root: str, name: str, seconds: float, rate: float, out: str, seed: int) -> None:
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.errors import CommNodeError
    from comm_node_tui.protocol.mailbox import list_inbox, mark_read, write_outbox
    from comm_node_tui.protocol.messages import new_message_id, now_iso
    from comm_node_tui.protocol.status import update_status
    from comm_node_tui.workspace.discovery import load_workspace

    ws = load_workspace(root)
    me = ws.domains[name]
    peers = [d for d in ws.domains if d != name]
    coord = Coordinator(ws)
    rng = random.Random(seed)
    sent: list[str] = []
    locks = {"granted": 0, "refused": 0, "expired_before_release": 0}
    held: set[str] = set()
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        i += 1
        ident = new_message_id()
        to = [rng.choice(peers)] if i % 20 else peers[:5]  # now and then a 5-way message
        write_outbox(
            me.paths,
            {"id": ident, "from": name, "to": to, "type": "info", "created": now_iso()},
            f"sent={time.time():.6f}\n" + "x" * rng.randrange(50, 2000),
        )
        sent.append(ident)
        update_status(me.paths.status, name, state="busy", progress=f"message {i}")
        if i % 3 == 0:  # lock churn: take and give back patterns in the agent's directory
            pattern = f"shared{rng.randrange(10)}/**"
            if pattern in held:
                held.discard(pattern)
                try:
                    coord.release(name, [pattern])
                except CommNodeError:  # its 30 s ran out first: the engine expired it
                    locks["expired_before_release"] += 1
            else:
                try:
                    coord.acquire(me, [pattern], ttl=30)
                    held.add(pattern)
                    locks["granted"] += 1
                except CommNodeError:
                    locks["refused"] += 1
        if i % 25 == 0:  # read the mail now and then, as agents do
            for m in list_inbox(me.paths, unread_only=True)[:50]:
                mark_read(me.paths, m["path"])
        time.sleep(max(0.0, 1.0 / rate - 0.002))
    coord.release(name, None)
    with open(out, "w") as fh:
        json.dump({"sent": sent, "locks": locks}, fh)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = float(args[0]) if args else 600.0
    n_agents = int(args[1]) if len(args) > 1 else 20
    rate = float(args[2]) if len(args) > 2 else 3.0
    json_out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    with tempfile.TemporaryDirectory(prefix="cn-soak-") as tmp:
        root = Path(tmp) / "ws"
        names = make_workspace(root, n_agents, budget=0)
        (root / "comm-node.toml").write_text(
            (root / "comm-node.toml")
            .read_text()
            .replace("[agents]", "[agents]\nheartbeat_stale_s = 600\nheartbeat_lost_s = 1200")
        )
        for n in names:
            (root / n / ".comm-node" / "outbox").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
        env["COMM_NODE_TMUX_SOCKET"] = f"cn-soak-{os.getpid()}"  # never the user's tmux
        engine = subprocess.Popen(
            [sys.executable, "-m", "comm_node_tui", "serve", "--workspace", str(root), "-q"],
            env=env,
            stderr=subprocess.PIPE,
        )
        time.sleep(2.0)
        t0 = time.time()
        procs = [
            mp.Process(
                target=agent,
                args=(str(root), n, seconds, rate, f"{tmp}/{n}.json", i),
            )
            for i, n in enumerate(names)
        ]
        for p in procs:
            p.start()
        memory = [(0.0, rss_kb(engine.pid))]
        while any(p.is_alive() for p in procs):
            time.sleep(5)
            memory.append((time.time() - t0, rss_kb(engine.pid)))
        for p in procs:
            p.join()
        # drain: every outbox empty (or give up after 120 s)
        deadline = time.time() + 120
        while time.time() < deadline and any(
            any(f.endswith(".md") for f in os.listdir(root / n / ".comm-node" / "outbox"))
            for n in names
        ):
            time.sleep(1)
        memory.append((time.time() - t0, rss_kb(engine.pid)))
        engine.send_signal(signal.SIGTERM)
        _out, err = engine.communicate(timeout=60)
        sent: dict[str, int] = {}
        locks = {"granted": 0, "refused": 0, "expired_before_release": 0}
        for n in names:
            data = json.loads(Path(f"{tmp}/{n}.json").read_text())
            for ident in data["sent"]:
                sent[ident] = 1
            for k in locks:
                locks[k] += data["locks"][k]
        delivered: dict[str, int] = {}
        per_minute: dict[int, list[float]] = {}
        for n in names:
            box = root / n / ".comm-node" / "inbox"
            for f in [*box.glob("*.md"), *(box / "read").glob("*.md")]:
                ident = f.stem
                delivered[ident] = delivered.get(ident, 0) + 1
                text = f.read_text()
                at = text.find("sent=")
                if at >= 0:
                    sent_at = float(text[at + 5 : text.index("\n", at)])
                    minute = int((sent_at - t0) // 60)
                    # a rename into read/ keeps the mtime: the delivery time either way
                    per_minute.setdefault(minute, []).append(f.stat().st_mtime - sent_at)
        lost = [i for i in sent if i not in delivered]
        report = {
            "machine": machine(),
            "seconds": seconds,
            "agents": n_agents,
            "messages_sent": len(sent),
            "copies_delivered": sum(delivered.values()),
            "messages_lost": len(lost),
            "locks": locks,
            "engine_rss_mb_start": round(memory[1][1] / 1024, 1) if len(memory) > 1 else None,
            "engine_rss_mb_end": round(memory[-1][1] / 1024, 1),
            "engine_rss_mb_max": round(max(m for _t, m in memory) / 1024, 1),
            "engine_rss_mb_by_minute": {
                int(t // 60): round(m / 1024, 1) for t, m in memory if t > 0
            },
            "p95_latency_ms_by_minute": {
                m: round(pct(vals, 95) * 1000, 1) for m, vals in sorted(per_minute.items())
            },
            "engine_errors": [ln for ln in err.decode().splitlines() if "Traceback" in ln][:5],
        }
    print(json.dumps(report, indent=1))
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
