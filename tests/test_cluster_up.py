"""`comm-node cluster up` starts a real JetStream server that engines use; `cluster status`
shows every machine's agents from any machine."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.conftest import cli_env, run_cli, start_serve
from tests.natskit import events, free_port, machine
from tests.waiting import wait_for


def test_cluster_up_serves_jetstream_for_two_engines_and_status_shows_both(tmp_path):
    port = free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "comm_node_tui", "cluster", "up", "--port", str(port),
         "--dir", str(tmp_path / "nats")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    engines: list[subprocess.Popen] = []
    try:
        first = up.stdout.readline()  # printed once the server accepts connections
        assert f"nats://127.0.0.1:{port}" in first, (first, up.stderr.read())
        url = f"nats://127.0.0.1:{port}"
        m1 = machine(tmp_path / "m1", url, "m1", ["a"], domains=("a", "b"))
        m2 = machine(tmp_path / "m2", url, "m2", ["b"], domains=("a", "b"))
        told = run_cli("status", "set", "busy", "--task", "T7", cwd=m1 / "a")
        assert told.returncode == 0, told.stderr
        engines = [start_serve(m1), start_serve(m2)]
        for root in (m1, m2):
            wait_for(lambda r=root: events(r, "cluster.up"), what="engine connected")

        def both_listed() -> str:
            res = run_cli("cluster", "status", cwd=m2)
            return res.stdout if "m1:" in res.stdout and "m2:" in res.stdout else ""

        shown = wait_for(both_listed, what="both machines in cluster status")
        assert "a" in shown and "busy" in shown, shown  # m1's agent, seen from m2
        sent = run_cli("send", "--to", "b", "across", cwd=m1 / "a")
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: events(m2, "message.arrived"), what="the message on the other machine")
    finally:
        for e in engines:
            e.terminate()
            e.communicate(timeout=60)
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=60)
    assert up.returncode == 0
    gone = run_cli("cluster", "status", cwd=m1)  # the server is gone: one line, no traceback
    assert gone.returncode == 1 and gone.stderr.count("\n") == 1, gone.stderr
