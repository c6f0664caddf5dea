"""Find the workspace and the current domain; load the config fast.

The agent CLI runs on every agent action, so this path avoids pydantic when it can: a
validated config is cached as JSON in `<workspace>/.comm-node/guarded/config.cache.json`
(guarded/ is read-only as a whole to sandboxed agents), keyed by the TOML file's size,
modification time and inode and by the comm-node version, and only a changed TOML is
validated again. `doctor` and `config check` never read it: they validate the file.
"""

from __future__ import annotations

import os

from comm_node_tui import __version__
from comm_node_tui.errors import CommNodeError
from comm_node_tui.protocol import jsonfast as json
from comm_node_tui.protocol.paths import CONFIG_NAME, WorkspacePaths
from comm_node_tui.workspace.model import Domain, Workspace

# The cache's format and the comm-node that validated it: a newer comm-node (stricter rules,
# new fields with defaults) validates the file again instead of trusting an older one's word.
CACHE_VERSION = f"2/{__version__}"


def find_root(explicit: str | None = None, cwd: str | None = None) -> str:
    """--workspace DIR, else $COMM_NODE_WORKSPACE, else walk up from the current directory."""
    for source, value in (("--workspace", explicit), ("COMM_NODE_WORKSPACE", None)):
        if source == "COMM_NODE_WORKSPACE":
            value = os.environ.get("COMM_NODE_WORKSPACE") or None
        if value:
            root = os.path.abspath(value)
            if not os.path.isfile(os.path.join(root, CONFIG_NAME)):
                raise CommNodeError(f"{source}: {root} has no {CONFIG_NAME}")
            return root
    here = os.path.abspath(cwd or os.getcwd())
    while True:
        if os.path.isfile(os.path.join(here, CONFIG_NAME)):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            raise CommNodeError(
                f"no {CONFIG_NAME} in this directory or any parent: run `comm-node init` "
                "to start a workspace, or pass --workspace DIR"
            )
        here = parent


def _stamp(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def load_workspace(root: str, *, use_cache: bool = True) -> Workspace:
    """The workspace at `root`, validated; ConfigError when comm-node.toml is invalid."""
    paths = WorkspacePaths(os.path.abspath(root))
    try:
        stamp = _stamp(paths.config)
    except FileNotFoundError:
        raise CommNodeError(f"{paths.config}: not found") from None
    # guarded/ as a link (made by an agent before the folder existed) is not ours: neither
    # read nor written through (write_sandbox replaces it with the folder)
    use_cache = use_cache and not os.path.islink(paths.guarded)
    if use_cache:
        try:
            with open(paths.config_cache, encoding="utf-8") as fh:
                cached = json.load(fh)
            if cached.get("version") == CACHE_VERSION and cached.get("stamp") == stamp:
                return Workspace(paths.root, cached["config"])
        except (RecursionError, OSError, ValueError, KeyError, TypeError):
            pass
    from comm_node_tui.workspace.configfile import load_config

    config = load_config(paths.config).model_dump(mode="json")
    _add_scope_regexes(paths.root, config)
    if use_cache:
        _write_cache(paths, stamp, config)
    return Workspace(paths.root, config)


def path_problems(domains: list[tuple[int, str, str]], root: str, file_label: str) -> list[str]:
    """Problems with domain paths on disk: (index, name, path) of each domain."""
    problems = []
    for i, name, rel in domains:
        path = rel if os.path.isabs(rel) else os.path.join(root, rel)
        if not os.path.exists(path):
            problems.append(f"{file_label}: domains[{i}] ({name}).path: {path} does not exist")
        elif not os.path.isdir(path):
            problems.append(f"{file_label}: domains[{i}] ({name}).path: {path} is not a directory")
    return problems


def workspace_from_config(root: str, config: dict) -> Workspace:
    """The workspace of a config already validated (its model_dump(mode="json")), as
    load_workspace builds it, without reading and validating the file a second time."""
    paths = WorkspacePaths(os.path.abspath(root))
    _add_scope_regexes(paths.root, config)
    return Workspace(paths.root, config)


def _add_scope_regexes(root: str, config: dict) -> None:
    """Compile each domain's scope globs once (pathspec) and keep the regexes as text, so the
    edit guard on the hook path matches paths with `re` alone."""
    from comm_node_tui.protocol.globs import Glob

    for d in config.get("domains", []):
        base = d["path"] if os.path.isabs(d["path"]) else os.path.join(root, d["path"])
        d["scope_regex"] = [Glob(base, s).regex() for s in d.get("scope", ["**"])]


def _write_cache(paths: WorkspacePaths, stamp: list[int], config: dict) -> None:
    from comm_node_tui.protocol.fileio import atomic_write, ensure_dir

    try:
        ensure_dir(paths.guarded)
        atomic_write(
            paths.config_cache,
            json.dumps({"version": CACHE_VERSION, "stamp": stamp, "config": config}),
        )
    except OSError:
        pass  # a read-only workspace still works, only slower


def resolve_domain(ws: Workspace, explicit: str | None = None, cwd: str | None = None) -> Domain:
    """--domain, else $COMM_NODE_DOMAIN, else the domain whose path holds the current dir."""
    if explicit:
        return ws.domain(explicit)
    env = os.environ.get("COMM_NODE_DOMAIN")
    if env:
        if env not in ws.domains:
            known = ", ".join(sorted(ws.domains)) or "none"
            raise CommNodeError(f"COMM_NODE_DOMAIN: unknown domain '{env}' (known: {known})")
        return ws.domains[env]
    here = cwd or os.getcwd()
    hits = ws.domain_of_path(here)
    if not hits:
        raise CommNodeError(
            f"{here} is in no domain of {ws.project}: cd into a domain, or pass --domain NAME"
        )
    deepest = [d for d in hits if d.path == hits[0].path]
    if len(deepest) > 1:
        names = ", ".join(d.name for d in deepest)
        raise CommNodeError(
            f"{here} belongs to several domains ({names}): pass --domain NAME "
            "or set COMM_NODE_DOMAIN"
        )
    return hits[0]
