"""Hostile input: every file comm-node reads, fed garbage. Each case must give a clear error
(a bounce to the sender, an event, a one-line message), never a traceback, and the engine
must keep routing afterwards. Real files, the real CLI, a real engine."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comm_node_tui.adapters.agent_cli import comm_node_argv
from comm_node_tui.engine.engine import Engine
from comm_node_tui.protocol.messages import new_message_id, now_iso, render
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import queue, run_cli, write_workspace
from tests.waiting import until

YAML_BOMB = (
    b"---\n"
    b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    b"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    b"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    b"g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    b"to: [frontend]\ntype: info\n---\nbody\n"
)
YAML_TAG = (
    b'---\nfrom: !!python/object/apply:os.system ["touch PWNED"]\n'
    b"to: [frontend]\ntype: info\n---\nhi\n"
)

PAYLOADS: dict[str, bytes] = {
    "empty": b"",
    "binary": bytes(range(256)) * 8,
    "invalid-utf8": b"\xff\xfe\xfa hello \xc3\x28",
    "nested-json": b"[" * 100_000 + b"]" * 100_000,
    "nested-object": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "yaml-bomb": YAML_BOMB,
    "yaml-tag": YAML_TAG,
    "json-list": b"[1, 2, 3]",
    "json-null": b"null",
}
SPECIAL = ("50MB", "directory", "symlink-passwd")
KINDS = (*PAYLOADS, *SPECIAL)


def plant(path: Path, kind: str) -> None:
    """Put the hostile thing of `kind` where a file is expected."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        import shutil

        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "50MB":
        with open(path, "wb") as fh:
            fh.truncate(50 * 1024 * 1024)  # sparse: costs nothing, reads as 50 MB of NULs
    elif kind == "directory":
        path.mkdir()
        (path / "inner").write_text("x")
    elif kind == "symlink-passwd":
        path.symlink_to("/etc/passwd")
    else:
        path.write_bytes(PAYLOADS[kind])


def no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "Traceback" not in r.stdout


def one_line_error(r: subprocess.CompletedProcess, *names: str) -> None:
    no_traceback(r)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    # `config check` lists problems as they are ("comm-node.toml: ..."); commands prefix theirs
    assert lines[0].startswith(("comm-node: ", "comm-node.toml: ")), lines[0]
    for n in names:
        assert n in lines[0], (n, lines[0])


def still_routes(eng: Engine, ws) -> None:
    """The engine keeps working after the garbage: a good message goes through."""
    be, fe = ws.domains["backend"], ws.domains["frontend"]
    ident = queue(be, "frontend", "still alive")
    eng.scan()
    assert (Path(fe.paths.inbox) / f"{ident}.md").exists()


def used_workspace(root: Path, **kwargs) -> Path:
    """A workspace as one in use is: its comm-node.toml validated and cached, as the first
    command run in it leaves it. The CLI calls of a test then spend their CPU on the hostile
    input under test, not on validating the same good config again (pydantic, ~0.15 s)."""
    write_workspace(root, **kwargs)
    load_workspace(str(root))
    return root


@pytest.fixture
def ws_engine(tmp_path: Path, engine_for):
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "beads"\n')
    eng = engine_for(root)
    return root, eng


# ---- comm-node.toml -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_config_file(tmp_path: Path, kind: str) -> None:
    root = write_workspace(tmp_path / "ws")
    plant(root / "comm-node.toml", kind)
    for args, cwd in ((("config", "check"), root), (("inbox",), root / "backend")):
        r = run_cli(*args, cwd=cwd)
        assert r.returncode == 1
        one_line_error(r, "comm-node.toml")
    assert not (root / "backend" / "PWNED").exists()


def test_engine_keeps_its_config_when_the_file_turns_hostile(ws_engine) -> None:
    root, eng = ws_engine
    good = (root / "comm-node.toml").read_bytes()
    for kind in KINDS:
        plant(root / "comm-node.toml", kind)
        eng.reload_config()
        assert sorted(eng.ws.domains) == ["backend", "docs", "frontend"], kind
        still_routes(eng, eng.ws)
    invalid = [e for e in eng.recent if e.type == "config.invalid"]
    assert invalid and all("comm-node.toml" in e.msg for e in invalid)
    plant(root / "comm-node.toml", "empty")
    (root / "comm-node.toml").write_bytes(good)


