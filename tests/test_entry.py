"""entry.py's fast readings (`send`, `inbox`, `status set` and the FORMS: `task
ready|list|show|claim|done`, `lock acquire|release|list`, `read`, `status`) give exactly
argparse's namespace, or leave it to argparse; the hook, send, inbox and status set hot
paths import neither argparse nor json nor re, the FORMS' paths not argparse (issue 22)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from comm_node_tui.cli import build_parser
from comm_node_tui.entry import FORMS, fast_args, inbox_args, send_args, status_set_args
from tests.conftest import write_workspace


def _argparse(argv: list[str]) -> dict | None:
    try:
        return vars(build_parser("send").parse_args(argv))
    except SystemExit:
        return None


@pytest.mark.parametrize(
    "rest",
    [
        ["--to", "frontend", "hello"],
        ["hello", "--to", "a,b", "--json"],
        ["--to=*", "--type", "request", "--priority", "urgent", "--budget", "12", "x"],
        ["-w", "/ws", "-d", "backend", "--to", "operator", "--reply-to", "m-1", "-"],
        [
            "--to",
            "a",
            "--subject",
            "s p a c e",
            "--task",
            "t-1",
            "--domain=x",
            "--workspace=/w",
            "",
        ],
        ["--to", "a", "--to", "b", "two --to: the last wins"],
    ],
)
def test_plain_sends_read_as_argparse_reads_them(rest):
    fast = send_args(rest)
    assert fast is not None
    assert vars(fast) == _argparse(["send", *rest])


@pytest.mark.parametrize(
    "rest",
    [
        ["--help"],
        ["--to", "a"],  # no text: argparse's error
        ["hello"],  # no --to
        ["--to", "a", "--priority", "asap", "x"],
        ["--to", "a", "--budget", "many", "x"],
        ["--pri", "high", "--to", "a", "x"],  # abbreviations are argparse's
        ["--to", "a", "--", "-x"],
        ["--to", "a", "-5"],
        ["--to", "a", "x", "y"],
        ["--to", "-a", "x"],
        ["-wfoo", "--to", "a", "x"],
        ["--json=1", "--to", "a", "x"],
        # argparse refuses the first value, which a later one must not hide
        ["--to", "a", "--priority", "bogus", "--priority", "high", "x"],
        ["--to", "a", "--budget", "many", "--budget", "5", "x"],
    ],
)
def test_anything_else_is_left_to_argparse(rest):
    assert send_args(rest) is None


TOKENS = [
    *("--to", "--to=a", "a", "b,c", "*", "--type", "--priority", "high", "low", "--budget"),
    *("7", "x7", "--json", "-w", "-d", "--subject", "--reply-to", "-", "--", "-h", "", "--t"),
    *("--domain", "--workspace=/w", "text", "-1"),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=8))
def test_the_fast_reading_never_differs_from_argparse(rest):
    fast = send_args(rest)
    if fast is not None:
        assert vars(fast) == _argparse(["send", *rest])


def _argparse_status(argv: list[str]) -> dict | None:
    try:
        return vars(build_parser("status").parse_args(argv))
    except SystemExit:
        return None


@pytest.mark.parametrize(
    "rest",
    [
        ["busy"],
        ["busy", "--task", "T-1", "--progress", "step 2/3: the parser"],
        ["--json", "idle"],
        ["--progress=", "done", "--task=t"],
        ["-w", "/ws", "-d", "backend", "waiting"],
        ["nonsense"],  # the handler refuses it, as after argparse
        ["busy", "--task", "a", "--task", "b"],
        ["-"],
    ],
)
def test_plain_status_sets_read_as_argparse_reads_them(rest):
    fast = status_set_args(rest)
    assert fast is not None
    assert vars(fast) == _argparse_status(["status", "set", *rest])


@pytest.mark.parametrize(
    "rest",
    [
        [],
        ["--help"],
        ["busy", "idle"],
        ["busy", "--progress", "-5 tests left"],
        ["--prog", "x", "busy"],
        ["busy", "--"],
        ["-wfoo", "busy"],
        ["-w=foo", "busy"],
        ["busy", "--task"],
    ],
)
def test_any_other_status_set_is_left_to_argparse(rest):
    assert status_set_args(rest) is None


STATUS_TOKENS = [
    *("busy", "idle", "--task", "--task=T", "t-1", "--progress", "--progress=", "step 1"),
    *("--json", "-w", "-d", "--workspace=/w", "--domain", "-", "--", "-h", "", "--p", "-1"),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(STATUS_TOKENS), max_size=7))
def test_the_fast_status_set_never_differs_from_argparse(rest):
    fast = status_set_args(rest)
    if fast is not None:
        assert vars(fast) == _argparse_status(["status", "set", *rest])


@pytest.mark.parametrize(
    "rest",
    [[], ["--unread"], ["--json", "--unread"], ["--operator", "--json"], ["-d", "x", "--unread"]],
)
def test_plain_inboxes_read_as_argparse_reads_them(rest):
    fast = inbox_args(rest)
    assert fast is not None
    assert vars(fast) == vars(build_parser("inbox").parse_args(["inbox", *rest]))


@pytest.mark.parametrize("rest", [["--un"], ["x"], ["--help"], ["--unread=1"], ["--", "x"]])
def test_any_other_inbox_is_left_to_argparse(rest):
    assert inbox_args(rest) is None


INBOX_TOKENS = ["--unread", "--json", "--operator", "-w", "/w", "--domain=d", "-", "--", "x", "-h"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(INBOX_TOKENS), max_size=6))
def test_the_fast_inbox_never_differs_from_argparse(rest):
    fast = inbox_args(rest)
    if fast is not None:
        try:
            expected = vars(build_parser("inbox").parse_args(["inbox", *rest]))
        except SystemExit:
            expected = None
        assert vars(fast) == expected


def _argparse_any(argv: list[str]) -> dict | None:
    """argparse's namespace for a whole command line, None where it errors (or prints help)."""
    try:
        return vars(build_parser(argv[0]).parse_args(argv))
    except SystemExit:
        return None


