"""Engines on three "machines" (three workspaces, one engine each) sharing one real NATS
JetStream server on 127.0.0.1: mail exactly once across an engine killed mid-burst and a
server restart; locks, claims and budget grants decided once with 9 processes racing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, queue, run_cli
from tests.natskit import (
    NODES,
    Engines,
    all_arrived,
    assert_exactly_once,
    events,
    machine,
    running_server,
    send_burst,
    three_machines,
)
from tests.waiting import wait_for


@pytest.fixture
def nats_server(tmp_path):
    yield from running_server(tmp_path / "nats")


@pytest.fixture
def engines():
    made: list[Engines] = []

    def make(roots: dict[str, Path]) -> Engines:
        e = Engines(roots)
        made.append(e)
        return e

    yield make
    for e in made:
        e.stop_all()


def test_mail_between_three_engines_is_exactly_once_across_an_engine_killed_mid_burst(
    tmp_path, nats_server, engines
):
    roots = three_machines(tmp_path, nats_server.url)
    eng = engines(roots)
    for node, _ in NODES:
        eng.start(node)
    first = send_burst(roots, 20, "before")
    # m2 dies with mail of its own half routed and mail for it half consumed
    wait_for(lambda: len(events(roots["m2"], "message.routed")) >= 5, what="m2 routing")
    eng.kill("m2")
    second = send_burst(roots, 20, "while m2 is down")
    eng.start("m2")
    expected = {d: first[d] | second[d] for d in first}
    wait_for(lambda: all_arrived(roots, expected), what="every message in its inbox")
    assert_exactly_once(roots, expected)
    for node, dom in NODES:  # nothing left behind in an outbox
        outbox = load_workspace(str(roots[node])).domains[dom].paths.outbox
        assert [n for n in Path(outbox).iterdir() if n.suffix == ".md"] == []
    errs = eng.stop_all()
    assert not any("Traceback" in e for e in errs.values()), errs


def test_a_dead_server_holds_remote_mail_and_the_engines_catch_up_when_it_returns(
    tmp_path, nats_server, engines
):
    roots = three_machines(tmp_path, nats_server.url)
    eng = engines(roots)
    for node, _ in NODES:
        eng.start(node)
    nats_server.stop()
    wait_for(lambda: len(events(roots["m1"], "cluster.down")) == 1, what="m1 saw the server go")
    expected = send_burst(roots, 5, "server down")
    wait_for(lambda: events(roots["m1"], "message.deferred"), what="m1's mail waits in the outbox")
    # the outage is one event, not one per retry
    assert len(events(roots["m1"], "cluster.down")) == 1
    # local work goes on: mail to this machine's operator is routed at once
    ws1 = load_workspace(str(roots["m1"]))
    note = queue(ws1.domains["a"], "operator", "still here")
    wait_for(lambda: (Path(ws1.paths.operator.inbox) / f"{note}.md").exists(), what="local mail")
    # a shared decision cannot be made without the server: refused in one line
    res = run_cli("lock", "acquire", "x.py", cwd=roots["m1"] / "a")
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("\n") == 1 and "NATS" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    # views still work: the lock list and the task view read this machine's mirror
    listed = run_cli("lock", "list", cwd=roots["m1"] / "a")
    assert listed.returncode == 0, listed.stderr
    nats_server.start()
    wait_for(lambda: all_arrived(roots, expected), what="the held mail delivered")
    assert_exactly_once(roots, expected)
    # the coordination mirror came back too: a lock taken on m2 shows in m1's locks.json,
    # which m1's room and edit guard read
    took = run_cli("lock", "acquire", "mirrored.py", cwd=roots["m2"] / "b")
    assert took.returncode == 0, took.stderr
    mirror = roots["m1"] / ".comm-node" / "locks.json"
    wait_for(lambda: mirror.exists() and "mirrored.py" in mirror.read_text(), what="mirrored")
    # and a grant made on m2 lands in m1's grants file, which lives in guarded/
    assert run_cli("budget", "grant", "b", "100", cwd=roots["m2"]).returncode == 0
    grants = roots["m1"] / ".comm-node" / "guarded" / "budget-grants.json"
    wait_for(lambda: grants.exists() and '"tokens":100' in grants.read_text(), what="mirrored")
    assert not (roots["m1"] / ".comm-node" / "budget-grants.json").exists()
    errs = eng.stop_all()
    assert not any("Traceback" in e for e in errs.values()), errs


def race(cmds: list[tuple[Path, list[str]]]) -> list[subprocess.CompletedProcess]:
    """Start every CLI call, then wait for all: they race for the same decision."""
    procs = [
        (
            cwd,
            subprocess.Popen(
                [sys.executable, "-m", "comm_node_tui", *args],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=cli_env(),
            ),
        )
        for cwd, args in cmds
    ]
    out = []
    for cwd, p in procs:
        o, e = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess([str(cwd)], p.returncode, o, e))
    return out


NESTED = """
[project]
name = "test-proj"