# ---- status.json --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_status_file(ws_engine, kind: str) -> None:
    root, eng = ws_engine
    path = root / "backend" / ".comm-node" / "status.json"
    plant(path, kind)
    r = run_cli("status", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    no_traceback(r)
    backend = next(a for a in json.loads(r.stdout)["agents"] if a["name"] == "backend")
    if kind != "empty":
        assert "status.json" in backend["problem"]
    eng.refresh_status("backend")
    eng.tick()
    if kind != "empty":
        assert any(e.type == "status.invalid" and e.agent == "backend" for e in eng.recent)
    still_routes(eng, eng.ws)
    # the agent's own `status set` replaces the garbage instead of failing
    if kind not in ("directory",):
        r = run_cli("status", "set", "busy", cwd=root / "backend")
        assert r.returncode == 0, r.stderr


def test_heartbeats_in_the_future_and_far_past(ws_engine) -> None:
    root, eng = ws_engine
    fe = root / "frontend" / ".comm-node" / "status.json"
    fe.parent.mkdir(parents=True, exist_ok=True)
    fe.write_text(json.dumps({"state": "busy", "last_heartbeat": "9999-12-31T00:00:00Z"}))
    old = time.time() - 3600
    os.utime(fe, (old, old))
    eng.refresh_status("frontend")
    eng.watchdog.check()
    # a future heartbeat is not believed: the file's age counts, so the (busy, unseen)
    # agent is reported silent; silence alone never makes it lost
    assert any(e.type == "status.invalid" and "in the future" in e.msg for e in eng.recent)
    assert any(e.type == "agent.stale" and e.agent == "frontend" for e in eng.recent)
    be = root / "backend" / ".comm-node" / "status.json"
    be.write_text(json.dumps({"state": "busy", "last_heartbeat": "1970-01-01T00:00:00Z"}))
    eng.refresh_status("backend")
    eng.watchdog.check()
    assert any(e.type == "agent.stale" and e.agent == "backend" for e in eng.recent)
    assert not any(e.type == "agent.lost" for e in eng.recent)
    r = run_cli("status", "--json", cwd=root)
    front = next(a for a in json.loads(r.stdout)["agents"] if a["name"] == "frontend")
    assert "in the future" in front["problem"] and front["stale"] and not front["lost"]


# ---- messages -----------------------------------------------------------------------------
def _settled(path: Path) -> None:
    past = time.time() - 10  # older than the router's settle time: judged now
    os.utime(path, (past, past), follow_symlinks=False)


def test_outbox_files(ws_engine) -> None:
    root, eng = ws_engine
    outbox = root / "backend" / ".comm-node" / "outbox"
    for kind in KINDS:
        p = outbox / f"{kind}.md"
        plant(p, kind)
        _settled(p)
    # a symlink to another domain's inbox, and a symlinked outbox entry to a good message
    (outbox / "to-inbox.md").symlink_to(root / "frontend" / ".comm-node" / "inbox")
    _settled(outbox / "to-inbox.md")
    eng.scan()
    bounces = sorted((root / "backend" / ".comm-node" / "inbox").glob("b-*.md"))
    reasons = [b.read_text() for b in bounces]
    for kind in (*KINDS, "to-inbox"):
        assert any(f"{kind}.md" in r for r in reasons), kind
    assert list(outbox.iterdir()) == []  # nothing left behind, nothing re-read forever
    assert not (root / "backend" / "PWNED").exists() and not Path("PWNED").exists()
    # nothing reached frontend, and /etc/passwd was never copied anywhere
    assert list((root / "frontend" / ".comm-node" / "inbox").glob("*.md")) == []
    for f in (root / ".comm-node").rglob("*"):
        if f.is_file():
            assert b"root:x:0:0" not in f.read_bytes()[:1_000_000], f
    still_routes(eng, eng.ws)


BAD_FIELDS = {
    "recipient-slash": ({"to": ["front/end"]}, "unknown recipient"),
    "recipient-dotdot": ({"to": ["../frontend"]}, "unknown recipient"),
    "recipient-nul": ({"to": ["front\x00end"]}, "unknown recipient"),
    "recipient-absolute": ({"to": ["/etc/passwd"]}, "unknown recipient"),
    "recipient-self": ({"to": ["backend"]}, "to itself"),
    "spoofed-from": ({"from": "frontend"}, "a domain sends only as itself"),
    "engine-type": ({"type": "bounce"}, "come only from comm-node"),
    "future": ({"created": "9999-12-31T00:00:00Z"}, "is in the future"),
    "far-past": ({"created": "0001-01-01T00:00:00Z"}, "implausibly old"),
    "not-a-time": ({"created": "yesterday"}, "not an ISO 8601 time"),
    "id-traversal": ({"id": "../../etc/passwd"}, "id:"),
    "many-recipients": ({"to": [f"r{i}" for i in range(300)]}, "more than 256"),
}


def test_message_fields(ws_engine) -> None:
    root, eng = ws_engine
    outbox = root / "backend" / ".comm-node" / "outbox"
    for name, (fields, _why) in BAD_FIELDS.items():
        meta = {
            "id": new_message_id(),
            "from": "backend",
            "to": ["frontend"],
            "type": "info",
            "created": now_iso(),
            **fields,
        }
        p = outbox / f"{name}.md"
        p.write_text(render(meta, f"case {name}"))
        _settled(p)
    eng.scan()
    bounces = [b.read_text() for b in (root / "backend" / ".comm-node" / "inbox").glob("b-*")]
    for name, (_fields, why) in BAD_FIELDS.items():
        hit = [b for b in bounces if f"case {name}" in b or f"{name}.md" in b]
        assert hit, name
        assert why in hit[0], (name, hit[0][:400])
    assert list((root / "frontend" / ".comm-node" / "inbox").glob("*.md")) == []
    still_routes(eng, eng.ws)


def test_duplicate_ids(ws_engine) -> None:
    root, eng = ws_engine
    outbox = root / "backend" / ".comm-node" / "outbox"
    meta = {
        "id": "m-dup-1",
        "from": "backend",
        "to": ["frontend"],
        "type": "info",
        "created": now_iso(),
    }
    (outbox / "a.md").write_text(render(meta, "first"))
    _settled(outbox / "a.md")
    eng.scan()
    (outbox / "b.md").write_text(render(meta, "second, same id"))
    _settled(outbox / "b.md")
    eng.scan()
    inbox = root / "frontend" / ".comm-node" / "inbox"
    assert [p.name for p in inbox.glob("*.md")] == ["m-dup-1.md"]
    assert "first" in (inbox / "m-dup-1.md").read_text()
    bounce = [b.read_text() for b in (root / "backend" / ".comm-node" / "inbox").glob("b-*")]
    assert any("was already used" in b for b in bounce)


def test_inbox_entries(ws_engine) -> None:
    root, eng = ws_engine
    fe = root / "frontend"
    still_routes(eng, eng.ws)
    inbox = fe / ".comm-node" / "inbox"
    (inbox / "m-dir.md").mkdir()
    (inbox / "m-passwd.md").symlink_to("/etc/passwd")
    (inbox / "m-garbage.md").write_bytes(PAYLOADS["binary"])
    plant(inbox / "m-huge.md", "50MB")
    r = run_cli("inbox", "--json", cwd=fe)
    assert r.returncode == 0, r.stderr
    no_traceback(r)
    listed = json.loads(r.stdout)
    assert any(m["body"].strip() == "still alive" for m in listed)
    assert all("root:x:0:0" not in m["body"] for m in listed)
    for ident in ("m-passwd", "m-dir", "m-huge", "m-garbage"):
        r = run_cli("read", ident, cwd=fe)
        assert r.returncode == 1, (ident, r.stdout)
        one_line_error(r)
        assert "root:x:0:0" not in r.stdout


# ---- locks, artifacts ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "code", "why"),
    [
        ("../frontend/**", 4, "'..' is not allowed"),
        ("/etc/**", 4, "outside"),
        ("!src/**", 1, "negated"),
        ("src/\x01x", 1, "control characters"),
        ("x" * 2000, 1, "over 1000 characters"),
        ("", 1, "empty"),
    ],
)
def test_lock_requests(tmp_path: Path, pattern: str, code: int, why: str) -> None:
    root = used_workspace(tmp_path / "ws", domain_extra={"backend": 'scope = ["src/**"]'})
    r = run_cli("lock", "acquire", pattern, cwd=root / "backend")
    assert r.returncode == code, r.stderr
    one_line_error(r)
    assert why in r.stderr


