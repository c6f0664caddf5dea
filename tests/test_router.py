"""The router on real files: deliveries, bounces for every bad input, budgets, idempotence."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from comm_node_tui.protocol.mailbox import list_inbox
from comm_node_tui.protocol.messages import render, split


def outbox(root: Path, domain: str) -> Path:
    p = root / domain / ".comm-node" / "outbox"
    p.mkdir(parents=True, exist_ok=True)
    return p


def inbox(root: Path, domain: str) -> list[dict]:
    from comm_node_tui.protocol.paths import DomainPaths

    return list_inbox(DomainPaths(domain, str(root / domain)))


def drop(
    root: Path,
    domain: str,
    name: str,
    meta: dict | None = None,
    body: str = "hi",
    raw: bytes | None = None,
) -> Path:
    path = outbox(root, domain) / name
    path.write_bytes(raw if raw is not None else render(meta or {}, body).encode())
    os.utime(path, (1, 1))  # old enough not to be "still being written"
    return path


def bounces(root: Path, domain: str) -> list[dict]:
    return [m for m in inbox(root, domain) if m["type"] == "bounce"]


def test_delivers_a_copy_to_each_recipient_and_archives(ws_root, engine_for):
    eng = engine_for(ws_root)
    drop(
        ws_root,
        "backend",
        "m-1.md",
        {
            "id": "m-1",
            "to": ["frontend", "docs"],
            "type": "request",
            "task": "T7",
            "priority": "high",
        },
        "Please review\nthe contract.",
    )
    assert eng.scan() == 1
    for name in ("frontend", "docs"):
        [msg] = inbox(ws_root, name)
        assert msg["id"] == "m-1" and msg["from"] == "backend" and msg["task"] == "T7"
        assert msg["to"] == ["frontend", "docs"] and msg["priority"] == "high"
        assert msg["body"] == "Please review\nthe contract.\n" and msg["read"] is False
        assert msg["tokens"] == 7
    assert inbox(ws_root, "backend") == []
    assert not any(outbox(ws_root, "backend").iterdir())
    assert (ws_root / ".comm-node" / "archive" / "routed" / "m-1.md").exists()
    [ev] = [e for e in eng.recent if e.type == "message.routed"]
    assert ev.data["to"] == ["frontend", "docs"] and ev.data["cost"] == 14


def test_broadcast_reaches_every_other_domain(ws_root, engine_for):
    eng = engine_for(ws_root)
    drop(ws_root, "docs", "b.md", {"to": "*", "type": "info"}, "release notes are out")
    eng.scan()
    assert len(inbox(ws_root, "backend")) == 1 and len(inbox(ws_root, "frontend")) == 1
    assert inbox(ws_root, "docs") == []


def test_operator_is_a_recipient(ws_root, engine_for):
    eng = engine_for(ws_root)
    drop(ws_root, "docs", "q.md", {"to": ["operator"], "type": "question"}, "may I?")
    eng.scan()
    files = list((ws_root / ".comm-node" / "operator" / "inbox").glob("*.md"))
    assert len(files) == 1 and "may I?" in files[0].read_text()


def test_message_without_id_gets_a_stable_one_and_from_is_stamped(ws_root, engine_for):
    eng = engine_for(ws_root)
    drop(ws_root, "backend", "note.md", raw=b"---\nto: frontend\ntype: info\n---\nhello\n")
    eng.scan()
    [msg] = inbox(ws_root, "frontend")
    assert msg["id"].startswith("m-backend-") and msg["from"] == "backend"
    assert msg["created"]


@pytest.mark.parametrize(
    ("meta", "raw", "reason"),
    [
        ({"to": ["ghost"], "type": "info"}, None, "unknown recipient 'ghost'"),
        (
            {"to": ["frontend"], "type": "info", "from": "docs"},
            None,
            "'from: docs' does not match the outbox",
        ),
        ({"to": ["backend"], "type": "info"}, None, "cannot send a message to itself"),
        ({"type": "info"}, None, "to: required field is missing"),
        ({"to": ["frontend"], "type": "Not A Type"}, None, "type:"),
        ({"to": ["frontend"], "type": "bounce"}, None, "come only from comm-node"),
        ({"to": ["frontend"], "type": "info", "id": "../../etc"}, None, "id:"),
        ({"to": ["frontend"], "type": "info", "priority": "asap"}, None, "priority:"),
        (
            {"to": ["frontend"], "type": "info", "token_budget": 2},
            None,
            "over its own token_budget of 2",
        ),
        (None, b"no front matter at all", "bad front matter"),
        (None, b"---\nto: [frontend\n---\n", "invalid YAML"),
        (None, b"\xff\xfe\x00\x01binary", "not UTF-8"),
        (None, b"---\n---\n", "to: required field is missing"),
    ],
)
def test_bad_messages_bounce_to_sender_with_reason(ws_root, engine_for, meta, raw, reason):
    eng = engine_for(ws_root)
    body = "a body long enough to be more than two tokens"
    drop(ws_root, "backend", "x.md", meta, body, raw=raw)
    eng.scan()
    [b] = bounces(ws_root, "backend")
    assert reason in b["body"], b["body"]
    assert b["from"] == "comm-node" and b["priority"] == "high"
    assert inbox(ws_root, "frontend") == []
    assert not any(outbox(ws_root, "backend").iterdir())  # archived, not lost
    assert len(list((ws_root / ".comm-node" / "archive" / "bounced").iterdir())) == 1
    [ev] = [e for e in eng.recent if e.type == "message.bounced"]
    assert ev.level == "error" and reason in ev.msg


def test_too_large_symlink_directory_and_non_md_entries_bounce(ws_root, engine_for, tmp_path):
    eng = engine_for(ws_root)
    box = outbox(ws_root, "backend")
    big = box / "big.md"
    with open(big, "wb") as fh:  # sparse 50 MB: the router must not read it
        fh.truncate(50 * 1024 * 1024)
    secret = tmp_path / "secret.txt"
    secret.write_text("---\nto: frontend\ntype: info\n---\nsecret\n")
    (box / "link.md").symlink_to(secret)
    (box / "adir.md").mkdir()
    (box / "notes.txt").write_text("hello")
    eng.scan()
    reasons = sorted(b["body"].splitlines()[0] for b in bounces(ws_root, "backend"))
    assert len(reasons) == 4
    assert any("over the limit of 65536 bytes" in r for r in reasons)
    assert any("is a symlink; comm-node does not follow it" in r for r in reasons)
    assert any("is a directory" in r for r in reasons)
    assert any("outbox files end in .md" in r for r in reasons)
    assert inbox(ws_root, "frontend") == []  # the secret was never delivered
    assert secret.read_text().endswith("secret\n")  # nor touched
    assert list(box.iterdir()) == []


def test_half_written_file_waits_until_it_settles(ws_root, engine_for):
    eng = engine_for(ws_root)
    path = outbox(ws_root, "backend") / "m-2.md"
    path.write_text("---\nid: m-2\nto: [frontend]\n")  # fresh and incomplete
    eng.scan()
    assert bounces(ws_root, "backend") == [] and path.exists()
    path.write_text(render({"id": "m-2", "to": ["frontend"], "type": "info"}, "done"))
    eng.scan()
    assert [m["id"] for m in inbox(ws_root, "frontend")] == ["m-2"]


def test_budget_is_debited_per_recipient_and_enforced(make_ws, engine_for):
    root = make_ws(budget=30)
    eng = engine_for(root)
    drop(root, "backend", "m-a.md", {"id": "m-a", "to": "*", "type": "info"}, "x" * 40)
    eng.scan()  # 10 tokens to 2 recipients = 20
    budget = json.loads((root / ".comm-node" / "guarded" / "budget.backend.json").read_text())
    assert budget["spent_tokens"] == 20 and budget["remaining_tokens"] == 10
    drop(root, "backend", "m-b.md", {"id": "m-b", "to": "*", "type": "info"}, "x" * 40)
    eng.scan()
    [b] = bounces(root, "backend")
    assert "over budget: the message costs 20 tokens and backend has 10 left" in b["body"]
    assert [m["id"] for m in inbox(root, "frontend")] == ["m-a"]


def test_reused_id_is_bounced_not_delivered_twice(ws_root, engine_for):
    eng = engine_for(ws_root)
    meta = {"id": "m-dup", "to": ["frontend"], "type": "info"}
    drop(ws_root, "backend", "m-dup.md", meta, "first")
    eng.scan()
    drop(ws_root, "backend", "again.md", meta, "second")
    eng.scan()
    [delivered] = inbox(ws_root, "frontend")
    assert delivered["body"] == "first\n"
    [b] = bounces(ws_root, "backend")
    assert "'m-dup' was already used" in b["body"]


def test_replay_after_crash_does_not_debit_or_deliver_twice(make_ws, engine_for):
    """A decision in the ledger with the file still in the outbox replays, it is not redone."""
    root = make_ws(budget=1000)
    eng = engine_for(root)
    path = drop(
        root, "backend", "m-r.md", {"id": "m-r", "to": ["frontend"], "type": "info"}, "y" * 400
    )
    # Simulate a crash after the commit point and one delivery: copy the file back.
    saved = path.read_bytes()
    eng.scan()
    path.write_bytes(saved)
    os.utime(path, (1, 1))
    eng.stop()
    eng2 = engine_for(root)
    assert eng2.budgets.spent("backend") == 100
    eng2.scan()
    assert len(inbox(root, "frontend")) == 1
    assert eng2.budgets.spent("backend") == 100


def test_read_messages_are_not_redelivered_on_replay(ws_root, engine_for):
    eng = engine_for(ws_root)
    path = drop(ws_root, "backend", "m-z.md", {"id": "m-z", "to": ["frontend"], "type": "info"})
    saved = path.read_bytes()
    eng.scan()
    box = ws_root / "frontend" / ".comm-node" / "inbox"
    (box / "m-z.md").rename(box / "read" / "m-z.md")
    path.write_bytes(saved)
    # Pretend the archive step never happened, as after a SIGKILL.
    (ws_root / ".comm-node" / "archive" / "routed" / "m-z.md").unlink()
    eng.scan()
    msgs = inbox(ws_root, "frontend")
    assert len(msgs) == 1 and msgs[0]["read"] is True


def test_delivered_copy_parses_as_yaml_front_matter(ws_root, engine_for):
    import yaml

    eng = engine_for(ws_root)
    drop(
        ws_root,
        "backend",
        "u.md",
        {"id": "m-u", "to": ["docs"], "type": "info", "task": "naïve: \u2028 \x1b[31m"},
        "ünïcode\tbody",
    )
    eng.scan()
    text = (ws_root / "docs" / ".comm-node" / "inbox" / "m-u.md").read_text()
    head = text.split("\n---\n")[0][4:]
    assert yaml.safe_load(head)["task"] == "naïve: \u2028 \x1b[31m"
    assert split(text)[1] == "ünïcode\tbody\n"


def test_ledger_is_compacted_while_running(make_ws, engine_for):
    """A long session keeps memory and the journal bounded; budgets and duplicate-id
    refusals survive the compaction."""
    root = make_ws(budget=100_000)
    eng = engine_for(root)
    eng.journal.compact_at = 20
    for i in range(60):
        drop(
            root,
            "backend",
            f"m{i:03d}.md",
            {"id": f"m-c{i}", "to": ["frontend"], "type": "info"},
            "z" * 40,
        )
        if i % 10 == 9:
            eng.scan()
            eng.tick()
    eng.scan()
    eng.tick()
    assert len(eng.ledger.decisions) <= 20
    ledger = Path(eng.ws.paths.ledger).read_text().splitlines()
    # totals and who-sent-what (for reply credit), no decisions: they all left their outboxes
    assert not any('"outcome"' in ln for ln in ledger)
    assert json.loads(ledger[0]) == {"carry": "backend", "spent": 600, "sent": 60, "answered": 0}
    assert eng.budgets.spent("backend") == 60 * 10
    assert len(inbox(root, "frontend")) == 60
    # an old id reused after its decision was compacted away still bounces
    drop(root, "backend", "again.md", {"id": "m-c3", "to": ["frontend"], "type": "info"}, "new")
    eng.scan()
    assert len(inbox(root, "frontend")) == 60
    bounces = [m for m in list_inbox(eng.ws.domains["backend"].paths) if m["type"] == "bounce"]
    assert any("'m-c3' was already used" in m["body"] for m in bounces)
    # and a restart reads the compacted journal to the same totals
    eng.stop()
    eng2 = engine_for(root)
    assert eng2.budgets.spent("backend") == 60 * 10


def test_replayed_decision_waits_for_a_removed_recipient_directory(make_ws, engine_for):
    """A decision replayed from the ledger whose recipient's directory is gone waits in the
    outbox (the directory is never re-created), then is delivered once it is back."""
    import shutil

    root = make_ws(budget=1000)
    eng = engine_for(root)
    path = drop(
        root, "backend", "m-w.md", {"id": "m-w", "to": ["frontend"], "type": "info"}, "y" * 400
    )
    saved = path.read_bytes()
    eng.scan()
    # As after a SIGKILL right after the ledger's commit point: the original back in the
    # outbox, no copy delivered, nothing archived; and then the recipient's directory goes.
    path.write_bytes(saved)
    os.utime(path, (1, 1))
    (root / ".comm-node" / "archive" / "routed" / "m-w.md").unlink()
    shutil.rmtree(root / "frontend")
    eng.scan()
    assert path.exists()
    assert not (root / "frontend").exists()
    [waits] = [e for e in eng.recent if e.type == "message.deferred"]
    assert "frontend's directory is missing" in waits.data["error"]
    # A file where the directory was is no directory either: the message still waits.
    (root / "frontend").write_text("not a directory")
    eng.scan()
    assert path.exists() and (root / "frontend").is_file()
    assert [e.data["error"] for e in eng.recent if e.type == "message.deferred"] == [
        waits.data["error"]
    ]
    # The directory comes back (empty: no inbox yet): the same decision is delivered, once.
    (root / "frontend").unlink()
    (root / "frontend").mkdir()
    eng.scan()
    assert not path.exists()
    assert [m["id"] for m in inbox(root, "frontend")] == ["m-w"]
    assert eng.budgets.spent("backend") == 100
