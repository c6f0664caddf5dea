"""Advisory locks on real files through the real CLI and the coordinator."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.errors import BoundaryError, ConflictError
from comm_node_tui.protocol.globs import Glob
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import write_workspace

B = "/ws/backend"


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("src/**", "src/a.ts", True),
        ("src/a.ts", "src/a.ts", True),
        ("src/a.ts", "src/b.ts", False),
        ("src/*.ts", "src/a*", True),  # both match src/a.ts
        ("src/*.ts", "src/*.py", False),
        ("src/*.ts", "docs/*", False),
        ("*.md", "docs/deep/x.md", True),  # no slash: any depth (gitignore)
        ("/README.md", "docs/README.md", False),  # leading slash: anchored
        ("docs/", "docs/guide/intro.md", True),  # a directory covers what is below
        ("src/api", "src/api/users.ts", True),
        ("src/**/test_*.py", "src/pkg/sub/test_x.py", True),
        ("src/**/test_*.py", "src/pkg/x.py", False),
        ("src/[ab].ts", "src/b.ts", True),
        ("src/[ab].ts", "src/c.ts", False),
        ("**", "anything/at/all", True),
    ],
)
def test_overlap_cases(a, b, overlap):
    assert Glob(B, a).overlaps(Glob(B, b)) is overlap
    assert Glob(B, b).overlaps(Glob(B, a)) is overlap  # symmetric


def test_overlap_is_on_the_workspace_absolute_path():
    # A domain at the repo root and one in a subdirectory of the same repo.
    assert Glob("/ws/repo", "web/**").overlaps(Glob("/ws/repo/web", "src/x.ts"))
    assert not Glob("/ws/repo", "api/**").overlaps(Glob("/ws/repo/web", "src/x.ts"))
    assert not Glob("/ws/a", "src/**").overlaps(Glob("/ws/b", "src/**"))


# Path segments as agents name them, and characters pathspec treats specially.
_SEG = st.text(alphabet="ab.-_ +(#!é", min_size=1, max_size=4)
_ANY = st.text(alphabet="ab./-_ *?[]\\#!", max_size=12)


@given(
    st.booleans(),
    st.lists(_SEG, min_size=1, max_size=4),
    st.sampled_from(["", "/", "/**"]),
    _ANY,
)
def test_a_plain_patterns_regex_is_pathspecs_own_without_importing_it(lead, segs, end, noise):
    """The fast translation of `src/api/x.py`, `docs/` and `src/**` (no pathspec import on a
    lock acquire) gives pathspec's exact text; what it declines is left to pathspec."""
    from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

    from comm_node_tui.protocol.globs import plain_regex

    def theirs(p: str) -> str | None:
        rx = GitIgnoreBasicPattern(p).regex
        return None if rx is None else rx.pattern.removeprefix("^")

    plain = ("/" if lead else "") + "/".join(segs) + end
    mine = plain_regex(plain)
    if (
        plain.lstrip("/")[0] not in "#!"
        and plain == plain.strip()
        and not any(s in (".", "..") for s in segs)
    ):
        assert mine is not None, plain  # a plain path is never sent to pathspec
    if mine is not None:
        assert mine == theirs(plain), plain
    other = plain_regex(noise)
    if other is not None:
        assert other == theirs(noise), noise


@pytest.fixture
def mono(tmp_path):
    """Two domains sharing one repository, split by scope, and a third elsewhere."""
    root = tmp_path / "mono"
    (root / "repo").mkdir(parents=True)
    (root / "site").mkdir()
    (root / "comm-node.toml").write_text(
        '[project]\nname = "mono"\n'
        '[[domains]]\nname = "api"\npath = "repo"\nscope = ["src/api/**", "docs/api.md"]\n'
        '[[domains]]\nname = "web"\npath = "repo"\nscope = ["src/web/**", "src/shared/**"]\n'
        '[[domains]]\nname = "site"\npath = "site"\n'
    )
    return root


def test_two_domains_in_one_repo_conflict_and_boundary(mono):
    ws = load_workspace(str(mono))
    c = Coordinator(ws)
    api, web = ws.domains["api"], ws.domains["web"]
    c.acquire(api, ["src/api/users.ts"], reason="schema change")
    with pytest.raises(BoundaryError, match=r"outside web's scope .* belongs to domain api"):
        c.acquire(web, ["src/api/**"])
    c.acquire(web, ["src/web/**"])
    # Shared locks coexist; an exclusive one conflicts with a shared one.
    c.acquire(web, ["src/shared/types.ts"], exclusive=False)
    c.acquire(ws.domains["site"], ["**"], exclusive=True)  # its own directory: no overlap
    assert {(lk.holder, lk.pattern) for lk in c.locks()} == {
        ("api", "src/api/users.ts"),
        ("web", "src/web/**"),
        ("web", "src/shared/types.ts"),
        ("site", "**"),
    }