@pytest.mark.parametrize("name", ["../x", "a/b", "/etc/passwd", "x\x01y", ".."])
def test_artifact_names(tmp_path: Path, name: str) -> None:
    root = used_workspace(tmp_path / "ws")
    (root / "backend" / "f.txt").write_text("x")
    r = run_cli("artifact", "publish", "f.txt", "--name", name, cwd=root / "backend")
    assert r.returncode == 1, r.stderr
    one_line_error(r)
    assert not (root / "backend" / ".comm-node" / "artifacts").exists() or not any(
        p.name != "manifest.json" for p in (root / "backend" / ".comm-node" / "artifacts").iterdir()
    )


def test_artifact_file_outside_or_special(tmp_path: Path) -> None:
    root = used_workspace(tmp_path / "ws")
    be = root / "backend"
    (be / "link").symlink_to("/etc/passwd")
    for f in ("/etc/passwd", "link", "../frontend"):
        r = run_cli("artifact", "publish", f, cwd=be)
        assert r.returncode in (1, 2, 4), (f, r.stderr)
        one_line_error(r)


# ---- task sources, state files, transcripts, hooks --------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_task_sources(tmp_path: Path, kind: str) -> None:
    for source, rel in (("beads", ".beads/issues.jsonl"), ("native", "tasks.toml")):
        root = used_workspace(tmp_path / f"{source}-ws", extra=f'[tasks]\nsource = "{source}"\n')
        plant(root / rel, kind)
        r = run_cli("task", "list", "--json", cwd=root)
        no_traceback(r)
        assert r.returncode in (0, 1), r.stderr
        if r.returncode == 1:
            one_line_error(r)
        r = run_cli("status", "--json", cwd=root)
        assert r.returncode == 0, r.stderr
        problems = json.loads(r.stdout)["tasks"]["problems"]
        if kind not in ("empty",):
            assert problems and any(rel.split("/")[-1] in p for p in problems), problems