[agents]
budget_tokens = 40000

[budgets]
max_auto_grant_tokens = 50000
max_auto_total_ratio = 1.0

[tasks]
source = "native"

[[domains]]
name = "a"
path = "a"

[[domains]]
name = "b"
path = "a/sub"

[[domains]]
name = "c"
path = "a/sub/deeper"
"""

TASKS = """
[[tasks]]
id = "T1"
title = "the one task everybody wants"
"""


def nested_machine(root: Path, url: str, node: str, local: str) -> Path:
    """Domains nested in one another, so a, b and c can all lock a/sub/deeper/x.py."""
    (root / "a" / "sub" / "deeper").mkdir(parents=True)
    (root / "tasks.toml").write_text(TASKS)
    cluster = f'\n[cluster]\nnats = "{url}"\nnode = "{node}"\nlocal = ["{local}"]\n'
    (root / "comm-node.toml").write_text(NESTED + cluster)
    return root


def test_nine_processes_on_three_machines_never_get_one_lock_claim_or_grant_twice(
    tmp_path, nats_server
):
    roots = {n: nested_machine(tmp_path / n, nats_server.url, n, d) for n, d in NODES}
    folder = {"a": Path("a"), "b": Path("a/sub"), "c": Path("a/sub/deeper")}
    target = {"a": "sub/deeper/x.py", "b": "deeper/x.py", "c": "x.py"}  # one file
    who = [(roots[node], dom) for node, _ in NODES for dom in ("a", "b", "c")]

    def outcome(results: list[subprocess.CompletedProcess]) -> list[tuple[str, int, str]]:
        return [(d, res.returncode, res.stderr) for (_, d), res in zip(who, results, strict=True)]

    def shown(results: list[tuple[str, int, str]]) -> str:
        # pytest cuts a long repr: each call's whole answer, one per line
        return "\n".join(f"{d} exit {rc}: {err.strip()}" for d, rc, err in results)

    # every domain may re-take its own lock or claim: one winning *domain* in the cluster
    locks = outcome(race([(r / folder[d], ["lock", "acquire", target[d]]) for r, d in who]))
    assert len({d for d, rc, _ in locks if rc == 0}) == 1, shown(locks)
    assert {rc for _, rc, _ in locks} <= {0, 3}, shown(locks)

    claims = outcome(race([(r / folder[d], ["task", "claim", "T1"]) for r, d in who]))
    assert len({d for d, rc, _ in claims if rc == 0}) == 1, shown(claims)
    assert {rc for _, rc, _ in claims} <= {0, 3}, shown(claims)

    # 9 requests of 30,000 by one domain against a cap of 40,000: one grant in the cluster
    grants = race(
        [(roots[node] / "a", ["budget", "request", "30000", "--reason", "r"]) for node, _ in NODES]
        * 3
    )
    assert sorted(res.returncode for res in grants) == [0] + [3] * 8, [res.stderr for res in grants]
    # the bucket's key keeps its name (a machine with an older comm-node reads it there);
    # only the winner's local copy is written, in guarded/
    project = load_workspace(str(roots["m1"])).project
    shared = bucket_value(nats_server.url, project, "budget-grants.json")["grants"]
    assert [(g["domain"], g["tokens"]) for g in shared] == [("a", 30000)]
    local = [
        json.loads(p.read_text())["grants"]
        for root in roots.values()
        if (p := root / ".comm-node" / "guarded" / "budget-grants.json").exists()
    ]
    assert local == [shared]


def bucket_value(url: str, project: str, key: str) -> dict:
    """A key of the coordination bucket (read with a client of the test's own)."""
    import nats

    from comm_node_tui.cluster.names import Names

    async def read() -> dict:
        nc = await nats.connect(url)
        try:
            kv = await nc.jetstream().key_value(Names(project).coord_bucket)
            return json.loads((await kv.get(key)).value)
        finally:
            await nc.close()

    return asyncio.run(read())


def test_an_engine_never_judges_another_machines_agents_lost(tmp_path, nats_server, engine_for):
    """A status file visible here (a shared disk) naming a process this machine does not
    have must not make this engine release the other machine's locks and claims."""
    root = machine(tmp_path / "m1", nats_server.url, "m1", ["a"], domains=("a", "b"))
    dead = subprocess.Popen(["true"])
    dead.wait()
    eng = engine_for(root)
    for dom in ("a", "b"):
        d = eng.ws.domains[dom]
        Path(d.paths.status).parent.mkdir(parents=True, exist_ok=True)
        Path(d.paths.status).write_text(f'{{"state": "busy", "agent_pid": {dead.pid}}}')
        eng.refresh_status(dom)
    t0 = eng.ctx.clock.time()
    for later in (0, 10_000):  # gone, then gone for longer than heartbeat_lost_s
        eng.watchdog.check(now=t0 + later)
    assert eng.watchdog.health.get("a") == "lost"  # this machine's agent: judged
    assert "b" not in eng.watchdog.health  # the other machine's: left to its engine