# Plain forms each FORMS entry reads itself (and must read as argparse does).
FORM_PLAIN = [
    ["task", "ready"],
    ["task", "ready", "--json", "--all"],
    ["task", "ready", "-w", "/ws", "--domain=backend"],
    ["task", "list", "--json"],
    ["task", "list", "-d", "x", "-d", "y"],
    ["task", "show", "T-1"],
    ["task", "show", "--json", "T 1"],
    ["task", "claim", "T1", "-d", "backend", "--json"],
    ["task", "claim", ""],
    ["task", "done", "T1"],
    ["task", "done", "T1", "--artifact", "out/a.txt", "--artifact=b", "--json"],
    ["task", "done", "--force", "--reason", "ok by me", "--by", "lead", "T1"],
    ["task", "done", "T1", "--reason="],
    ["lock", "acquire", "src/**"],
    ["lock", "acquire", "src/a.py", "src/b/**", "--shared", "--ttl", "60", "--json"],
    ["lock", "acquire", "--reason", "refactor", "--ttl=1e3", "a", "b", "c"],
    ["lock", "acquire", "-w", "/ws", "x", "--ttl", "inf"],
    ["lock", "release", "--all"],
    ["lock", "release"],
    ["lock", "release", "a/**", "b", "--json"],
    ["lock", "release", "-d", "x", "a", "b"],
    ["lock", "list", "--json"],
    ["read", "m-1"],
    ["read", "--operator", "abc", "--json"],
    ["status"],
    ["status", "--json"],
    ["status", "-w", "/ws", "--json", "-d", "set"],
]


@pytest.mark.parametrize("argv", FORM_PLAIN, ids=" ".join)
def test_plain_forms_read_as_argparse_reads_them(argv):
    fast = fast_args(argv)
    assert fast is not None
    assert vars(fast) == _argparse_any(argv)


# What each form leaves to argparse: help, abbreviations, errors, values like options.
FORM_OTHER = [
    ["task"],
    ["task", "ready", "--help"],
    ["task", "ready", "x"],
    ["task", "ready", "--al"],
    ["task", "list", "--all"],
    ["task", "show"],
    ["task", "show", "a", "b"],
    ["task", "show", "-1"],
    ["task", "claim", "T1", "--"],
    ["task", "done", "T1", "--artifact"],
    ["task", "done", "T1", "--artifact", "-x"],
    ["task", "done", "T1", "--art", "a"],
    ["task", "fail", "T1", "--reason", "r"],
    ["lock", "acquire"],
    ["lock", "acquire", "--shared"],
    ["lock", "acquire", "a", "--shared", "b"],
    ["lock", "acquire", "a", "--ttl", "soon"],
    ["lock", "acquire", "a", "--ttl", "-5"],
    ["lock", "acquire", "-a"],
    ["lock", "release", "a", "--all", "b"],
    ["lock", "renew"],
    ["lock", "list", "x"],
    ["read"],
    ["read", "a", "b"],
    ["read", "--json=yes", "a"],
    ["status", "show"],
    ["status", "-h"],
    ["status", "-w"],
    ["-w", "/ws", "task", "ready"],
]