STATE_FILES = (
    "locks.json",
    "tasks.json",
    "budget-grants.json",  # an older comm-node's, read while guarded/ has none
    "guarded/budget-grants.json",
    "announced.json",
    "guarded/paused.json",
    "usage.json",
    "boundaries.json",
    "claims.json",
)


# One test per state file (the suite runs in parallel: one 96-case loop was its longest).
@pytest.mark.parametrize("name", STATE_FILES)
def test_state_files(ws_engine, name: str) -> None:
    _root, eng = ws_engine
    state = Path(eng.ws.paths.state)
    for kind in KINDS:
        plant(state / name, kind)
        before = len(eng.recent)
        for _ in range(5):  # a bad file is reported once, not on every pass
            eng.tick()
            eng.snapshot()
        assert len(eng.recent) - before <= 3, (name, kind, list(eng.recent)[-5:])
        world = eng.snapshot()
        assert world.agents
    plant(state / name, "empty")
    (state / name).unlink()
    still_routes(eng, eng.ws)


def test_state_files_in_the_cli(tmp_path: Path) -> None:
    """`comm-node status` as the operator runs it, with every state file hostile at once:
    one call per kind sees them all (the CLI reads each file on its own and finishes with
    exit 0, so no bad file hides another), where a call per kind and file cost 96 CLI
    starts. No engine runs: none can have replaced the garbage before the CLI reads it."""
    root = used_workspace(tmp_path / "ws", extra='[tasks]\nsource = "beads"\n')
    state = root / ".comm-node"
    for kind in KINDS:
        for name in STATE_FILES:
            plant(state / name, kind)
        r = run_cli("status", "--json", cwd=root)
        assert r.returncode == 0, (kind, r.stderr)
        no_traceback(r)
        world = json.loads(r.stdout)
        assert sorted(a["name"] for a in world["agents"]) == ["backend", "docs", "frontend"]


