"""Finding the engine that owns another machine's agent without listing the state bucket
each time (a room's preview asks for a remote pane every second), and the operator service
shared by the owner's request threads (issue 20)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from comm_node_tui.cluster.ops import OWNERS_TTL_S, RemoteOps
from comm_node_tui.cluster.view import VIEW_FILE
from comm_node_tui.operator.actions import OperatorActions
from comm_node_tui.workspace.discovery import load_workspace
from tests.natskit import machine, running_server
from tests.waiting import wait_for

STEP_S = 60.0


@pytest.fixture
def nats_server(tmp_path):
    yield from running_server(tmp_path / "nats")


def view(root, nodes: dict[str, tuple[float, list[str]]]) -> None:
    """This machine's engine's copy of what the others published (cluster/view.py)."""
    doc = {
        "node": "m3",
        "written": time.time(),
        "nodes": {
            n: {"node": n, "ts": ts, "domains": doms, "agents": {}, "panes": {}, "health": {}}
            for n, (ts, doms) in nodes.items()
        },
    }
    (root / ".comm-node" / "guarded").mkdir(parents=True, exist_ok=True)
    (root / ".comm-node" / "guarded" / VIEW_FILE).write_text(json.dumps(doc))


def test_the_owner_comes_from_this_machines_copy_else_one_listing_a_while(
    tmp_path, nats_server, engine_for
):
    m2_root = machine(tmp_path / "m2", nats_server.url, "m2", ["b"])
    m2 = engine_for(m2_root)  # publishes b at its start
    # m3: a machine whose engine does not run (a CLI there, or a room before its engine)
    m3_root = machine(tmp_path / "m3", nats_server.url, "m3", ["c"])
    now = [1000.0]  # the listing's clock, frozen: a slow machine's pause does not age it
    ops = RemoteOps(load_workspace(str(m3_root)), lambda ev: None, clock=lambda: now[0])
    try:
        wait_for(lambda: m2.relay._ready, timeout=STEP_S, what="m2 set up")
        # no copy here: the bucket, listed once for the asks of a few seconds
        wait_for(lambda: _owner(ops, "b") == "m2", timeout=STEP_S, what="m2 publishes b")
        listed = ops.listings
        assert [ops.owner("b") for _ in range(5)] == ["m2"] * 5
        assert ops.listings == listed
        now[0] += OWNERS_TTL_S  # the listing's time is up: the next ask lists again
        assert ops.owner("b") == "m2" and ops.listings == listed + 1

        # this machine's engine's copy, fresh: no listing at all (also for a new RemoteOps),
        # and the freshest node wins when two publish b (a domain moved)
        view(m3_root, {"m9": (time.time(), ["b"]), "m8": (time.time() - 5, ["b"])})
        fresh = RemoteOps(load_workspace(str(m3_root)), lambda ev: None)
        try:
            assert fresh.owner("b") == "m9" and fresh.listings == 0
        finally:
            fresh.close()
        # a copy older than a node's silence allows (this machine's engine stopped): the
        # bucket decides
        view(m3_root, {"m9": (time.time() - 60, ["b"])})
        stale = RemoteOps(load_workspace(str(m3_root)), lambda ev: None)
        try:
            assert stale.owner("b") == "m2" and stale.listings == 1
        finally:
            stale.close()
    finally:
        ops.close()


def _owner(ops: RemoteOps, agent: str) -> str | None:
    try:
        return ops.owner(agent)
    except Exception:
        return None  # not published yet: asked again once the listing is OWNERS_TTL_S old


def test_threads_asking_for_the_panes_at_once_share_one_client(tmp_path):
    from tests.conftest import write_workspace

    ws = load_workspace(str(write_workspace(tmp_path / "ws", domains=("a",))))
    ops = OperatorActions(ws, lambda: None)  # type: ignore[arg-type, return-value]
    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(ops.panes())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 8 and len({id(p) for p in got}) == 1
