"""What `comm-node init` writes, computed first (so it can be shown and asked about) and
then applied: comm-node.toml, native tasks, and per domain its `.comm-node/` folders,
registry.json, PROTOCOL.md, a role section in the agent CLI's instructions file (CLAUDE.md),
comm-node's hooks in the CLI's settings, and `.comm-node/` in .gitignore (in the workspace's
repository also the domains that are repositories or worktrees of their own). Nothing of the
user's is replaced: the instructions file is merged between marked lines, the settings keep
the user's hooks, .gitignore only gains lines. What is the CLI's comes from its adapter
(adapters/agent_cli.py).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field

from comm_node_tui.protocol.paths import CONFIG_NAME, STATE_DIR
from comm_node_tui.workspace.model import Domain, Workspace

BEGIN = "<!-- comm-node:begin {name} (written by `comm-node init`; edit outside these lines) -->"
END = "<!-- comm-node:end {name} -->"
HEADER = "# comm-node workspace, written by `comm-node init` (docs/configuration.md)\n\n"
IGNORE_LINES = (".comm-node/",)  # and the agent CLI's own (its backups)
AGENT_COMMANDS = (
    "whoami",
    "task",
    "lock",
    "send",
    "inbox",
    "read",
    "status",
    "artifact",
    "budget",
    "check",
)


@dataclass
class Change:
    path: str
    action: str  # create | update | unchanged | mkdir
    what: str
    domain: str | None = None
    new: str | None = None  # None for directories
    old: str | None = None
    # comm-node.toml only: the file is not what init last wrote (someone edited it since)
    hand_edited: bool = False
    backup: str | None = None  # where apply kept the hand-edited file


@dataclass
class DomainCreation:
    """How to make a domain directory that does not exist yet."""

    how: str = "dir"  # dir | git (a new repository) | worktree (of a monorepo, new branch)
    repo: str = ""  # worktree: the repository (default: the one holding the workspace)
    branch: str = ""  # worktree: the new branch (default: comm-node/<domain>)


@dataclass
class Plan:
    root: str
    config_text: str
    ws: Workspace
    tasks_text: str | None = None
    creations: dict[str, DomainCreation] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]


def _written_record(root: str) -> str:
    """Where init notes what it wrote into comm-node.toml (a digest): an update of a file
    that no longer matches it would replace hand edits, so it is shown and backed up."""
    return os.path.join(root, STATE_DIR, "init-written.json")


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hand_edited(root: str, text: str) -> bool:
    """comm-node.toml differs from what init last wrote (true when init never recorded it:
    a file written by hand or by an older comm-node)."""
    try:
        with open(_written_record(root), encoding="utf-8") as fh:
            return json.load(fh).get("config_sha256") != _digest(text)
    except (OSError, ValueError, AttributeError):
        return True


def _record_written(root: str, text: str) -> None:
    from comm_node_tui.protocol.fileio import atomic_write

    os.makedirs(os.path.join(root, STATE_DIR), mode=0o700, exist_ok=True)
    data = json.dumps({"config_sha256": _digest(text)}) + "\n"
    atomic_write(_written_record(root), data, mode=0o600)


def _backup_config(root: str, text: str) -> str:
    """A copy of a hand-edited comm-node.toml before it is replaced (in .comm-node/, which
    git ignores); its path."""
    import time

    from comm_node_tui.protocol.fileio import atomic_write

    folder = os.path.join(root, STATE_DIR, "backups")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = os.path.join(folder, f"{CONFIG_NAME}.{stamp}"), 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(folder, f"{CONFIG_NAME}.{stamp}-{n}")
    atomic_write(path, text, mode=0o600)
    return path


def config_diff(change: Change) -> str:
    """A unified diff of comm-node.toml as it is and as init would write it."""
    import difflib

    lines = difflib.unified_diff(
        (change.old or "").splitlines(keepends=True),
        (change.new or "").splitlines(keepends=True),
        f"{CONFIG_NAME} (now)",
        f"{CONFIG_NAME} (as init would write it)",
    )
    return "".join(x if x.endswith("\n") else x + "\n" for x in lines)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def config_text(config) -> str:
    """Only what differs from the defaults: a short file the operator can read; domains as
    `[[domains]]` tables, so one more can be appended as docs/configuration.md shows."""
    from comm_node_tui.workspace.config import config_toml

    data = config.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    data["project"] = {"name": config.project.name, **data.get("project", {})}
    data["domains"] = [
        {"name": d.name, "path": d.path, **dd}
        for d, dd in zip(
            config.domains, data.get("domains", [{}] * len(config.domains)), strict=True
        )
    ]
    return HEADER + config_toml(data)


def tasks_text(tasks: list[dict]) -> str:
    """Native tasks.toml: [[tasks]] with id, title, domain, depends_on, requires."""
    import tomli_w

    clean = []
    for t in tasks:
        clean.append({k: v for k, v in t.items() if v not in (None, "", [])})
    return "# native tasks, written by `comm-node init`\n\n" + tomli_w.dumps({"tasks": clean})


def protocol_md(ws: Workspace, dom: Domain) -> str:
    """How to talk to comm-node, generated from the real CLI parser (so it never lies)."""
    lines = [
        f"# How {dom.name} talks to comm-node",
        "",
        f"You are the `{dom.name}` agent of {ws.project}. Agents never talk to each "
        "other directly: every message, lock, task and artifact goes through the "
        "`comm-node` command, which routes, budgets and logs it. Run it from your "
        "directory; it knows who you are from `$COMM_NODE_DOMAIN`.",
        "",
        "Exit codes: 0 ok, 1 error, 2 usage, 3 conflict (someone else holds it), "
        "4 outside your boundary. Add `--json` for machine-readable output.",
        "",
        *_command_reference(),
    ]
    return "\n".join(lines).rstrip() + "\n"


@functools.cache
def _command_reference() -> tuple[str, ...]:
    """The commands' part of PROTOCOL.md, the same for every domain: built once a process
    (each command's parser and usage text cost ~10 ms of CPU, times every domain)."""
    from comm_node_tui.cli import COMMANDS, build_parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # the same text whatever the terminal
    try:
        lines: list[str] = []
        for name in AGENT_COMMANDS:
            parser = build_parser(name)
            sub = _subparsers(parser).choices[name]
            lines += [f"## comm-node {name}", "", COMMANDS[name][0], ""]
            actions = _subparsers(sub)
            if actions is None:
                lines += ["```", sub.format_usage().strip(), "```", ""]
                continue
            for action_name, p in actions.choices.items():
                helps = {a.dest: a.help for a in actions._choices_actions}
                lines += [f"- `{action_name}`: {helps.get(action_name, '')}"]
                lines += ["  ```", "  " + p.format_usage().strip(), "  ```"]
            lines.append("")
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return tuple(lines)


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def role_section(ws: Workspace, dom: Domain) -> str:
    peers = [p for p in ws.domains.values() if p.name != dom.name]
    rel = os.path.relpath(dom.paths.dir, dom.path)
    lines = [
        BEGIN.format(name=dom.name),
        f"## comm-node: you are the `{dom.name}` agent of {ws.project}",
        "",
        f"**Role**: {dom.role or '(none given)'}",
        "",
        f"**Your files** (globs relative to this directory): {', '.join(dom.scope)}. "
        "Edits outside them are refused; ask their owner with `comm-node send`.",
    ]
    if dom.exports:
        lines.append(f"**You export** (publish them as artifacts): {', '.join(dom.exports)}")
    for peer, files in dom.imports.items():
        lines.append(f"**You import** from {peer}: {', '.join(files)}")
    lines += ["", "**Peers** (reach them only through comm-node):"]
    for p in peers:
        exports = f" (exports: {', '.join(p.exports)})" if p.exports else ""
        lines.append(f"- `{p.name}`: {p.role or 'no role given'}{exports}")
    lines.append("- `operator`: the human running comm-node")
    lines += [
        "",
        f"The protocol, generated from the CLI: `{rel}/PROTOCOL.md`. Who you are: "
        "`comm-node whoami`.",
        "",
        "**What's next?** Loop until nothing is ready:",
        "1. `comm-node task ready`, then `comm-node task claim ID` (exit 3: someone has it; "
        "take the next).",
        "2. `comm-node lock acquire 'GLOB'` for the files you will edit.",
        '3. Work. `comm-node status set busy --task ID --progress "..."` as you go.',
        "4. `comm-node artifact publish FILE` for what peers import.",
        "5. `comm-node task done ID`, then `comm-node lock release --all`. Exit 5: the "
        "task's verify commands failed and it is still yours; the output says why: fix it and "
        "run `task done` again (never work around the check).",
        "6. `comm-node inbox`: read and answer (`comm-node send --to PEER --reply-to ID`).",
        "7. Again from 1. When nothing is ready: `comm-node status set idle` and wait for mail.",
        END.format(name=dom.name),
    ]
    return "\n".join(lines) + "\n"


def merge_role_section(existing: str | None, section: str, name: str) -> str:
    """The user's instructions file with our section replaced between its markers, or
    appended."""
    if not existing:
        return section
    begin_prefix = BEGIN.format(name=name).split(" (")[0]
    end = END.format(name=name)
    start = existing.find(begin_prefix)
    if start >= 0:
        stop = existing.find(end, start)
        if stop >= 0:
            stop += len(end)
            if existing[stop : stop + 1] == "\n":
                stop += 1
            return existing[:start] + section + existing[stop:]
    sep = "" if existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
    return existing + sep + section


def _gitignore_targets(plan: Plan) -> dict[str, list[str]]:
    """Each working tree (or plain folder) init writes into -> the extra lines its
    .gitignore needs beyond IGNORE_LINES: a domain that is its own repository or worktree
    inside the workspace's repository is ignored there (`git add -A` refuses a nested
    repository with no commit, and would record the others as gitlinks)."""
    from comm_node_tui.boundaries.gitfiles import repo_top

    out: dict[str, list[str]] = {}
    top = repo_top(plan.root) if os.path.isdir(plan.root) else None
    if top:
        out[top] = []
    for d in plan.ws.domains.values():
        if os.path.isdir(d.path):
            own = repo_top(d.path) or d.path
        else:
            how = plan.creations.get(d.name, DomainCreation()).how
            # a new repository or worktree is its own working tree (what repo_top will say
            # on the next run); a plain directory belongs to the workspace's repository
            own = d.path if how in ("git", "worktree") else (top or d.path)
        out.setdefault(own, [])
        if top and own == d.path and d.path != top and d.path.startswith(top + os.sep):
            rel = os.path.relpath(d.path, top).replace(os.sep, "/")
            out[top].append(f"/{rel}/")
    return out


def sandbox_default(root: str, config):
    """(the config, why the sandbox stays off) for `init --from PLAN` when the plan does not
    say `[agents] sandbox`: a workspace's file keeps its own choice; a new one gets the
    sandbox where Claude Code's can run (bubblewrap and socat), as the wizard proposes,
    and otherwise off with the reason beside it (issue 23)."""
    if "sandbox" in config.agents.model_fields_set:
        return config, None
    path = os.path.join(root, CONFIG_NAME)
    if os.path.exists(path):
        import tomllib

        try:
            with open(path, "rb") as fh:
                agents = tomllib.load(fh).get("agents")
        except (OSError, ValueError):
            return config, None  # the plan rewrites it whole; its diff shows what changes
        have = agents.get("sandbox") if isinstance(agents, dict) else None
        if not isinstance(have, bool):
            return config, None
        on = have
        why = None
    else:
        from comm_node_tui.adapters.agent_cli import CLIS

        why = CLIS[config.agents.cli]().sandbox_unavailable()
        on = why is None
    agents = config.agents.model_copy(update={"sandbox": on})
    return config.model_copy(update={"agents": agents}), why


def _sandbox_off_line(text: str, why: str) -> str:
    """The config text with `sandbox = false` and its reason in `[agents]` (a default value
    is not written otherwise)."""
    line = f"sandbox = false  # {why}: Claude Code's Bash sandbox cannot run here\n"
    if "\n[agents]\n" in text:
        return text.replace("\n[agents]\n", "\n[agents]\n" + line, 1)
    at = text.find("\n[[domains]]")
    at = len(text) if at < 0 else at + 1
    return text[:at] + "[agents]\n" + line + "\n" + text[at:]


def build_plan(
    root: str,
    config,
    tasks: list[dict] | None = None,
    creations: dict[str, DomainCreation] | None = None,
    sandbox_off: str | None = None,
) -> Plan:
    """Every change `apply` would make, without making any; `sandbox_off`: why the new
    config's sandbox is off (written beside it)."""
    from comm_node_tui.adapters.agent_cli import agent_cli_for
    from comm_node_tui.workspace.discovery import _add_scope_regexes
    from comm_node_tui.workspace.registry import registry_for

    root = os.path.realpath(root)
    data = config.model_dump(mode="json")
    _add_scope_regexes(root, data)
    ws = Workspace(root, data)
    cli = agent_cli_for(ws)
    text = config_text(config)
    if sandbox_off:
        text = _sandbox_off_line(text, sandbox_off)
    plan = Plan(root, text, ws, creations=dict(creations or {}))
    changes = plan.changes

    def file(path: str, new: str, what: str, domain: str | None = None) -> None:
        old = _read(path)
        action = "create" if old is None else ("unchanged" if old == new else "update")
        changes.append(Change(path, action, what, domain, new, old))

    file(os.path.join(root, CONFIG_NAME), plan.config_text, "the workspace configuration")
    config_change = changes[-1]
    if config_change.action == "update":
        config_change.hand_edited = _hand_edited(root, config_change.old or "")
    if tasks is not None:
        plan.tasks_text = tasks_text(tasks)
        file(os.path.join(root, config.tasks.path or "tasks.toml"), plan.tasks_text, "native tasks")
    for d in ws.domains.values():
        if not os.path.isdir(d.path):
            how = plan.creations.setdefault(d.name, DomainCreation())
            what = {
                "dir": "a new directory",
                "git": "a new git repository",
                "worktree": f"a git worktree on branch {how.branch or 'comm-node/' + d.name}",
            }[how.how]
            changes.append(Change(d.path, "mkdir", what, d.name))
        for sub in (d.paths.inbox, d.paths.outbox, d.paths.artifacts):
            if not os.path.isdir(sub):
                changes.append(Change(sub, "mkdir", "protocol folder", d.name))
        file(
            d.paths.registry,
            json.dumps(registry_for(ws, d), indent=1) + "\n",
            "registry: peers, roles, exports",
            d.name,
        )
        file(
            os.path.join(d.paths.dir, "PROTOCOL.md"),
            protocol_md(ws, d),
            "how to talk to comm-node",
            d.name,
        )
        instructions = os.path.join(d.path, cli.instructions_file)
        file(
            instructions,
            merge_role_section(_read(instructions), role_section(ws, d), d.name),
            f"role section in {cli.instructions_file}",
            d.name,
        )
        settings = cli.hooks_file(d)
        if not any(c.path == settings for c in changes):
            file(settings, cli.hooks_preview(d), f"comm-node's {cli.label} hooks", d.name)
    for target, nested in _gitignore_targets(plan).items():
        path = os.path.join(target, ".gitignore")
        old = _read(path) or ""
        have = {ln.strip() for ln in old.splitlines()}
        wanted = dict.fromkeys((*IGNORE_LINES, *cli.ignore_lines, *nested))
        missing = [ln for ln in wanted if ln not in have]
        new = (
            old
            + ("" if not old or old.endswith("\n") else "\n")
            + "".join(f"{ln}\n" for ln in missing)
        )
        file(path, new, "comm-node runtime files ignored by git")
    return plan


def _create_domain(path: str, name: str, how: DomainCreation, root: str) -> None:
    """Make a new domain directory; a one-line CommNodeError naming the domain if git (or
    the filesystem) refuses."""
    from comm_node_tui.errors import CommNodeError

    try:
        if how.how not in ("git", "worktree"):
            os.makedirs(path, exist_ok=True)  # a plain folder: no GitPython import (~0.13 s)
            return
        _create_in_git(path, name, how, root)
    except OSError as exc:
        raise CommNodeError(f"domain {name}: cannot create {path}: {exc.strerror}") from None


def _create_in_git(path: str, name: str, how: DomainCreation, root: str) -> None:
    import git

    from comm_node_tui.errors import CommNodeError

    try:
        if how.how == "git":
            os.makedirs(path, exist_ok=True)
            git.Repo.init(path)
        else:
            repo_dir = how.repo or root
            try:
                repo = git.Repo(repo_dir, search_parent_directories=True)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError):
                raise CommNodeError(
                    f'domain {name}: create = "worktree" needs a git repository, and '
                    f'{repo_dir} is not in one (set `repo`, or use create = "git")'
                ) from None
            repo.git.worktree("add", "-b", how.branch or f"comm-node/{name}", path)
    except git.GitCommandError as exc:
        why = (exc.stderr or str(exc)).strip().splitlines()[-1:] or ["git failed"]
        raise CommNodeError(f"domain {name}: cannot create {path}: {why[0]}") from None