def test_transcripts(ws_engine) -> None:
    from comm_node_tui.usage.transcripts import UsageTracker

    root, eng = ws_engine
    tracker = UsageTracker(eng.ws)
    good = json.dumps(
        {
            "type": "assistant",
            "cwd": str(root / "backend"),
            "requestId": "r1",
            "message": {
                "id": "m1",
                "model": "claude-sonnet-4-5",
                "usage": {"input_tokens": 3, "output_tokens": 5},
            },
        }
    ).encode()
    for kind in KINDS:
        p = root / "backend" / f"t-{kind}.jsonl"
        plant(p, kind)
        if p.is_file() and not p.is_symlink() and kind != "50MB":
            with open(p, "ab") as fh:
                fh.write(b"\n" + good + b"\n")
        tracker.poll({str(p): "backend"})
    summary = tracker.summary()
    assert summary["domains"]["backend"]["output"] == 5  # the good line, once
    assert summary["domains"]["backend"]["input"] == 3


@pytest.mark.parametrize("kind", KINDS)
def test_hook_payloads(ws_engine, kind: str) -> None:
    root, _eng = ws_engine
    p = root / "payload"
    plant(p, kind)
    data = b"" if kind == "directory" else (p.read_bytes() if kind != "50MB" else b"\0" * 5_000_000)
    r = subprocess.run(
        [*comm_node_argv(), "hook"],
        input=data,
        capture_output=True,
        cwd=root / "backend",
        timeout=60,
    )
    assert r.returncode == 0
    assert b"Traceback" not in r.stderr and r.stdout == b""


def test_a_hostile_budget_file_never_fails_the_hook(tmp_path: Path) -> None:
    """The hooks read the engine's budget file (guarded/) on every tool call, and an older
    comm-node's at the old place while guarded/ has none: garbage there is no pause and no
    error for the agent."""
    from comm_node_tui.hooks.handler import handle

    root = used_workspace(tmp_path / "ws")
    payload = {
        "hook_event_name": "PreToolUse",
        "cwd": str(root / "backend"),
        "session_id": "s",
        "tool_name": "Bash",
        "tool_input": {"command": "ls"},
    }
    for where in ("backend/.comm-node/budget.json", ".comm-node/guarded/budget.backend.json"):
        for kind in KINDS:
            plant(root / where, kind)
            code, out, _err = handle(payload)
            assert (code, out) == (0, ""), (where, kind, out)


# ---- property-based -----------------------------------------------------------------------
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
HOOK_KEYS = st.sampled_from(
    [
        "hook_event_name",
        "session_id",
        "transcript_path",
        "tool_name",
        "tool_input",
        "cwd",
        "prompt",
        "message",
        "notification_type",
        "stop_hook_active",
        "source",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.dictionaries(
        HOOK_KEYS,
        JSONISH
        | st.sampled_from(
            ["PreToolUse", "PostToolUse", "Stop", "Notification", "SessionStart", "Edit", "Write"]
        ),
        max_size=8,
    )
)
def test_hook_handler_never_raises(hook_ws, payload) -> None:
    from comm_node_tui.hooks.handler import handle

    code, out, _err = handle(payload)
    assert code in (0, 2)
    if out:
        json.loads(out)


@pytest.fixture
def hook_ws(tmp_path, monkeypatch):
    """A workspace the hook runs in, as from an agent's pane (set once for all examples)."""
    root = write_workspace(tmp_path / "ws")
    monkeypatch.chdir(root / "backend")
    monkeypatch.setenv("COMM_NODE_DOMAIN", "backend")
    return root


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_config_text_gives_config_errors_only(text) -> None:
    from comm_node_tui.errors import ConfigError
    from comm_node_tui.workspace.config import parse_config

    try:
        parse_config(text)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith("comm-node.toml") for p in exc.problems)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(JSONISH.map(json.dumps) | st.text(max_size=80), max_size=8))