def test_conflict_names_holder_pattern_and_reason(ws_root):
    ws = load_workspace(str(ws_root))
    c = Coordinator(ws)
    be = ws.domains["backend"]
    c.acquire(be, ["src/**"], reason="big refactor")
    # Same holder re-acquiring extends, does not conflict.
    first = c.locks()[0].expires
    time.sleep(0.01)  # time passes: the second acquire's expiry is later than the first's
    c.acquire(be, ["src/**"], ttl=3600)
    assert c.locks()[0].expires > first and len(c.locks()) == 1


def test_shared_and_exclusive_between_domains(mono):
    ws = load_workspace(str(mono))
    text = (
        (mono / "comm-node.toml")
        .read_text()
        .replace(
            'scope = ["src/web/**", "src/shared/**"]', 'scope = ["src/web/**", "src/shared/**"]'
        )
    )
    (mono / "comm-node.toml").write_text(
        text.replace(
            'scope = ["src/api/**", "docs/api.md"]',
            'scope = ["src/api/**", "docs/api.md", "src/shared/**"]',
        )
    )
    ws = load_workspace(str(mono))
    c = Coordinator(ws)
    api, web = ws.domains["api"], ws.domains["web"]
    c.acquire(api, ["src/shared/*.ts"], exclusive=False)
    c.acquire(web, ["src/shared/types.ts"], exclusive=False)  # shared + shared: fine
    with pytest.raises(ConflictError, match=r"conflicts with api holds 'src/shared/\*\.ts'"):
        c.acquire(web, ["src/shared/util.ts"], exclusive=True)
    # All or nothing: one conflicting pattern grants none.
    with pytest.raises(ConflictError):
        c.acquire(web, ["src/web/a.ts", "src/shared/x.ts"])
    assert not any(lk.pattern == "src/web/a.ts" for lk in c.locks())


def test_expiry_restore_and_events(ws_root):
    ws = load_workspace(str(ws_root))
    c = Coordinator(ws)
    c.acquire(ws.domains["backend"], ["src/a.ts"], ttl=0.2)
    c.acquire(ws.domains["backend"], ["src/b.ts"], ttl=600)
    # A new coordinator (a restart) restores from the snapshot, with the stale one expired.
    time.sleep(0.3)  # src/a.ts's 0.2 s TTL runs out: the time is the behaviour under test
    again = Coordinator(load_workspace(str(ws_root)))
    assert [lk.pattern for lk in again.locks()] == ["src/b.ts"]
    data = json.loads((ws_root / ".comm-node" / "locks.json").read_text())
    assert [x["pattern"] for x in data["locks"]] == ["src/b.ts"]
    types = [
        json.loads(x)["type"]
        for x in (ws_root / ".comm-node" / "events.jsonl").read_text().splitlines()
    ]
    assert types == ["lock.granted", "lock.granted", "lock.expired"]


def test_garbage_lock_file_is_reported_not_fatal(ws_root):
    (ws_root / ".comm-node").mkdir(exist_ok=True)
    (ws_root / ".comm-node" / "locks.json").write_bytes(b"\x00{not json")
    c = Coordinator(load_workspace(str(ws_root)))
    assert c.locks() == []
    assert "locks.invalid" in (ws_root / ".comm-node" / "events.jsonl").read_text()


def test_cli_exit_codes_and_json(ws_root, cli):
    be, fe = ws_root / "backend", ws_root / "frontend"
    write_workspace(ws_root, domain_extra={"frontend": 'scope = ["src/**"]'})
    ok = cli("lock", "acquire", "src/**", "--reason", "refactor", "--json", cwd=be)
    assert ok.returncode == 0, ok.stderr
    [lock] = json.loads(ok.stdout)
    assert lock["holder"] == "backend" and lock["exclusive"] is True
    assert lock["reason"] == "refactor" and lock["expires_at"].endswith("Z")
    listed = json.loads(cli("lock", "list", "--json", cwd=fe).stdout)
    assert [
        set(x) >= {"pattern", "holder", "exclusive", "expires_at", "reason"} for x in listed
    ] == [True]
    res = cli("lock", "acquire", "README.md", cwd=fe)
    assert res.returncode == 4 and "outside frontend's scope" in res.stderr
    res = cli("lock", "acquire", "../backend/src/x", cwd=fe)
    assert res.returncode == 4
    assert cli("lock", "release", "src/**", cwd=fe).returncode == 1  # not its lock
    assert cli("lock", "renew", "--ttl", "60", cwd=be).returncode == 0
    assert cli("lock", "release", "--all", cwd=be).returncode == 0
    assert json.loads(cli("lock", "list", "--json", cwd=fe).stdout) == []


def test_conflict_between_processes_exits_3(tmp_path, cli):
    root = tmp_path / "ws"
    (root / "repo").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "p"\n'
        '[[domains]]\nname = "a"\npath = "repo"\nscope = ["src/**"]\n'
        '[[domains]]\nname = "b"\npath = "repo"\nscope = ["src/**"]\n'
    )
    assert (
        cli("lock", "acquire", "src/*.py", "-d", "a", "--reason", "mine", cwd=root).returncode == 0
    )
    res = cli("lock", "acquire", "src/main.py", "-d", "b", cwd=root)
    assert res.returncode == 3
    assert "conflicts with a holds 'src/*.py' (exclusive) for: mine" in res.stderr