def apply(plan: Plan) -> list[Change]:
    """Make the changes (domain directories first); the ones made."""
    from comm_node_tui.adapters.agent_cli import agent_cli_for
    from comm_node_tui.protocol.fileio import atomic_write

    cli = agent_cli_for(plan.ws)
    config_path = os.path.join(plan.root, CONFIG_NAME)
    # written by the CLI's own install (it keeps a backup of the user's file), not as text
    hooks_files = {cli.hooks_file(d) for d in plan.ws.domains.values()}
    done: list[Change] = []
    for c in plan.changes:
        if c.action == "mkdir" and c.domain and c.path == plan.ws.domains[c.domain].path:
            _create_domain(c.path, c.domain, plan.creations[c.domain], plan.root)
            done.append(c)
    settings_done: set[str] = set()
    for c in plan.changes:
        if c.action == "unchanged" or c in done:
            continue
        if c.action == "mkdir":
            os.makedirs(c.path, mode=0o700, exist_ok=True)
        elif c.path in hooks_files and c.domain:
            if c.path in settings_done:
                continue
            cli.install_hooks(plan.ws.domains[c.domain])
            settings_done.add(c.path)
        else:
            if c.path == config_path and c.hand_edited and c.old is not None:
                c.backup = _backup_config(plan.root, c.old)
            os.makedirs(os.path.dirname(c.path), exist_ok=True)
            private = f"{os.sep}.comm-node{os.sep}" in c.path
            atomic_write(c.path, c.new or "", mode=0o600 if private else 0o644)
        done.append(c)
    _record_written(plan.root, plan.config_text)
    return done