def test_beads_lines_never_raise(tmp_path_factory, lines) -> None:
    from comm_node_tui.coordination.tasks import Readiness, load_beads_jsonl

    p = tmp_path_factory.mktemp("beads") / "issues.jsonl"
    p.write_text("\n".join(lines))
    tasks, problems = load_beads_jsonl(str(p), {"backend"})
    Readiness(tasks).counts()
    assert isinstance(problems, list)


@settings(max_examples=200, deadline=None)
@given(pattern=st.text(max_size=60))
def test_glob_patterns_never_raise(pattern) -> None:
    from comm_node_tui.protocol.globs import Glob, validate_pattern

    if validate_pattern(pattern) is None:
        g = Glob("/ws/backend", pattern)
        g.overlaps(Glob("/ws/backend", "src/**"))
        import re

        re.compile(g.regex())


@settings(max_examples=150, deadline=None)
@given(value=JSONISH)
def test_status_values_never_break_the_world(tmp_path_factory, value) -> None:
    from comm_node_tui.engine.world import agent_view

    root = write_workspace(tmp_path_factory.mktemp("st") / "ws")
    ws = load_workspace(str(root))
    status = value if isinstance(value, dict) else {"last_heartbeat": value, "state": value}
    view = agent_view(ws, "backend", status)
    assert view.name == "backend"
    json.dumps(view.to_json())  # plain data whatever the agent side wrote


# ---- the control room with everything hostile at once -----------------------------------
async def test_control_room_survives_a_hostile_workspace(tmp_path: Path) -> None:
    from comm_node_tui.tui.app import ControlRoom

    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "beads"\n')
    plant(root / "backend" / ".comm-node" / "status.json", "nested-json")
    plant(root / "frontend" / ".comm-node" / "status.json", "symlink-passwd")
    plant(root / "docs" / ".comm-node" / "status.json", "directory")
    plant(root / ".beads" / "issues.jsonl", "binary")
    for name in ("locks.json", "usage.json", "boundaries.json", "guarded/budget-grants.json"):
        plant(root / ".comm-node" / name, "nested-object")
    outbox = root / "backend" / ".comm-node" / "outbox"
    for kind in ("yaml-bomb", "yaml-tag", "50MB", "binary"):
        plant(outbox / f"{kind}.md", kind)
        _settled(outbox / f"{kind}.md")
    (root / "frontend" / ".comm-node" / "inbox").mkdir(parents=True, exist_ok=True)
    plant(root / "frontend" / ".comm-node" / "inbox" / "m-x.md", "symlink-passwd")
    (root / ".comm-node" / "events.jsonl").write_bytes(
        PAYLOADS["binary"] + b"\n" + b'{"type": "[bold red]x[/]", "msg": "[link=file:///etc]"}\n'
    )
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:

        def bounced() -> bool:
            if app.bridge.engine:
                app.bridge.engine.scan()
            return bool(app.world and app.bridge.engine and app.bridge.engine.router.bounced >= 4)

        await until(pilot, bounced, every=0.1, what="the four bad messages bounced")
        app.request_refresh()
        await until(pilot, lambda: app.query_one("#agents").row_count == 3)
        for key in ("2", "3", "4", "5", "6", "v", "escape", "question_mark", "escape"):
            await pilot.press(key)
            await pilot.pause()
        assert app.is_running
        from collections import Counter

        kinds = Counter(e.type for e in app.bridge.engine.recent)
        assert kinds["message.bounced"] >= 4, kinds
