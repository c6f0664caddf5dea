"""The Claude Code CLI comm-node is tested with: its pinned version, and where it is installed.

The version lives here and nowhere else: `scripts/install-claude-code.sh` reads it, `comm-node
--version` reports it, the tests run exactly this build. It is installed from npm into a
cache inside the project (never globally, never into the user's ~/.claude); the user's own
`claude` on PATH is what real agents run.
"""

from __future__ import annotations

import os

TESTED_VERSION = "2.1.330"
NPM_PACKAGE = "@anthropic-ai/claude-code"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def version_line() -> str:
    """What `comm-node --version` prints."""
    from comm_node_tui import __version__

    return f"comm-node {__version__} (tested with Claude Code {TESTED_VERSION})"


def cache_dir(version: str = TESTED_VERSION) -> str:
    """Where the project's own copy lives (`$COMM_NODE_CLAUDE_CACHE` moves it)."""
    base = os.environ.get("COMM_NODE_CLAUDE_CACHE") or os.path.join(_ROOT, ".cache", "claude-code")
    return os.path.join(base, version)


def _platform_binary(prefix: str) -> str | None:
    """The native binary of the per-platform package: it runs even when npm skipped the
    postinstall script that links it over the package's stub."""
    scope = os.path.join(prefix, "node_modules", "@anthropic-ai")
    try:
        names = sorted(os.listdir(scope))
    except OSError:
        return None
    for name in names:
        if name.startswith("claude-code-"):
            path = os.path.join(scope, name, "claude")
            if os.access(path, os.X_OK):
                return path
    return None


def installed_binary(version: str = TESTED_VERSION) -> str | None:
    """The pinned build's executable, or None when it is not installed."""
    prefix = cache_dir(version)
    native = _platform_binary(prefix)
    if native:
        return native
    stub = os.path.join(prefix, "node_modules", ".bin", "claude")
    return stub if os.access(stub, os.X_OK) else None


def user_binary() -> str | None:
    """The `claude` a user's agents run (on PATH)."""
    import shutil  # here: `comm-node --version` (before every commit) reads only the version

    return shutil.which("claude")