@pytest.mark.parametrize("argv", FORM_OTHER, ids=" ".join)
def test_any_other_form_is_left_to_argparse(argv):
    assert fast_args(argv) is None


FORM_TOKENS = [
    *("--json", "--all", "--shared", "--force", "--operator", "-w", "/w", "-d", "--domain=d"),
    *("--ttl", "--ttl=5", "5", "x", "--reason", "--reason=", "--artifact", "--by", "-"),
    *("--", "-h", "", "-1", "T1", "a/**", "--al", "set"),
]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(FORMS)), st.lists(st.sampled_from(FORM_TOKENS), max_size=7))
# found by Hypothesis: argparse refuses the first, bad --ttl; the fast form kept the last
@example(("lock", "acquire"), ["/w", "--ttl", "/w", "--ttl=5"])
def test_the_fast_forms_never_differ_from_argparse(words, rest):
    argv = [*words, *rest]
    fast = fast_args(argv)
    if fast is not None:
        assert vars(fast) == _argparse_any(argv)


HOT_FORBIDDEN = ("argparse", "json", "re", "enum", "hashlib", "pydantic", "yaml", "pathspec")


def _loaded(argv: list[str], stdin: str, cwd) -> list[str]:
    code = (
        "import sys\n"
        "from comm_node_tui.entry import main\n"
        f"rc = main({argv!r})\n"
        "sys.stderr.write(repr(sorted({m.split('.')[0] for m in sys.modules} & set(%r))))\n"
        % (HOT_FORBIDDEN,)
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return eval(res.stderr.strip().splitlines()[-1])


def test_hook_events_and_send_stay_off_the_heavy_imports(tmp_path):
    """Every hook event but SessionStart (rare: the hand-off reads the task graph), send,
    inbox and status set:
    re/enum/json/argparse each cost the hot path a measurable share of its start-up."""
    from comm_node_tui.adapters.claude.settings import EVENTS

    root = write_workspace(tmp_path / "ws")
    cwd = root / "backend"
    subprocess.run([sys.executable, "-m", "comm_node_tui", "whoami"], cwd=cwd, timeout=60)
    for event in [e for e in EVENTS if e != "SessionStart"]:
        payload = {
            "hook_event_name": event,
            "session_id": "0b8a1f2e-5c3d-4e6f-8a9b-0c1d2e3f4a5b",
            "cwd": str(cwd),
            "tool_name": "Edit",
            "tool_input": {"file_path": str(cwd / "x.py"), "old_string": "a"},
            "prompt": "go on",
        }
        assert _loaded(["hook"], json.dumps(payload), cwd) == [], event
    assert _loaded(["send", "--to", "frontend", "hello"], "", cwd) == []
    assert list((cwd / ".comm-node" / "outbox").glob("*.md")), "send wrote its message"
    assert _loaded(["inbox", "--unread", "--json"], "", cwd) == []
    set_busy = ["status", "set", "busy", "--task", "T-1", "--progress", "step 1"]
    assert _loaded(set_busy, "", cwd) == []
    status = json.loads((cwd / ".comm-node" / "status.json").read_text())
    assert (status["state"], status["task"], status["progress"]) == ("busy", "T-1", "step 1")
    # the git pre-commit guard's check that comm-node runs, before every commit
    assert _loaded(["--version"], "", cwd) == []


# SessionStart fires on every start, resume, /clear and compaction: its hand-off reads the
# task source from its JSON cache, not through tomllib, the Coordinator or readiness.
SESSION_FORBIDDEN = (
    *HOT_FORBIDDEN,
    "tomllib",
    "datetime",
    "fnmatch",
    "collections",
    "contextlib",
    "functools",
    "orjson",  # a Beads export's fast reader: its import costs more than a hand-off's parse
)


@pytest.mark.parametrize("source", ["native", "beads"])
def test_session_start_stays_off_the_heavy_imports(tmp_path, source):
    root = write_workspace(tmp_path / "ws", extra=f'[tasks]\nsource = "{source}"\n')
    if source == "native":
        (root / "tasks.toml").write_text('[[tasks]]\nid = "T1"\ntitle = "held"\n')
    else:
        (root / ".beads").mkdir()
        (root / ".beads" / "issues.jsonl").write_text(
            '{"id": "T1", "title": "held", "status": "open"}\n'
        )
    # last changed a minute ago: a source changed within the cache's racy window is parsed
    # again rather than cached (coordination/tasks.py RACY_NS)
    for src in (root / "tasks.toml", root / ".beads" / "issues.jsonl"):
        if src.exists():
            st = src.stat()
            os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns - 60_000_000_000))
    (root / ".comm-node").mkdir(exist_ok=True)
    overlay = {"tasks": {"T1": {"status": "in_progress", "assignee": "backend"}}}
    (root / ".comm-node" / "tasks.json").write_text(json.dumps(overlay))
    cwd = root / "backend"
    payload = json.dumps({"hook_event_name": "SessionStart", "source": "startup", "cwd": str(cwd)})
    code = (
        "import sys\n"
        "from comm_node_tui.entry import main\n"
        "rc = main(['hook'])\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        f"sys.stderr.write(repr(sorted(loaded & set({SESSION_FORBIDDEN!r}))))\n"
    )
    for call in ("cold", "warm"):  # the first call parses the source and writes the cache
        res = subprocess.run(
            [sys.executable, "-c", code],
            input=payload,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Your task: T1: held" in res.stdout, (call, res.stdout, res.stderr)
    assert eval(res.stderr.strip().splitlines()[-1]) == []


def test_the_frequent_forms_stay_off_argparse_and_their_handlers_off_the_heavy_imports(tmp_path):
    """The FORMS skip argparse; the task reads skip json/re/enum (a manifest that is not
    there), a claim the Beads write-back's subprocess, lock list pathspec (the regex it
    dropped), status the typing and hashlib it never used. Each call's output is checked
    too: a fast path that skipped the work would pass an import census."""
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "native"\n')
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "first"\ndomain = "backend"\n'
        '[[tasks]]\nid = "T2"\ntitle = "second"\ndomain = "backend"\ndepends_on = ["T1"]\n'
    )
    # last changed a minute ago: a source changed within the task cache's racy window is
    # parsed again on every call (coordination/tasks.py RACY_NS), and tomllib brings re
    st = (root / "tasks.toml").stat()
    os.utime(root / "tasks.toml", ns=(st.st_atime_ns, st.st_mtime_ns - 60_000_000_000))
    cwd = root / "backend"
    # the first call parses the config and the task source and caches them: not measured
    subprocess.run([sys.executable, "-m", "comm_node_tui", "task", "list"], cwd=cwd, timeout=60)
    light = ("argparse", "json", "re", "enum", "subprocess", "pathspec", "dataclasses")
    calls = [
        (["task", "ready"], light, "T1"),
        (["task", "list"], light, "T2"),
        (["task", "show", "T2"], light, "blocked"),
        (["task", "claim", "T1"], light, "backend claimed T1: first"),
        (["lock", "acquire", "src/**"], ("argparse", "pathspec"), "granted 'src/**' to backend"),
        (["lock", "list"], light, "src/**"),
        (["lock", "release", "--all"], light, "released 1 lock(s)"),
        (["read", "m-none"], light, ""),
        (["status", "--json"], ("argparse", "typing", "hashlib"), '"project"'),
    ]
    for argv, forbidden, shown in calls:
        code = (
            "import sys\n"
            "from comm_node_tui.entry import main\n"
            f"rc = main({argv!r})\n"
            "sys.stdout.flush()\n"
            "loaded = {m.split('.')[0] for m in sys.modules}\n"
            f"sys.stderr.write(repr(sorted(loaded & set({forbidden!r}))))\n"
        )
        res = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
        )
        assert shown in res.stdout, (argv, res.stdout, res.stderr)
        assert eval(res.stderr.strip().splitlines()[-1]) == [], argv
    # `read` of an unknown id: the handler's own one-line error, as through argparse
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "read", "m-none"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0 and res.stderr.startswith("comm-node: "), res.stderr


def test_python_m_takes_the_same_fast_path(tmp_path):
    """`python -m comm_node_tui` (tests, the git pre-commit hook) reads the frequent forms
    without argparse too: only runpy's own imports differ from the `comm-node` script."""
    root = write_workspace(tmp_path / "ws")
    cwd = root / "backend"
    subprocess.run([sys.executable, "-m", "comm_node_tui", "inbox"], cwd=cwd, timeout=60)
    for argv in (["inbox", "--json"], ["hook"], ["status", "set", "idle"]):
        res = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "comm_node_tui", *argv],
            cwd=cwd,
            input=json.dumps({"hook_event_name": "Stop", "cwd": str(cwd)}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, (argv, res.stderr[-2000:])
        imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines()}
        assert "comm_node_tui.entry" in imported, argv
        assert "argparse" not in imported and "comm_node_tui.cli" not in imported, argv
