"""The resolved workspace as plain data: what every command and the engine work with.

Built from a validated config. Kept free of pydantic so the agent CLI can build it from the
JSON cache without importing the validation layer. `settings` holds the typed sections with
their defaults (workspace/settings.py); `config` is the raw data, for the few places that
show or copy it whole (`config show --json`).
"""

from __future__ import annotations

import os

from comm_node_tui.errors import CommNodeError
from comm_node_tui.protocol.paths import DomainPaths, WorkspacePaths
from comm_node_tui.workspace.settings import AgentsSettings, Settings


def _abs(root: str, path: str) -> str:
    return os.path.realpath(path if os.path.isabs(path) else os.path.join(root, path))


class Domain:
    __slots__ = (
        "allowed_imports",
        "budget_tokens",
        "command",
        "cpu_quota",
        "exports",
        "forbidden_imports",
        "imports",
        "memory_max",
        "model",
        "name",
        "path",
        "paths",
        "role",
        "sandbox",
        "scope",
        "scope_regex",
        "verify",
        "verify_timeout_s",
        "work_budget_tokens",
    )

    def __init__(self, data: dict, root: str, agents: AgentsSettings, shared: bool) -> None:
        self.name: str = data["name"]
        self.path: str = _abs(root, data["path"])
        self.paths = DomainPaths(self.name, self.path, shared)
        self.role: str = data.get("role", "")
        self.scope: list[str] = list(data.get("scope", ["**"]))
        self.scope_regex: list[str] = list(data.get("scope_regex", []))
        self.exports: list[str] = list(data.get("exports", []))
        self.imports: dict[str, list[str]] = dict(data.get("imports", {}))
        self.allowed_imports: list[str] = list(data.get("allowed_imports", []))
        self.forbidden_imports: list[str] = list(data.get("forbidden_imports", []))
        # a domain's own value, else [agents]'
        self.command: str = data.get("command") or agents.command
        self.model: str | None = data.get("model") or agents.model
        budget = data.get("budget_tokens")
        self.budget_tokens: int = int(agents.budget_tokens if budget is None else budget)
        work = data.get("work_budget_tokens")
        self.work_budget_tokens: int = int(agents.work_budget_tokens if work is None else work)
        # the verify gate's commands; None timeout: [tasks] verify_timeout_s
        self.verify: list[str] = list(data.get("verify", []))
        self.verify_timeout_s: float | None = data.get("verify_timeout_s")
        # issue 23: a domain's own value, else [agents]'
        sandbox = data.get("sandbox")
        self.sandbox: bool = bool(agents.sandbox if sandbox is None else sandbox)
        memory, cpu = data.get("memory_max"), data.get("cpu_quota")  # "": none, for this one
        self.memory_max: str = agents.memory_max if memory is None else memory
        self.cpu_quota: str = agents.cpu_quota if cpu is None else cpu

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "role": self.role,
            "scope": self.scope,
            "exports": self.exports,
            "imports": self.imports,
            "command": self.command,
            "model": self.model,
            "budget_tokens": self.budget_tokens,
        }


class Workspace:
    __slots__ = ("config", "domains", "paths", "project", "root", "settings")

    def __init__(self, root: str, config: dict) -> None:
        self.root = os.path.realpath(root)
        self.paths = WorkspacePaths(self.root)
        self.config = config
        self.project: str = config["project"]["name"]
        self.settings = Settings.from_config(config)
        raw_paths = [_abs(root, d["path"]) for d in config.get("domains", [])]
        self.domains: dict[str, Domain] = {}
        for d, p in zip(config.get("domains", []), raw_paths, strict=True):
            shared = raw_paths.count(p) > 1
            self.domains[d["name"]] = Domain(d, self.root, self.settings.agents, shared)

    def domain(self, name: str) -> Domain:
        try:
            return self.domains[name]
        except KeyError:
            known = ", ".join(sorted(self.domains)) or "none"
            raise CommNodeError(f"unknown domain '{name}' (known: {known})") from None

    def domain_of_path(self, path: str) -> list[Domain]:
        """Domains whose directory contains `path`, deepest first."""
        real = os.path.realpath(path)
        hits = [
            d
            for d in self.domains.values()
            if real == d.path or real.startswith(d.path.rstrip(os.sep) + os.sep)
        ]
        hits.sort(key=lambda d: len(d.path), reverse=True)
        return hits
