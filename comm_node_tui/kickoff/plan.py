"""PLAN.toml for `comm-node init --from PLAN.toml --yes`: the comm-node.toml shape, with
missing values taking their defaults, plus what only a plan says:
- `[[task]]`: native tasks (id, title, domain, depends_on, required_artifacts, priority,
  description), written to tasks.toml with `[tasks] source = "native"`;
- per domain, `create = "dir" | "git" | "worktree"` (and `branch`, `repo` for a worktree):
  how to make its directory when it does not exist.
Errors are one line each, naming the file and the key.
"""

from __future__ import annotations

import os
import tomllib

from comm_node_tui.errors import ConfigError
from comm_node_tui.kickoff.scaffold import DomainCreation

PLAN_DOMAIN_KEYS = ("create", "branch", "repo")
TASK_KEYS = {
    "id",
    "title",
    "domain",
    "depends_on",
    "required_artifacts",
    "priority",
    "description",
    "parent",
    "type",
}


def load_plan(path: str):
    """(WorkspaceConfig, native tasks or None, domain creations) from a plan file."""
    from comm_node_tui.workspace.config import WorkspaceConfig, format_validation_error

    label = os.path.basename(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4 * 1024 * 1024 + 1)
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror}"]) from None
    if len(raw) > 4 * 1024 * 1024:
        raise ConfigError(path, [f"{label}: larger than 4 MB"])
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"{label}: not UTF-8 text (byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"{label}: invalid TOML: {exc}"]) from None
    problems: list[str] = []
    creations: dict[str, DomainCreation] = {}
    for i, d in enumerate(data.get("domains", []) if isinstance(data.get("domains"), list) else []):
        if not isinstance(d, dict):
            continue
        extra = {k: d.pop(k) for k in PLAN_DOMAIN_KEYS if k in d}
        if extra:
            how = extra.get("create", "dir")
            if how not in ("dir", "git", "worktree"):
                problems.append(
                    f"{label}: domains[{i}] ({d.get('name')}).create: {how!r} must be "
                    "dir, git or worktree"
                )
                continue
            creations[str(d.get("name"))] = DomainCreation(
                how, str(extra.get("repo", "")), str(extra.get("branch", ""))
            )
    tasks = data.pop("task", None)
    if tasks is not None:
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            problems.append(f"{label}: task: must be an array of tables ([[task]])")
            tasks = None
        else:
            for i, t in enumerate(tasks):
                extra = sorted(set(t) - TASK_KEYS)
                if extra:
                    problems.append(f"{label}: task[{i}].{extra[0]}: unknown key")
                if not isinstance(t.get("id"), str) or not t.get("id"):
                    problems.append(f"{label}: task[{i}].id: required text is missing")
            data.setdefault("tasks", {}).setdefault("source", "native")
    try:
        config = WorkspaceConfig.model_validate(data)
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        problems += format_validation_error(label, exc, data)
        config = None
    if tasks is not None and config is not None:
        names = {d.name for d in config.domains}
        ids = [t.get("id") for t in tasks]
        for i, t in enumerate(tasks):
            if t.get("domain") and t["domain"] not in names:
                problems.append(
                    f"{label}: task[{i}] ({t.get('id')}).domain: unknown domain '{t['domain']}'"
                )
            for dep in t.get("depends_on", []) or []:
                if dep not in ids:
                    problems.append(
                        f"{label}: task[{i}] ({t.get('id')}).depends_on: unknown task '{dep}'"
                    )
        dupes = sorted({x for x in ids if ids.count(x) > 1})
        if dupes:
            problems.append(f"{label}: task: id '{dupes[0]}' is used twice")
    if problems:
        raise ConfigError(path, problems)
    return config, tasks, creations


def check_domain_paths(root: str, config, creations: dict[str, DomainCreation]) -> list[str]:
    """A domain directory must exist, or be one init may create: inside the workspace."""
    problems = []
    real_root = os.path.realpath(root)
    for i, d in enumerate(config.domains):
        path = d.path if os.path.isabs(d.path) else os.path.join(root, d.path)
        if os.path.isdir(path):
            continue
        if os.path.exists(path):
            problems.append(f"domains[{i}] ({d.name}).path: {path} is not a directory")
            continue
        real = os.path.realpath(path)
        if not (real == real_root or real.startswith(real_root + os.sep)):
            problems.append(
                f"domains[{i}] ({d.name}).path: {path} does not exist and is outside the "
                "workspace; create it first"
            )
            continue
        how = creations.setdefault(d.name, DomainCreation())
        if how.how == "worktree":
            from comm_node_tui.boundaries.gitfiles import repo_top

            repo = how.repo or root
            if not os.path.isdir(repo) or repo_top(repo) is None:
                problems.append(
                    f'domains[{i}] ({d.name}).create: "worktree" needs a git repository '
                    f'and {repo} is not in one (set `repo`, or use create = "git")'
                )
    return problems
