"""Each domain's Claude Code sandbox, built from its scope (issue 23, docs/security.md).

Claude Code 2.1.330 runs every Bash command in bubblewrap when `sandbox.enabled` is set
(Linux: bwrap and socat on PATH). By default a sandboxed command may write only in the folder
Claude Code started in (the domain's) and its temporary folder; everything else is read-only.
comm-node adds what the agent's own tools need and takes away what belongs to its peers:

- allowWrite: the workspace's `.comm-node/` (the coordination store `comm-node lock/task/
  budget ...` change under a flock, the event log they append to) and the repository's git
  folders when they lie outside the domain's folder (a worktree's `.git/worktrees/<name>`
  and the shared objects and refs), so `git commit` works;
- denyWrite: the parts of that store an agent must never change (the `bin/comm-node` its
  hooks run outside the sandbox, the config cache, pauses, budget grants, each domain's
  budget (its work-budget pause), the engine's pid and ledger, the operator's mailbox, the
  agents' own settings files below) and every peer domain's folder nested in this
  domain's folder;
- domains sharing one folder (a monorepo split by scope) share its `.claude/settings.json`,
  so a wall between them cannot be there (it would wall each agent out of its own scope
  too): each agent gets its own file, `<workspace>/.comm-node/sandbox/<name>.json`, holding
  of `sandbox` only `filesystem.denyWrite` of its peers' scope folders (and the Bash rule
  below), passed at launch with
  `claude --settings FILE`; Claude Code 2.1.330 adds that list to the project's and keeps
  every project value (checked on the real CLI, docs/claude-code.md). Only a scope that
  names one folder or file can be walled (`api/**`, `/web/`, `docs/guide.md`): Claude Code
  ignores globs in denyWrite, and gitignore's `web/` matches a `web` folder at any depth;
  the rest is said (peer_coverage);
- denyRead: `[agents] sandbox_deny_read` (keys and credentials under ~);
- network: `[agents] sandbox_network` only (Claude Code itself reaches its model from
  outside the sandbox: nothing is needed for that);
- failIfUnavailable on and allowUnsandboxedCommands off: no command ever runs unsandboxed;
- the permission rule `Bash` (the whole tool) in `permissions.allow`: `autoAllowBashIfSandboxed`
  alone still asks for a command whose parts it cannot check statically (`cd X && rm ...`,
  `FOO=1 cmd`, a loop, a `{ ...; }` group), and no narrower rule lifts those asks (checked on
  2.1.330, docs/claude-code.md). Inside walls that hold for every command the prompt guards
  nothing the walls do not, so it is written only while they do: no `excludedCommands` in
  any settings Claude Code merges (an excluded command runs outside the sandbox and would
  then run unasked), the fail-closed switches as comm-node sets them, and every peer
  sharing the folder walled off. In a shared folder the rule goes into the agent's own
  `--settings` file, beside the walls that only an agent started with that file has (a
  `claude` started there by hand reads the shared settings alone, walled from no peer, and
  keeps its prompts); 2.1.330 merges it with the project's permissions and keeps the
  project's sandbox on and failing closed (checked on the real CLI, docs/claude-code.md).

Every value lives in the project settings Claude Code reads (`.claude/settings.json`, merged
there with the user's own, never clobbering them); what comm-node wrote (its part of
`sandbox` and the allow rule) is recorded beside it, one record per settings file
(`<folder>/.comm-node/sandbox.json`, `{"sandbox": ..., "allow": [...]}`; an older record is
the `sandbox` part alone, and one written before domains sharing a folder shared it sits in
the domain's own protocol folder) so a later write or `sandbox = false` takes out exactly
that and nothing of the user's.

Domains sharing a folder share that file and so its sandbox: it holds what every domain of
the folder still installed with `sandbox = true` wants. One domain's `sandbox = false`, its
`hooks uninstall` or a write for it never takes out what a peer still relies on (the peer's
next start would run unwalled); the shared part goes with the last domain that wants it. A
domain taken out by `hooks uninstall` is marked so in its protocol folder (UNINSTALLED) until
it is installed or started again, so the next uninstall of a peer knows it is the last.
Checked on the real CLI: docs/claude-code.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from comm_node_tui.adapters.claude.settings import _load, _write, settings_path, settings_text
from comm_node_tui.protocol import guarded
from comm_node_tui.protocol.fileio import atomic_write, read_json_bounded
from comm_node_tui.protocol.paths import STATE_DIR
from comm_node_tui.workspace.model import Domain, Workspace

# What Claude Code needs on Linux to start its sandbox (its own error names both).
TOOLS = ("bwrap", "socat")
RECORD = "sandbox.json"  # in the folder's .comm-node/: what comm-node merged into its settings
# In a shared folder's domain's protocol folder: `hooks uninstall` took it out (module docstring)
UNINSTALLED = "uninstalled"
# In the workspace's .comm-node/: written by the engine or the operator only. A sandboxed
# agent that could change these would run code outside the sandbox (bin/comm-node is what
# its hooks execute), lift its own pause or grant itself budget.
PROTECTED_STATE = (
    "bin",
    # the config cache, the operator's pause, the budget grants, the routing journal and
    # each domain's budget with its work-budget pause (paths.guarded, protocol/guarded.py):
    # a folder, not files. A sandboxed command running while the host rewrote one (a
    # rename, which drops a single file's read-only mount) could write "sandbox = false"
    # for the next start, lift its own pause, grant itself budget or write off what it
    # spent; a first pause or grant made after the agent started is walled too.
    "guarded",
    "paused.json",  # an older comm-node's, in force until the next pause or resume
    # an older comm-node's grants and routing journal (what each domain spent): write_sandbox
    # moves them into guarded/ before the agent starts (guarded.settle), so these are denied
    # only if the move could not take them
    "budget-grants.json",
    "ledger.jsonl",
    # the engine's flock, written in place (never renamed over: the file's wall holds); it
    # stays here, not in guarded/, so an older comm-node's engine locks the same file
    "engine.pid",
    "archive",
    "operator",
    "sandbox",  # AGENT_DIR: each agent's own --settings file
    # an older comm-node's cursor of this engine's shared events (cluster/events.py), moved
    # into guarded/ before the agent starts like the grants. (The other machines' agents as
    # this engine received them, cluster-agents.json, are in guarded/ too; an older
    # comm-node's copy is never read.)
    "cluster-events.json",
    # the other machines' events as received, with their rotations (cluster/remote_log.py)
    "remote.d",
)
AGENT_DIR = "sandbox"
SCALARS = {
    "enabled": True,
    # the agent's own commands run without "This command requires approval": the walls
    # stop what they must not do
    "autoAllowBashIfSandboxed": True,
    "failIfUnavailable": True,  # fail closed: Claude Code exits rather than run unwalled
    "allowUnsandboxedCommands": False,  # dangerouslyDisableSandbox is ignored
}


# The whole Bash tool: see the module's docstring for when it is written.
ALLOW_ALL_BASH = "Bash"
MANAGED_DIR = "/etc/claude-code"  # Claude Code's managed settings on Linux


def missing_tools(path: str | None = None) -> list[str]:
    """The programs the sandbox needs that are not on PATH (Debian: bubblewrap, socat)."""
    return [tool for tool in TOOLS if shutil.which(tool, path=path) is None]


def unavailable_reason(path: str | None = None) -> str | None:
    """One line for the operator when the sandbox cannot start here; None when it can."""
    missing = missing_tools(path)
    if not missing:
        return None
    packages = " ".join("bubblewrap" if t == "bwrap" else t for t in missing)
    return f"{', '.join(missing)} not installed (apt install {packages})"


def probe(path: str | None = None) -> str | None:
    """Why bubblewrap cannot make a sandbox here (one line: no user namespaces in a
    container, say), None when it can: the walls Claude Code builds, in small."""
    bwrap = shutil.which("bwrap", path=path)
    if bwrap is None:
        return unavailable_reason(path)
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "--unshare-net"]
    try:
        res = subprocess.run(
            [*argv, "true"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{bwrap} did not run: {exc}"
    if res.returncode == 0:
        return None
    last = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
    return f"{bwrap} cannot make a sandbox here: {last}"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def git_dirs(folder: str) -> list[str]:
    """The repository folders git writes for a commit in `folder` that lie outside it (a
    worktree's own git dir and the common one); [] outside a repository."""
    try:
        res = subprocess.run(
            ["git", "-C", folder, "rev-parse", "--absolute-git-dir", "--git-common-dir"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if res.returncode != 0:
        return []
    found = []
    for line in res.stdout.splitlines():
        line = line.strip()
        if line:
            path = os.path.realpath(line if os.path.isabs(line) else os.path.join(folder, line))
            if not _inside(path, folder):
                found.append(path)
    return list(dict.fromkeys(found))


def scope_wall(base: str, pattern: str) -> tuple[str | None, str | None]:
    """(the one path a scope pattern names under `base`, why it cannot be walled): a
    pattern of literal segments, anchored (a slash inside or in front), names one folder or
    file; a wildcard (`**/*.md`) or a bare name (`web/`, gitignore: at any depth) does not."""
    from comm_node_tui.protocol.globs import WILD, normalize

    segs = list(normalize(pattern))
    if segs and segs[-1] == "**":
        segs.pop()
    if not segs or any(seg == "**" or any(c in WILD for c in seg) for seg in segs):
        if len(segs) == 2 and segs[0] == "**" and not any(c in WILD for c in segs[1]):
            return None, (
                f"matches a {segs[1]} at any depth (gitignore rules; `/{segs[1]}/` or "
                f"`{segs[1]}/**` names one folder)"
            )
        return None, "is a pattern (Claude Code ignores globs in denyWrite)"
    return os.path.join(base, *segs), None


def _shared_walls(ws: Workspace, dom: Domain) -> tuple[list[str], list[str]]:
    """(the scope paths of the peers sharing `dom`'s folder that its own settings file
    denies, one line per such peer scope that cannot be denied)."""
    deny: list[str] = []
    gaps: list[str] = []
    own = []
    for pattern in dom.scope:
        path, _why = scope_wall(dom.path, pattern)
        # the folder a wildcard scope starts in (`src/**/*.py`: src) is its own too
        own.append(path or _literal_head(dom.path, pattern))
    for peer in ws.domains.values():
        if peer.name == dom.name or peer.path != dom.path:
            continue
        for pattern in peer.scope:
            path, why = scope_wall(peer.path, pattern)
            if path is not None and any(_inside(mine, path) for mine in own):
                why = f"holds part of {dom.name}'s own scope"
            elif path is not None and not os.path.lexists(path):
                # Claude Code binds /dev/null over a denied path that does not exist:
                # the peer itself would then find a device there (module docstring)
                why = "does not exist yet (walled once it does, at the next start)"
            if why is None and path is not None:
                deny.append(path)
            else:
                gaps.append(
                    f"{peer.name}'s scope {pattern} {why}: not walled from {dom.name} "
                    "by the sandbox"
                )
    return list(dict.fromkeys(deny)), gaps


def _literal_head(base: str, pattern: str) -> str:
    from comm_node_tui.protocol.globs import WILD, normalize

    head = []
    for seg in normalize(pattern):
        if seg == "**" or any(c in WILD for c in seg):
            break
        head.append(seg)
    return os.path.join(base, *head)


def peer_coverage(ws: Workspace, dom: Domain) -> tuple[list[str], list[str]]:
    """(the peers' folders inside this domain's folder, writable by default there, so denied
    by name in its settings.json; one line per peer scope the sandbox cannot wall off from
    this domain). Peers sharing the folder are walled in the agent's own settings file
    (_shared_walls, agent_settings)."""
    out: list[str] = []
    for peer in ws.domains.values():
        if peer.name != dom.name and peer.path != dom.path and _inside(peer.path, dom.path):
            out.append(peer.path)
    return list(dict.fromkeys(out)), _shared_walls(ws, dom)[1]


def agent_settings_path(ws: Workspace, dom: Domain) -> str:
    """The agent's own settings file, passed with `--settings` (only domains sharing a
    folder have one): in the store's denied part, so the agent cannot change its walls."""
    return os.path.join(ws.paths.state, AGENT_DIR, f"{dom.name}.json")


def agent_settings(ws: Workspace, dom: Domain, bash: bool = False) -> dict | None:
    """What the agent's own settings file holds: the denyWrite list alone in `sandbox` (any
    other sandbox key there makes 2.1.330 ignore project values, docs/claude-code.md), and
    with `bash` the whole-tool rule (see the module docstring); None when it needs none."""
    if not dom.sandbox:
        return None
    deny = _shared_walls(ws, dom)[0]
    if not deny:
        return None
    data: dict = {"sandbox": {"filesystem": {"denyWrite": deny}}}
    if bash:
        data["permissions"] = {"allow": [ALLOW_ALL_BASH]}
    return data


def _agent_text(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _agent_stale(ws: Workspace, dom: Domain, bash: bool) -> bool:
    want = agent_settings(ws, dom, bash)
    path = agent_settings_path(ws, dom)
    if want is None:
        return os.path.lexists(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read() != _agent_text(want)
    except OSError:
        return True


def _write_agent_settings(ws: Workspace, dom: Domain, bash: bool) -> list[str]:
    """Write (or take out) the agent's own settings file; the launch arguments naming it."""
    want = agent_settings(ws, dom, bash)
    path = agent_settings_path(ws, dom)
    if want is None:
        if os.path.lexists(path):
            os.unlink(path)
        return []
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if _agent_stale(ws, dom, bash):
        atomic_write(path, _agent_text(want), mode=0o644)
    return ["--settings", path]


def peer_denies(ws: Workspace, dom: Domain) -> list[str]:
    """Peers' folders nested in this domain's folder: writable by default there, so denied
    by name."""
    return peer_coverage(ws, dom)[0]


def sandbox_block(ws: Workspace, dom: Domain) -> dict:
    """The `sandbox` settings comm-node wants for `dom`."""
    state = ws.paths.state
    allow = [state] + [d for d in git_dirs(dom.path) if not _inside(d, dom.path)]
    # Only what exists: Claude Code binds /dev/null over a denied path that does not, and
    # inside the sandbox that reads as "Permission denied" (a missing paused.json read that
    # way would look like a pause of everyone to the agent's own `comm-node` calls). The
    # settings are written again at each start, so a file made since is covered then.
    deny = [p for name in PROTECTED_STATE if os.path.lexists(p := os.path.join(state, name))]
    deny += peer_denies(ws, dom)
    agents = ws.settings.agents
    block: dict = dict(SCALARS)
    block["filesystem"] = {
        "allowWrite": list(dict.fromkeys(allow)),
        "denyWrite": list(dict.fromkeys(deny)),
        "denyRead": list(agents.sandbox_deny_read),
    }
    block["network"] = {"allowedDomains": list(agents.sandbox_network)}
    return block


def _record_path(dom: Domain) -> str:
    """The record of what comm-node wrote into `dom`'s settings file: one per file, so the
    domains sharing a folder share it (for a domain alone in its folder: its protocol
    folder's, as before)."""
    return os.path.join(dom.path, STATE_DIR, RECORD)


def _sharing(ws: Workspace, dom: Domain) -> list[Domain]:
    """The domains whose agents read `dom`'s settings file (`dom` among them)."""
    return [d for d in ws.domains.values() if d.path == dom.path]


def _record_paths(ws: Workspace, dom: Domain) -> list[str]:
    """The file's record and, before the folder's domains shared one, each one's own."""
    own = [os.path.join(d.paths.dir, RECORD) for d in _sharing(ws, dom)]
    return list(dict.fromkeys([_record_path(dom), *own]))


def _uninstalled_path(dom: Domain) -> str:
    return os.path.join(dom.paths.dir, UNINSTALLED)


def installed_peers(ws: Workspace, dom: Domain, leaving: tuple[str, ...] = ()) -> list[Domain]:
    """The other domains of `dom`'s settings file still installed (not taken out by `hooks
    uninstall`, nor leaving with `dom` now): what the file holds for them stays."""
    gone = {dom.name, *leaving}
    return [
        d
        for d in _sharing(ws, dom)
        if d.name not in gone and not os.path.lexists(_uninstalled_path(d))
    ]


def _read_record(path: str) -> tuple[dict, list]:
    """(comm-node's part of `sandbox`, the allow rules comm-node added). A record written
    before the allow rule existed is the `sandbox` part alone."""
    try:
        data = read_json_bounded(path, 1 << 20)
    except (OSError, ValueError):
        return {}, []
    if not isinstance(data, dict):
        return {}, []
    if not isinstance(data.get("sandbox"), dict):
        return data, []
    found = data.get("allow")
    allow = found if isinstance(found, list) else []
    return data["sandbox"], [r for r in allow if isinstance(r, str)]


def _save_record(ws: Workspace, dom: Domain, ours: dict, added: list) -> None:
    """Record what comm-node's part of the file now is (or none), older records folded in."""
    record = _record_path(dom)
    if ours or added:
        os.makedirs(os.path.dirname(record), exist_ok=True)
        text = json.dumps({"sandbox": ours, "allow": added}, indent=2) + "\n"
        atomic_write(record, text, mode=0o644)
    for path in _record_paths(ws, dom):
        if (path != record or not (ours or added)) and os.path.exists(path):
            os.unlink(path)


def claude_config_dir() -> str:
    """Where Claude Code keeps the user's settings: the agents inherit comm-node's
    environment, so the same CLAUDE_CONFIG_DIR (or ~/.claude)."""
    return os.environ.get("CLAUDE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".claude")


WEAKENING = (("enabled", True), ("failIfUnavailable", True), ("allowUnsandboxedCommands", False))


def _weakened_in(path: str) -> str | None:
    """What in the settings file `path` lets a Bash command run outside the sandbox (its
    `excludedCommands`, or a switch set against comm-node's: `settings.local.json` and
    managed settings take precedence over the domain's settings.json), or None."""
    try:
        data = read_json_bounded(path, 1 << 20)
    except (OSError, ValueError):
        return None
    box = data.get("sandbox") if isinstance(data, dict) else None
    if not isinstance(box, dict):
        return None
    if box.get("excludedCommands"):
        return f"sandbox.excludedCommands in {path} run outside the sandbox"
    for key, want in WEAKENING:
        if key in box and box[key] is not want:
            return f"sandbox.{key} is {json.dumps(box[key])} in {path}"
    return None


def weakening_sources(dom: Domain, managed: str = MANAGED_DIR) -> list[str]:
    """Why the other settings files Claude Code merges for `dom`'s agent (besides its
    `.claude/settings.json`, checked in the merged block) may let a command out, one line
    each."""
    files = [
        os.path.join(dom.path, ".claude", "settings.local.json"),
        os.path.join(claude_config_dir(), "settings.json"),
        os.path.join(managed, "managed-settings.json"),
    ]
    drop_ins = os.path.join(managed, "managed-settings.d")
    if os.path.isdir(drop_ins):
        files += sorted(
            os.path.join(drop_ins, n) for n in os.listdir(drop_ins) if n.endswith(".json")
        )
    return [why for f in files if (why := _weakened_in(f))]


def prompts_reason(
    block: dict,
    dom: Domain,
    managed: str = MANAGED_DIR,
    partial: list[str] | None = None,
) -> str | None:
    """Why the whole Bash tool is not allowed without a prompt in `dom` (one line), None
    when every command it runs is walled: comm-node's switches in force in every settings
    file Claude Code merges (any of them may switch the sandbox off or let commands out),
    and every peer sharing the folder walled off by the agent's own file (`partial`: the
    scopes that are not), so their commands keep Claude Code's own prompts."""
    for key, want in WEAKENING:
        if block.get(key) is not want:
            return f"sandbox.{key} is {json.dumps(block.get(key))} in {settings_path(dom)}"
    if block.get("excludedCommands"):
        return f"sandbox.excludedCommands in {settings_path(dom)} run outside the sandbox"
    found = weakening_sources(dom, managed)
    if found:
        return found[0]
    if partial:
        return partial[0]
    return None


def _without(current: object, ours: dict) -> dict:
    """The user's `sandbox` settings: `current` without what comm-node merged in before."""
    if not isinstance(current, dict):
        return {}
    out = dict(current)
    for key, value in ours.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            inner = _without(out[key], value)
            if inner:
                out[key] = inner
            else:
                del out[key]
        elif isinstance(value, list) and isinstance(out.get(key), list):
            kept = [v for v in out[key] if v not in value]
            if kept:
                out[key] = kept
            else:
                del out[key]
        elif key in out and out[key] == value:
            del out[key]
    return out


def _merge(user: dict, ours: dict) -> tuple[dict, dict]:
    """(the merged block, what of it is comm-node's): lists add to the user's, a scalar the
    user set stays theirs (their `enabled: false` is not overridden: it is reported)."""
    out = dict(user)
    added: dict = {}
    for key, value in ours.items():
        if isinstance(value, dict):
            have_sub = out.get(key)
            sub, sub_added = _merge(have_sub if isinstance(have_sub, dict) else {}, value)
            if sub:
                out[key] = sub
            if sub_added:
                added[key] = sub_added
        elif isinstance(value, list):
            found = out.get(key)
            have: list = found if isinstance(found, list) else []
            new = [v for v in value if v not in have]
            if have or new:
                out[key] = list(have) + new
            if new:
                added[key] = new
        elif key not in out:
            out[key] = value
            added[key] = value
    return out, added


def _with_allow(data: dict, drop: list, add: str | None) -> tuple[dict, list]:
    """`data` with the allow rules comm-node added before (`drop`) taken out and `add` put
    in unless the user has it; (the settings, the rules comm-node added now)."""
    perms = data.get("permissions")
    if perms is not None and not isinstance(perms, dict):
        return data, []  # not ours to repair: install_hooks leaves it alone too
    perms = dict(perms or {})
    found = perms.get("allow")
    allow = [r for r in found if r not in drop] if isinstance(found, list) else []
    added = []
    if add is not None and add not in allow:
        allow.append(add)
        added.append(add)
    if allow:
        perms["allow"] = allow
    else:
        perms.pop("allow", None)
    new = dict(data)
    if perms:
        new["permissions"] = perms
    else:
        new.pop("permissions", None)
    return new, added


def merged(
    ws: Workspace, dom: Domain, leaving: tuple[str, ...] | None = None
) -> tuple[dict, dict, dict, list, str | None]:
    """(the settings now, the settings as comm-node writes them, comm-node's part of
    `sandbox`, the allow rules it adds, why commands may still prompt). The file holds the
    sandbox every domain sharing it still installed with `sandbox = true` wants; `leaving`
    (`dom` and the others uninstalled with it), None when `dom` is being written."""
    data = _load(settings_path(dom))
    user = data.get("sandbox")
    allow_before: list = []
    for path in _record_paths(ws, dom):
        ours_before, allow = _read_record(path)
        user = _without(user, ours_before)
        allow_before += allow
    user = user if isinstance(user, dict) else {}
    wanting = [d for d in installed_peers(ws, dom, leaving or ()) if d.sandbox]
    if leaving is None and dom.sandbox:
        wanting.insert(0, dom)
    block: dict = user
    ours: dict = {}
    for d in wanting:
        block, added_d = _merge(block, sandbox_block(ws, d))
        ours = _merge(ours, added_d)[0]
    why = None
    if dom in wanting:
        why = prompts_reason(block, dom, partial=peer_coverage(ws, dom)[1])
    new = dict(data)
    if block:
        new["sandbox"] = block
    else:
        new.pop("sandbox", None)
    # In a shared folder the rule goes into the agent's own file (write_sandbox), beside the
    # walls from its peers that only an agent started with that file has: a claude started
    # there by hand reads the folder's settings alone, walled from no peer, and keeps the
    # prompts (checked on 2.1.330, docs/claude-code.md).
    alone = len(_sharing(ws, dom)) == 1
    rule = ALLOW_ALL_BASH if dom in wanting and why is None and alone else None
    new, added = _with_allow(new, allow_before, rule)
    return data, new, ours, added, why


def walled_by(ws: Workspace, dom: Domain) -> list[str]:
    """The installed peers with `sandbox = true` whose sandbox `dom`'s agent runs in too
    (one settings file cannot be both): for a domain with `sandbox = false`."""
    return [d.name for d in installed_peers(ws, dom) if d.sandbox]


def preview(ws: Workspace, dom: Domain) -> dict:
    """What `write_sandbox` would do, writing nothing (for `comm-node doctor`)."""
    data, new, _ours, _added, why = merged(ws, dom)
    found = data.get("sandbox")
    return {
        "path": settings_path(dom),
        "enabled": isinstance(found, dict) and found.get("enabled") is True,
        "stale": new != data or _agent_stale(ws, dom, why is None),
        "prompts": why,
        "partial": peer_coverage(ws, dom)[1] if dom.sandbox else [],
        "walled_by": [] if dom.sandbox else walled_by(ws, dom),
    }


def write_sandbox(ws: Workspace, dom: Domain) -> dict:
    """Merge (or, with `sandbox` off, take out) comm-node's sandbox settings for `dom`; what
    the domains sharing its folder want stays."""
    path = settings_path(dom)
    # written for it: installed again (a peer's uninstall keeps what it needs)
    if os.path.lexists(_uninstalled_path(dom)):
        os.unlink(_uninstalled_path(dom))
    if not dom.sandbox and not any(os.path.exists(p) for p in _record_paths(ws, dom)):
        # never on here: the settings file is not even read (a broken one is the user's,
        # and starting an agent did not read it before the sandbox existed)
        agent_stale = _agent_stale(ws, dom, False)
        _write_agent_settings(ws, dom, False)
        return {"domain": dom.name, "path": path, "enabled": False, "changed": agent_stale,
                "backup": None, "prompts": None, "partial": [], "launch_args": [],
                "walled_by": []}  # fmt: skip
    if dom.sandbox:
        # First, for every sandboxed agent, not only those that need a file there: its
        # folder exists when the settings deny it (sandbox_block denies only what exists),
        # else an agent in a folder of its own, started before any shared-folder agent
        # made the folder, could write the others' walls (or put a link there).
        # The same for guarded/ (the config cache, the pause, the grants): walled from the
        # first start, also before the host first writes into it.
        for folder in (os.path.join(ws.paths.state, AGENT_DIR), ws.paths.guarded):
            if os.path.islink(folder) or (os.path.lexists(folder) and not os.path.isdir(folder)):
                os.unlink(folder)  # not ours: never followed
            os.makedirs(folder, exist_ok=True)
        # An older comm-node's grants move into guarded/ now, and guarded/ holds a grants
        # file from here on (empty if none): the old place, which the agent may write, is
        # read only while guarded/ has none.
        guarded.settle(ws.paths.state)
        # An older comm-node's budget file (the engine's work-budget pause) sat in the
        # domain's own folder, which the agent may write: moved into guarded/ now, read
        # there only (the old place only while guarded/ has none: no pause is then in force).
        guarded.adopt_budget(ws.paths.state, dom.name, dom.paths.legacy_budget)
    data, new, ours, added, why = merged(ws, dom)
    # the whole Bash tool in its own file: every command it runs is walled (merged)
    agent_stale = _agent_stale(ws, dom, why is None)
    launch = _write_agent_settings(ws, dom, why is None)
    changed = new != data
    backup = None
    if changed:
        before = settings_text(data) if os.path.exists(path) else None
        backup = _write(path, new, before)
    _save_record(ws, dom, ours, added)
    found = new.get("sandbox")
    block: dict = found if isinstance(found, dict) else {}
    return {
        "domain": dom.name,
        "path": path,
        "enabled": block.get("enabled") is True,
        "changed": changed or agent_stale,
        "backup": backup,
        "prompts": why,  # why commands may still ask (None: none inside the walls do)
        "partial": peer_coverage(ws, dom)[1] if dom.sandbox else [],  # peers not walled off
        # what the agent's command takes to read its own walls (`--settings FILE`), or []
        "launch_args": launch,
        # sandbox = false, yet walled: the peers sharing its settings file want the sandbox
        "walled_by": [] if dom.sandbox else walled_by(ws, dom),
    }


def remove_sandbox(ws: Workspace, dom: Domain, leaving: tuple[str, ...] = ()) -> dict:
    """Take out what comm-node wrote for `dom` (`comm-node hooks uninstall`; `leaving`: the
    other domains uninstalled with it): its own settings file, and from the settings file
    its part of `sandbox` and the allow rule, by the record, unless an installed peer
    sharing that file still needs it ("kept_for": their names). The user's keys stay, and
    what the user had before comm-node (a `"Bash"` rule of their own) was never recorded as
    ours. Whatever the config says: `up` writes it again while `sandbox = true`."""
    path = settings_path(dom)
    own = agent_settings_path(ws, dom)
    had_own = os.path.lexists(own)
    if had_own:
        os.unlink(own)
    peers = installed_peers(ws, dom, leaving)
    if len(_sharing(ws, dom)) > 1:
        # shares the file: the next uninstall of a peer must know this one is gone
        os.makedirs(dom.paths.dir, exist_ok=True)
        atomic_write(_uninstalled_path(dom), "hooks uninstall\n", mode=0o644)
    kept_for = [d.name for d in peers]
    if not any(os.path.exists(p) for p in _record_paths(ws, dom)):
        return {"domain": dom.name, "path": path, "removed": had_own, "backup": None,
                "kept_for": kept_for, "own": own if had_own else None}  # fmt: skip
    data, new, ours, added, _why = merged(ws, dom, (dom.name, *leaving))
    backup = None
    if new != data:
        backup = _write(path, new, settings_text(data))
    _save_record(ws, dom, ours, added)
    return {"domain": dom.name, "path": path, "removed": had_own or new != data,
            "backup": backup, "kept_for": kept_for, "own": own if had_own else None}  # fmt: skip
