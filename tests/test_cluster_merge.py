"""The merge key on another machine's domain (issue 20): its branch is in that machine's
clone, not in the repository this machine's merge queue merges into, so the room refuses it
in one line that says where to queue it, with an event; nothing is queued here."""

from __future__ import annotations

import json
import time

from comm_node_tui.cluster.view import ViewWriter
from comm_node_tui.errors import CommNodeError
from comm_node_tui.integration.queue import MergeQueue
from comm_node_tui.operator.actions import OperatorActions
from comm_node_tui.tui.app import ControlRoom
from comm_node_tui.tui.screens.dialogs import ConfirmScreen
from comm_node_tui.workspace.discovery import load_workspace
from tests.natskit import machine
from tests.waiting import until

# No server: the refusal is decided from what this machine's engine last heard (its copy,
# cluster/view.py), so nothing here waits on NATS (port 9: nothing listens).
DEAD = "nats://127.0.0.1:9"


def m1_hearing_m2(tmp_path):
    root = machine(tmp_path / "m1", DEAD, "m1", ["a"])
    ws = load_workspace(str(root))
    m2 = {"node": "m2", "ts": time.time(), "domains": ["b"], "agents": {"b": None}}
    ViewWriter(ws.paths.state, "m1").write({"m2": {**m2, "panes": {}, "health": {}}}, time.time())
    return root, ws


def test_the_merge_of_another_machines_domain_says_where_to_queue_it(tmp_path):
    _root, ws = m1_hearing_m2(tmp_path)
    ops = OperatorActions(ws, lambda: _coord(ws))
    try:
        ops.queue_merge("b")
    except CommNodeError as exc:
        said = str(exc)
    else:
        raise AssertionError("queued another machine's branch here")
    assert said == "b runs on machine m2: queue its merge there (`comm-node merge b` on m2)"
    assert MergeQueue(_coord(ws)).entries() == []
    # not heard from yet: the same refusal, without a name it cannot know
    (tmp_path / "m1" / ".comm-node" / "guarded" / "cluster-agents.json").unlink()
    try:
        ops.queue_merge("b")
    except CommNodeError as exc:
        assert "b runs on another machine: queue its merge there" in str(exc)
        assert "on that machine" in str(exc)
    else:
        raise AssertionError("queued another machine's branch here")


def _coord(ws):
    from comm_node_tui.coordination.coordinator import Coordinator

    return Coordinator(ws)


async def test_the_rooms_merge_key_on_m2s_agent_is_one_line_and_an_event(tmp_path):
    root, ws = m1_hearing_m2(tmp_path)
    app = ControlRoom(ws, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.query_one("#agents").row_count == 3)
        app.select_agent("b")
        app.merge_agent("b")  # what the review screen's merge key calls
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        log = root / ".comm-node" / "events.jsonl"

        def failed() -> list[dict]:
            if not log.exists():
                return []
            recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
            return [r for r in recs if r["type"] == "operator.failed"]

        [ev] = await until(pilot, failed)
    assert ev["msg"] == (
        "merge b: b runs on machine m2: queue its merge there (`comm-node merge b` on m2)"
    )
    assert MergeQueue(_coord(ws)).entries() == []
