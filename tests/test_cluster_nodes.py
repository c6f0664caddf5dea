"""Three engines on a three-node NATS cluster (streams and buckets replicated 3 times): one
node killed mid-burst; and one engine cut off from the network, then let back in. Mail
arrives exactly once, and the cut-off machine's mail waits and then catches up."""

from __future__ import annotations

import pytest

from tests.natskit import (
    NODES,
    Engines,
    NatsCluster,
    Proxy,
    all_arrived,
    assert_exactly_once,
    events,
    machine,
    running_server,
    send_burst,
)
from tests.waiting import wait_for


def events_all(root):
    import json

    return [json.loads(x) for x in (root / ".comm-node" / "events.jsonl").read_text().splitlines()]


@pytest.fixture
def engines():
    made: list[Engines] = []

    def make(roots):
        made.append(Engines(roots))
        return made[-1]

    yield make
    for e in made:
        e.stop_all()


def test_a_cluster_node_killed_mid_burst_loses_and_doubles_nothing(tmp_path, engines):
    cluster = NatsCluster(tmp_path / "nats").start()
    try:
        roots = {
            node: machine(tmp_path / node, cluster.urls, node, [dom], more="replicas = 3\n")
            for node, dom in NODES
        }
        eng = engines(roots)
        for node, _ in NODES:
            eng.start(node)
        first = send_burst(roots, 15, "before")
        wait_for(lambda: all_arrived(roots, first), what="the first burst, on three nodes")
        second = send_burst(roots, 15, "during")
        cluster.nodes[0].stop()  # n1 dies with the burst in flight; n2 and n3 keep quorum
        third = send_burst(roots, 15, "after")
        expected = {d: first[d] | second[d] | third[d] for d in first}
        wait_for(lambda: all_arrived(roots, expected), what="every message, with n1 dead")
        assert_exactly_once(roots, expected)
        errs = eng.stop_all()
        assert not any("Traceback" in e for e in errs.values()), errs
    finally:
        cluster.stop()


def test_an_engine_cut_off_catches_up_exactly_once_when_it_reconnects(tmp_path, engines):
    server_gen = running_server(tmp_path / "nats")
    server = next(server_gen)
    proxy = Proxy(server.port).heal()
    try:
        urls = {"m1": server.url, "m2": server.url, "m3": proxy.url}  # m3 behind the proxy
        roots = {node: machine(tmp_path / node, urls[node], node, [dom]) for node, dom in NODES}
        eng = engines(roots)
        for node, _ in NODES:
            eng.start(node)
        first = send_burst(roots, 10, "before")
        wait_for(lambda: all_arrived(roots, first), what="the first burst")
        proxy.cut()
        wait_for(lambda: events(roots["m3"], "cluster.down"), what="m3 knows it is cut off")
        during = send_burst(roots, 10, "cut off")
        # c's mail waits in m3's outbox, mail for c in the stream
        wait_for(
            lambda: events(roots["m3"], "message.deferred"),
            what="m3's mail deferred",
            show=lambda: [
                (e["type"], e["msg"])
                for e in events_all(roots["m3"])
                if e["type"].startswith(("cluster", "engine"))
            ],
        )
        assert not all_arrived(roots, {"c": during["c"]})  # m3 cannot fetch while cut off
        ups = len(events(roots["m3"], "cluster.up"))
        proxy.heal()
        wait_for(lambda: len(events(roots["m3"], "cluster.up")) > ups, what="m3 reconnected")
        expected = {d: first[d] | during[d] for d in first}
        wait_for(lambda: all_arrived(roots, expected), what="everything after the heal")
        assert_exactly_once(roots, expected)
        assert len(events(roots["m3"], "cluster.down")) == 1  # one event for the outage
        errs = eng.stop_all()
        assert not any("Traceback" in e for e in errs.values()), errs
    finally:
        proxy.cut()
        server_gen.close()
