"""Claude Code's Bash sandbox as comm-node writes it (issue 23), on the real pinned CLI in
print mode under the scripted model, with bubblewrap and socat installed (.ci/run): walls
between domains, the agent's own tools working without a prompt, secrets unreadable, and no
start at all when the sandbox cannot run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from comm_node_tui.adapters.claude.sandbox import unavailable_reason, write_sandbox
from comm_node_tui.workspace.discovery import load_workspace
from tests.realclaude import claude_binary, scripted_model
from tests.waiting import wait_for

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
GIT_ID = {
    "GIT_AUTHOR_NAME": "agent",
    "GIT_AUTHOR_EMAIL": "agent@example.invalid",
    "GIT_COMMITTER_NAME": "agent",
    "GIT_COMMITTER_EMAIL": "agent@example.invalid",
}


# A Bash call, then (after its result, in the same turn) a second one: the built-in
# directives answer every other prompt.
SCRIPT = """
[[rules]]
name = "bash-then-bash"
match = '(?m)^CN_BASH (?P<first>.+?) CN_NEXT (?P<second>.+)$'
reply = [{tool = "Bash", input = {command = "{first}"}}]
then = [[{tool = "Bash", input = {command = "{second}"}}]]
"""


# this module's model: the built-in directives and two Bash calls in one turn
model = scripted_model(SCRIPT, "sandbox")


@pytest.fixture(autouse=True)
def short_tmpdir() -> Iterator[str]:
    """Claude Code's sandbox makes its network bridge's Unix sockets under $TMPDIR: a socket
    path is at most 107 bytes, and a pytest folder under xdist is too deep for it ("Failed
    to create bridge sockets after 5 attempts"), so a short private one."""
    folder = tempfile.mkdtemp(prefix="cn-sbx-", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def claude_config(tmp_path, monkeypatch) -> Path:
    """The user's Claude settings comm-node checks for excludedCommands when it writes the
    sandbox: a private folder, never the real ~/.claude."""
    folder = tmp_path / "claude-config"
    folder.mkdir()
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(folder))
    return folder


def sandboxed(real_ws, agents: str = "", before=None):
    """A real workspace with the sandbox on; `before(rw)` runs before the settings are
    written (as `comm-node up` writes them just before an agent starts)."""
    from comm_node_tui.panes.manager import AgentPanes

    rw = real_ws(agents="sandbox = true\n" + agents)
    if before is not None:
        before(rw)
    ws = load_workspace(str(rw.root))
    bin_dir = AgentPanes(ws).cli_dir()  # the `comm-node` on the agent's PATH
    for dom in ws.domains.values():
        assert write_sandbox(ws, dom)["enabled"]
    return rw, bin_dir


def run_bash(
    rw,
    command: str,
    *,
    path: str,
    tmp: str,
    domain: str = "api",
    cwd: Path | None = None,
    args: tuple[str, ...] | list[str] = (),
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`claude -p` in the classic permission mode (a command that needs approval would be
    refused, not run) making one Bash call, `args` added to its command line as `up` adds
    them; (the run, the tool results the model saw)."""
    env = dict(rw.env)
    env.update(GIT_ID)
    env["TMPDIR"] = tmp
    env["PATH"] = path
    env["COMM_NODE_WORKSPACE"] = str(rw.root)
    env["COMM_NODE_DOMAIN"] = domain
    before = len(rw.model.requests())
    res = subprocess.run(
        [claude_binary(), "-p", f"CN_BASH {command}", "--output-format", "json",
         "--permission-mode", "default", *args],
        cwd=cwd or rw.dom(domain),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    results = [e.tool_result or "" for e in rw.model.requests()[before:] if e.kind == "tool_result"]
    return res, results


def events(rw, kind: str) -> list[dict]:
    path = rw.root / ".comm-node" / "events.jsonl"
    if not path.exists():
        return []
    return [e for line in path.read_text().splitlines() if (e := json.loads(line))["type"] == kind]


def test_a_write_into_a_peers_folder_is_refused_and_reported(real_ws, short_tmpdir):
    rw, bin_dir = sandboxed(real_ws)
    target = rw.dom("web") / "src" / "x.ts"
    res, results = run_bash(
        rw, f"touch {target}", path=f"{bin_dir}:{SYSTEM_PATH}", tmp=short_tmpdir
    )
    assert res.returncode == 0, res.stderr
    assert not target.exists()
    assert any("Read-only file system" in r for r in results), results
    refused = events(rw, "boundary.sandbox_refused")
    assert refused and refused[-1]["agent"] == "api", refused
    assert refused[-1]["data"]["path"] == str(target)
    assert refused[-1]["data"]["domain"] == "api"


def test_a_write_in_the_domains_scope_runs_without_a_prompt(real_ws, short_tmpdir):
    rw, bin_dir = sandboxed(real_ws)
    target = rw.dom("api") / "src" / "made.txt"
    res, results = run_bash(
        rw, f"touch {target} && echo made", path=f"{bin_dir}:{SYSTEM_PATH}", tmp=short_tmpdir
    )
    assert res.returncode == 0, res.stderr
    assert target.exists(), results
    assert results == ["made"]
    assert not events(rw, "boundary.sandbox_refused")


def denials(res: subprocess.CompletedProcess) -> list:
    """The calls print mode refused for want of a permission (a prompt, interactively)."""
    return json.loads(res.stdout)["permission_denials"]


def test_compound_commands_in_scope_run_unprompted_and_into_a_peer_are_refused(
    real_ws, short_tmpdir
):
    """`cd X && ... rm`, a variable, a loop: autoAllowBashIfSandboxed alone asked for each
    (it cannot check them statically); the whole Bash tool allowed inside the walls runs
    them with no prompt, and the walls still hold for the same shapes aimed at a peer."""
    rw, bin_dir = sandboxed(real_ws)
    path = f"{bin_dir}:{SYSTEM_PATH}"
    assert "Bash" in json.loads((rw.dom("api") / ".claude" / "settings.json").read_text())[
        "permissions"]["allow"]  # fmt: skip
    res, results = run_bash(
        rw,
        "cd src && git init -q && echo 1 > a.py && git add a.py && git commit -q -m first"
        " && rm -f a.py && for f in x y; do N=$f; echo made-$N; done",
        path=path, tmp=short_tmpdir,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert denials(res) == [] and results == ["made-x\nmade-y"], results
    log = subprocess.run(["git", "-C", str(rw.dom("api") / "src"), "log", "--oneline"],
                         capture_output=True, text=True).stdout  # fmt: skip
    assert "first" in log and not (rw.dom("api") / "src" / "a.py").exists()
    peer = rw.dom("web") / "src"
    (peer / "keep.ts").write_text("kept\n")
    res, results = run_bash(
        rw, "cd ../web/src && rm -f keep.ts; X=1 && touch x$X.ts", path=path, tmp=short_tmpdir
    )
    assert res.returncode == 0, res.stderr
    assert denials(res) == [], results
    assert (peer / "keep.ts").read_text() == "kept\n" and not (peer / "x1.ts").exists()
    assert any("Read-only file system" in r for r in results), results
    # reported to the operator (the path a refusal names is read from the command's output:
    # a relative one after a `cd` is resolved against the agent's folder, docs/security.md)
    assert {e["agent"] for e in events(rw, "boundary.sandbox_refused")} == {"api"}


def test_domains_sharing_a_folder_keep_their_own_scopes_and_a_nested_peer_is_walled(
    real_ws, short_tmpdir
):
    """A monorepo: api (`api/**`) and docs (`**/*.md`) in one folder, web nested in it. Their
    one settings file once held the union of both agents' denies, and api could not write
    `api/` itself; now each writes its own scope, the nested peer stays walled."""
    from comm_node_tui.model import prepare_claude_home

    def monorepo(rw):
        toml = rw.root / "comm-node.toml"
        head, _, rest = toml.read_text().partition("[[domains]]")
        web = "[[domains]]" + rest.split("[[domains]]")[1]  # web's table, as written
        toml.write_text(
            head + '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**"]\n'
            '[[domains]]\nname = "docs"\npath = "."\nscope = ["**/*.md"]\n' + web
        )
        prepare_claude_home(rw.home, rw.model.base_url, trust=[rw.root])

    rw, bin_dir = sandboxed(real_ws, before=monorepo)
    res, results = run_bash(
        rw, "echo x > api/a.py; echo x > notes.md; echo x > web/src/x.ts; echo done",
        path=f"{bin_dir}:{SYSTEM_PATH}", tmp=short_tmpdir, cwd=rw.root,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert denials(res) == [], results
    assert (rw.root / "api" / "a.py").exists(), results
    assert (rw.root / "notes.md").exists()  # docs' scope: not walled from api (said)
    assert not (rw.dom("web") / "src" / "x.ts").exists()
    assert any("x.ts: Read-only file system" in r for r in results), results


def test_domains_sharing_a_folder_are_walled_from_each_other_by_their_own_settings(
    real_ws, short_tmpdir
):
    """A monorepo split by scope (`api/**`, `web/**` in one folder): each agent's own
    `--settings` file denies it the other's folder, on top of the project settings they
    share (still enabled, still failing closed, still walling the store); the agent cannot
    change that file; a refusal is reported naming the domain and the path; no prompt."""
    from comm_node_tui.adapters.claude.settings import install_hooks
    from comm_node_tui.model import prepare_claude_home

    def monorepo(rw):
        toml = rw.root / "comm-node.toml"
        head, _, _rest = toml.read_text().partition("[[domains]]")
        toml.write_text(
            head + '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**"]\n'
            '[[domains]]\nname = "web"\npath = "."\nscope = ["web/**"]\n'
        )
        (rw.root / "api").mkdir(exist_ok=True)
        (rw.root / "web").mkdir(exist_ok=True)
        prepare_claude_home(rw.home, rw.model.base_url, trust=[rw.root])
        # the folder's hooks report the refusals (one settings file for both agents)
        install_hooks(load_workspace(str(rw.root), use_cache=False).domains["api"])

    rw, bin_dir = sandboxed(real_ws, before=monorepo)
    ws = load_workspace(str(rw.root))
    path = f"{bin_dir}:{SYSTEM_PATH}"
    api = write_sandbox(ws, ws.domains["api"])
    assert api["partial"] == [] and api["launch_args"][0] == "--settings", api
    own = Path(api["launch_args"][1])
    assert own.parent == rw.root / ".comm-node" / "sandbox"
    text = own.read_text()
    res, results = run_bash(
        rw, f"echo x > web/x.ts; echo x > api/x.ts; echo x > {own}; rm -f {own}; echo done",
        path=path, tmp=short_tmpdir, cwd=rw.root, args=api["launch_args"],
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert denials(res) == [], results
    assert (rw.root / "api" / "x.ts").read_text() == "x\n", results
    assert not (rw.root / "web" / "x.ts").exists(), results
    assert own.read_text() == text, results
    assert any("web/x.ts: Read-only file system" in r for r in results), results
    refused = events(rw, "boundary.sandbox_refused")
    assert refused and refused[-1]["agent"] == "api", refused
    assert refused[-1]["data"]["domain"] == "api"
    assert refused[-1]["data"]["path"] == str(rw.root / "web" / "x.ts")
    # the other way round, with web's own file
    web = write_sandbox(ws, ws.domains["web"])
    res, results = run_bash(
        rw, "echo y > api/y.ts; echo y > web/y.ts; echo done", path=path, tmp=short_tmpdir,
        cwd=rw.root, domain="web", args=web["launch_args"],
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert denials(res) == [] and results and results[-1].endswith("done"), results
    assert (rw.root / "web" / "y.ts").exists() and not (rw.root / "api" / "y.ts").exists()
    assert events(rw, "boundary.sandbox_refused")[-1]["data"]["path"] == str(
        rw.root / "api" / "y.ts"
    )


def test_a_shared_folders_agent_runs_compound_commands_unprompted_with_its_own_file(
    real_ws, short_tmpdir, tmp_path
):
    """The whole Bash tool allowed in the agent's own `--settings` file (beside its walls
    from its peers), never in the folder's shared settings: merged with the project's
    permissions, `cd api && rm -f x` and a loop run unprompted, the same aimed at the peer
    is refused by the sandbox; without the file (a claude started by hand) it still asks;
    with it and no bubblewrap, still no start at all."""
    from comm_node_tui.adapters.claude.settings import install_hooks
    from comm_node_tui.model import prepare_claude_home

    def monorepo(rw):
        toml = rw.root / "comm-node.toml"
        head, _, _rest = toml.read_text().partition("[[domains]]")
        toml.write_text(
            head + '[[domains]]\nname = "api"\npath = "."\nscope = ["api/**"]\n'
            '[[domains]]\nname = "web"\npath = "."\nscope = ["web/**"]\n'
        )
        (rw.root / "api").mkdir(exist_ok=True)
        (rw.root / "web").mkdir(exist_ok=True)
        prepare_claude_home(rw.home, rw.model.base_url, trust=[rw.root])
        install_hooks(load_workspace(str(rw.root), use_cache=False).domains["api"])

    rw, bin_dir = sandboxed(real_ws, before=monorepo)
    ws = load_workspace(str(rw.root))
    path = f"{bin_dir}:{SYSTEM_PATH}"
    api = write_sandbox(ws, ws.domains["api"])
    assert api["prompts"] is None, api
    own = Path(api["launch_args"][1])
    assert json.loads(own.read_text())["permissions"] == {"allow": ["Bash"]}
    shared = json.loads((rw.root / ".claude" / "settings.json").read_text())
    assert "Bash" not in shared["permissions"]["allow"]
    (rw.root / "api" / "x").write_text("x\n")
    (rw.root / "web" / "keep").write_text("kept\n")
    text = own.read_text()
    res, results = run_bash(
        rw, "cd api && rm -f x && for f in a b; do N=$f; echo made-$N; done",
        path=path, tmp=short_tmpdir, cwd=rw.root, args=api["launch_args"],
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert denials(res) == [] and results == ["made-a\nmade-b"], results
    assert not (rw.root / "api" / "x").exists()
    res, results = run_bash(
        rw, f"cd web && rm -f keep; X=1 && touch x$X.ts; echo y > {own}; echo tried",
        path=path, tmp=short_tmpdir, cwd=rw.root, args=api["launch_args"],
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert denials(res) == [], results
    assert (rw.root / "web" / "keep").read_text() == "kept\n", results
    assert not (rw.root / "web" / "x1.ts").exists() and own.read_text() == text, results
    assert any("Read-only file system" in r for r in results), results
    # a claude started by hand in the folder reads neither the walls nor the rule: it asks
    res, results = run_bash(
        rw, "cd web && rm -f keep && echo removed", path=path, tmp=short_tmpdir, cwd=rw.root
    )
    assert res.returncode == 0, res.stderr
    assert [d["tool_name"] for d in denials(res)] == ["Bash"], results
    assert (rw.root / "web" / "keep").exists()
    # the rule never outlives the sandbox: without bubblewrap the agent does not start
    no_bwrap = tmp_path / "no-bwrap"
    no_bwrap.mkdir()
    for folder in SYSTEM_PATH.split(":"):
        for entry in os.scandir(folder) if os.path.isdir(folder) else ():
            link = no_bwrap / entry.name
            if entry.name != "bwrap" and not link.exists():
                link.symlink_to(entry.path)
    res, results = run_bash(
        rw, "touch api/ran.txt", path=f"{bin_dir}:{no_bwrap}", tmp=short_tmpdir, cwd=rw.root,
        args=api["launch_args"],
    )  # fmt: skip
    assert res.returncode != 0 and "sandbox required but unavailable" in res.stderr
    assert not (rw.root / "api" / "ran.txt").exists() and results == []


def test_a_glob_in_deny_write_is_ignored_by_claude_code(real_ws, short_tmpdir):
    """Why a peer's scope such as `**/*.md` cannot be walled: Claude Code 2.1.330 ignores
    globs in filesystem.denyWrite on Linux, a literal path beside them is honoured."""

    def plant(rw):
        (rw.dom("api") / "notes").mkdir()
        (rw.dom("api") / "notes" / "guide.md").write_text("the guide\n")
        (rw.dom("api") / "notes" / "kept.md").write_text("kept\n")

    rw, bin_dir = sandboxed(real_ws, before=plant)
    notes = rw.dom("api") / "notes"
    settings = rw.dom("api") / ".claude" / "settings.json"
    data = json.loads(settings.read_text())
    data["sandbox"]["filesystem"]["denyWrite"] += [
        f"{rw.dom('api')}/**/*.md", f"{notes}/*.md", str(notes / "kept.md")
    ]  # fmt: skip
    settings.write_text(json.dumps(data))
    res, results = run_bash(
        rw, "echo x >> notes/guide.md; echo x >> notes/kept.md; echo done",
        path=f"{bin_dir}:{SYSTEM_PATH}", tmp=short_tmpdir,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert denials(res) == [], results
    assert (notes / "guide.md").read_text() == "the guide\nx\n", results  # globs: ignored
    assert (notes / "kept.md").read_text() == "kept\n", results  # the literal path: denied
    assert any("kept.md: Read-only file system" in r for r in results), results


def test_the_agents_comm_node_calls_work_inside_the_sandbox_without_a_prompt(real_ws, short_tmpdir):
    rw, bin_dir = sandboxed(real_ws)
    path = f"{bin_dir}:{SYSTEM_PATH}"
    _res, sent = run_bash(
        rw, 'comm-node send --to web "the contract changed"', path=path, tmp=short_tmpdir
    )
    assert sent and sent[0].startswith("queued "), sent
    assert list((rw.dom("api") / ".comm-node" / "outbox").glob("*.md"))
    _res, locked = run_bash(rw, "comm-node lock acquire src/a.py", path=path, tmp=short_tmpdir)
    assert locked and locked[0].startswith("granted 'src/a.py' to api"), locked
    locks = json.loads((rw.root / ".comm-node" / "locks.json").read_text())
    assert "src/a.py" in json.dumps(locks)
    # what the sandbox keeps from the agent: the `comm-node` its hooks run outside it
    script = Path(bin_dir) / "comm-node"
    text = script.read_text()
    _res, refused = run_bash(rw, f"echo 'exit 0' > {script}", path=path, tmp=short_tmpdir)
    assert script.read_text() == text, refused


def test_a_secret_path_cannot_be_read(real_ws, short_tmpdir):
    def plant(rw):
        (rw.home / ".ssh").mkdir()
        (rw.home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY-MATERIAL")

    rw, bin_dir = sandboxed(real_ws, before=plant)  # ~/.ssh is denied by default
    key = rw.home / ".ssh" / "id_ed25519"  # rw.home is the agent's HOME: never the real ~
    res, results = run_bash(rw, f"cat {key}", path=f"{bin_dir}:{SYSTEM_PATH}", tmp=short_tmpdir)
    assert res.returncode == 0, res.stderr
    assert results and not any("PRIVATE-KEY-MATERIAL" in r for r in results), results


def test_git_commits_in_the_agents_own_worktree(real_ws, short_tmpdir, tmp_path):
    main = tmp_path / "main"

    def worktree(rw):
        subprocess.run(["git", "init", "-q", str(main)], check=True)
        env = {**os.environ, **GIT_ID}
        subprocess.run(["git", "-C", str(main), "commit", "-q", "--allow-empty", "-m", "i"],
                       check=True, env=env)  # fmt: skip
        shutil.rmtree(rw.dom("api"))
        subprocess.run(["git", "-C", str(main), "worktree", "add", "-q", "-b", "api",
                        str(rw.dom("api"))], check=True)  # fmt: skip
        (rw.dom("api") / "src").mkdir()
        (rw.dom("api") / "src" / "a.py").write_text("x = 1\n")

    rw, bin_dir = sandboxed(real_ws, before=worktree)
    # `git add -A` at the worktree's top would meet the files Claude Code's sandbox itself
    # masks there (.bashrc, .gitconfig ... as /dev/null): an agent adds its own paths
    res, results = run_bash(
        rw, "git add src && git commit -q -m 'from the sandbox' && echo committed",
        path=f"{bin_dir}:{SYSTEM_PATH}", tmp=short_tmpdir,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    log = subprocess.run(
        ["git", "-C", str(main), "log", "--oneline", "api"], capture_output=True, text=True
    ).stdout
    assert "from the sandbox" in log, (results, log)


def test_the_sandbox_fails_closed_without_bubblewrap(real_ws, short_tmpdir, tmp_path):
    rw, bin_dir = sandboxed(real_ws)
    no_bwrap = tmp_path / "no-bwrap"
    no_bwrap.mkdir()
    for folder in SYSTEM_PATH.split(":"):
        for entry in os.scandir(folder) if os.path.isdir(folder) else ():
            link = no_bwrap / entry.name
            if entry.name != "bwrap" and not link.exists():
                link.symlink_to(entry.path)
    path = f"{bin_dir}:{no_bwrap}"
    assert unavailable_reason(path) == "bwrap not installed (apt install bubblewrap)"
    target = rw.dom("api") / "src" / "ran.txt"
    res, results = run_bash(rw, f"touch {target}", path=path, tmp=short_tmpdir)
    assert res.returncode != 0
    assert "sandbox required but unavailable" in res.stderr and "bwrap" in res.stderr
    assert not target.exists() and results == []


def test_an_agent_started_by_comm_node_runs_walled_and_unprompted_in_its_pane(real_ws):
    """The production path: `up` writes the sandbox before the agent starts; in its pane
    (classic permission mode) the agent's own `comm-node send` runs with no dialog and a
    write into a peer's folder is refused and reported."""
    from comm_node_tui.panes.manager import AgentPanes
    from tests.realclaude import wait_screen
    from tests.waiting import wait_for

    rw = real_ws(agents="sandbox = true")
    ap = AgentPanes(load_workspace(str(rw.root)))
    ap.up(["api"])
    box = json.loads((rw.dom("api") / ".claude" / "settings.json").read_text())["sandbox"]
    assert box["enabled"] and box["failIfUnavailable"]
    assert not box["allowUnsandboxedCommands"]
    wait_screen(ap, "api", lambda s: "❯\u00a0" in s, timeout=60)
    from comm_node_tui.panes.inject import NotDelivered

    outbox = rw.dom("api") / ".comm-node" / "outbox"
    prompt = 'CN_BASH comm-node send --to web "hello from the sandbox"'
    tries: list[str] = []

    def delivered() -> bool:
        # Observed: the first text typed after the prompt appears can vanish from the box
        # while Claude Code sets its sandbox up; an empty box is typed into again. On a
        # loaded machine the paste can also show after inject() gave up on it ("not_typed"):
        # then it is in the box, and only Enter is missing.
        if list(outbox.glob("*.md")):
            return True
        pane = ap.pane("api")
        if ap.cli.input_pending(ap.tmux.capture(pane.id), prompt):
            tries.append("enter")
            ap.tmux.cmd("send-keys", "-t", pane.id, "Enter")
            return False
        try:
            ap.inject("api", prompt)
        except NotDelivered as exc:
            tries.append(exc.reason)
            if exc.reason == "dialog":
                raise
            return False
        tries.append("submitted")
        return False  # the outbox says when the command ran

    wait_for(delivered, timeout=90, every=1.0, what="the message in the outbox", show=lambda: tries)
    target = rw.dom("web") / "src" / "x.ts"
    wait_screen(ap, "api", lambda s: "esc to interrupt" not in s, timeout=60)
    ap.inject("api", f"CN_BASH touch {target}")
    wait_for(lambda: events(rw, "boundary.sandbox_refused"), timeout=60, what="the refusal event")
    assert "Do you want to proceed?" not in ap.peek("api")
    assert not target.exists()
    assert events(rw, "boundary.sandbox_refused")[-1]["data"]["path"] == str(target)


def bash_while_the_host_acts(rw, bin_dir, tmp: str, act, then: str, next_call: str = ""):
    """One sandboxed Bash call that starts, waits until the host has done `act()` (in a
    thread, as the operator or another command would meanwhile), then runs `then`: the
    sandbox it runs in was set up before the host's change; with `next_call`, the agent's
    next Bash call in the same turn. (the run, the tool results)"""
    import threading

    started, go = rw.dom("api") / "started", rw.dom("api") / "go"
    command = (
        f"touch {started}; i=0; "
        f"while [ ! -e {go} ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i+1)); done; {then}"
    )

    def host() -> None:
        wait_for(started.exists, timeout=90)
        try:
            act()
        finally:
            go.touch()

    thread = threading.Thread(target=host, daemon=True)
    thread.start()
    if next_call:
        command += f" CN_NEXT {next_call}"  # SCRIPT's rule
    out = run_bash(rw, command, path=f"{bin_dir}:{SYSTEM_PATH}", tmp=tmp)
    thread.join(120)
    return out


def test_the_config_cache_stays_walled_while_the_host_rewrites_it_under_a_running_command(
    real_ws, short_tmpdir
):
    """Every command trusts the config cache. A read-only mount of a single file is gone, in
    a sandbox already running, once the host renames a new version over it (as every write
    of the cache does): a command waiting for that could write `sandbox = false` for the next
    start (found by a review on this CLI and bwrap). The cache lives in a folder walled as a
    whole, which a rename inside it does not undo."""
    rw, bin_dir = sandboxed(real_ws)
    cache = Path(load_workspace(str(rw.root)).paths.config_cache)
    assert cache.exists() and cache.parent.name == "guarded"
    forge = (
        "import json,sys; p=sys.argv[1]; d=json.load(open(p)); "
        'd["config"]["agents"]["sandbox"]=False; open(p,"w").write(json.dumps(d)); print("forged")'
    )
    rewritten: list[bool] = []

    def recache() -> None:  # the operator edits comm-node.toml; the next command caches it
        toml = rw.root / "comm-node.toml"
        toml.write_text(toml.read_text() + "\n# edited while the agent works\n")
        before = cache.stat().st_ino
        load_workspace(str(rw.root))
        rewritten.append(cache.stat().st_ino != before)  # renamed over: a new file

    res, results = bash_while_the_host_acts(
        rw, bin_dir, short_tmpdir, recache, f"python3 -c '{forge}' {cache} 2>&1 | tail -1"
    )
    assert res.returncode == 0, res.stderr
    assert rewritten == [True], "the host never rewrote the cache under the running command"
    assert results and "Read-only file system" in results[-1], results
    assert load_workspace(str(rw.root)).settings.agents.sandbox is True


def test_an_agent_cannot_lift_a_pause_the_operator_makes_while_its_command_runs(
    real_ws, short_tmpdir
):
    """The operator pauses an agent whose Bash command is running (the first pause: no file
    when the agent started, so a file wall would have had nothing to bind); the command then
    tries to remove and overwrite the pause: both refused, the pause holds."""
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.coordination.operator import pause
    from comm_node_tui.coordination.pause import pause_path, read_pause

    rw, bin_dir = sandboxed(real_ws)
    ws = load_workspace(str(rw.root))
    target = pause_path(ws.paths.state)
    assert not os.path.exists(target)
    res, results = bash_while_the_host_acts(
        rw,
        bin_dir,
        short_tmpdir,
        lambda: pause(Coordinator(ws), ["api"]),
        f"rm -f {target} 2>&1 | tail -1; echo '{{}}' > {target} 2>&1 | tail -1; echo done",
    )
    assert res.returncode == 0, res.stderr
    assert results and results[-1].count("Read-only file system") == 2, results
    assert read_pause(ws.paths.state).domains == ("api",)


FORGE_BUDGET = """
import glob, json, os, sys

state = sys.argv[1]
forged = {"domain": "api", "tokens": 10**9, "by": "operator", "reason": "mine", "ts": "t"}
unspent = {"carry": "api", "spent": -(10**9), "sent": 0, "answered": 0}


def grant(text):
    return json.dumps({"grants": [*json.loads(text)["grants"], forged]})


def unspend(text):
    return text + json.dumps(unspent) + "\\n"


for name, change in (("budget-grants.json", grant), ("ledger.jsonl", unspend)):
    for path in sorted(glob.glob(os.path.join(state, "**", name), recursive=True)):
        try:
            text = open(path).read()
            open(path, "w").write(change(text))
            print("forged", path)
        except OSError as exc:
            print(exc.strerror, path)
    old = os.path.join(state, name)
    if not os.path.exists(old):  # where an older comm-node kept it: the folder is writable
        open(old, "w").write(change(json.dumps({"grants": []}) if "grants" in name else ""))
        print("planted", old)
"""


def test_an_agent_cannot_grant_itself_budget_or_unspend_when_the_host_rewrites_under_its_command(
    real_ws, short_tmpdir
):
    """The operator grants budget and the engine compacts its journal while an agent's Bash
    command runs: each renames a new file in, which undid a single file's read-only mount in
    the running sandbox (an agent could then grant itself budget, or write off what it had
    spent). The command then forges a grant and a spending carry into every such file it
    finds and plants both where an older comm-node kept them: nothing of it counts."""
    from comm_node_tui.coordination.coordinator import Coordinator, budget_view, grant_budget
    from comm_node_tui.coordination.ledger import Ledger

    def budget(rw) -> tuple[int, int]:
        ws = load_workspace(str(rw.root))
        mine = {b["domain"]: b for b in budget_view(ws)}["api"]
        return mine["granted_tokens"], mine["spent_tokens"]

    def before_start(rw) -> None:  # a grants file and a journal exist when the agent starts
        state = load_workspace(str(rw.root)).paths.state
        grant_budget(Coordinator(load_workspace(str(rw.root))), "api", 100, "before")
        ledger = Ledger.in_store(state)
        ledger.record({"id": "m-1", "from": "api", "cost": 500, "outcome": "routed"})
        ledger.close()

    def host() -> None:  # the operator's grant; an engine's start compacts the journal
        state = load_workspace(str(rw.root)).paths.state
        grant_budget(Coordinator(load_workspace(str(rw.root))), "api", 100, "during")
        ledger = Ledger.in_store(state)
        ledger.load()
        ledger.compact(keep_ids=set())

    rw, bin_dir = sandboxed(real_ws, agents="budget_tokens = 1000\n", before=before_start)
    assert budget(rw) == (100, 500)
    forge = rw.dom("api") / "forge.py"
    forge.write_text(FORGE_BUDGET)
    state = load_workspace(str(rw.root)).paths.state
    res, results = bash_while_the_host_acts(
        rw, bin_dir, short_tmpdir, host, f"python3 {forge} {state} 2>&1"
    )
    assert res.returncode == 0, res.stderr
    assert results, res.stdout
    # the operator's two grants, the 500 spent: nothing forged counts
    assert budget(rw) == (200, 500), results[-1]
    assert "forged" not in results[-1], results[-1]
    assert results[-1].count("Read-only file system") == 2, results[-1]


UNPAUSE = """
import glob, json, os, sys

state, own = sys.argv[1], sys.argv[2]
unpaused = {"domain": "api", "work": None}
for path in sorted(glob.glob(os.path.join(state, "**", "budget*.json"), recursive=True)):
    if "grants" in path:
        continue
    try:
        open(path, "w").write(json.dumps(unpaused))
        print("forged", path)
    except OSError as exc:
        print(exc.strerror, path)
old = os.path.join(own, ".comm-node", "budget.json")  # where an older comm-node kept it
try:
    open(old, "w").write(json.dumps(unpaused))
    print("planted", old)
except OSError as exc:
    print(exc.strerror, old)
"""


def test_an_agent_cannot_lift_its_work_budgets_pause_made_while_its_command_runs(
    real_ws, short_tmpdir
):
    """The engine pauses an agent for its spent work budget while the agent's Bash command
    runs (the first budget file: none when the agent started); the command then rewrites
    every budget file it finds as unpaused and writes one where an older comm-node kept it,
    in its own folder: the pause holds, the agent's next tool call is refused by the hook.
    (Before, the hooks read the pause from the agent's own folder: it lifted it.)"""
    from comm_node_tui.coordination.budgets import Budgets
    from comm_node_tui.coordination.ledger import Ledger

    def engine_pauses() -> None:  # as the usage monitor holds the agent to its budget
        ws = load_workspace(str(rw.root))
        ledger = Ledger.in_store(ws.paths.state)
        budgets = Budgets(ws, ledger)
        budgets.work["api"] = {"limit": 10, "used": 12, "exhausted": True, "policy": "pause"}
        budgets.touched("api")
        budgets.flush()
        ledger.close()

    rw, bin_dir = sandboxed(real_ws)
    forge = rw.dom("api") / "unpause.py"
    forge.write_text(UNPAUSE)
    state = load_workspace(str(rw.root)).paths.state
    marker = rw.dom("api") / "ran"
    res, results = bash_while_the_host_acts(
        rw,
        bin_dir,
        short_tmpdir,
        engine_pauses,
        f"python3 {forge} {state} {rw.dom('api')} 2>&1",
        next_call=f"touch {marker}",
    )
    assert res.returncode == 0, res.stderr
    assert len(results) == 2, results
    assert "work budget is spent" in results[1], results  # the pause held
    assert not marker.exists()
    assert "forged" not in results[0], results[0]
    assert "Read-only file system" in results[0] and "planted" in results[0], results[0]
