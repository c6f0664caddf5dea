"""Errors that reach the operator as one line and a documented exit code.

Kept free of imports: every CLI invocation (including the agents' hot path) loads it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_BOUNDARY = 4


class CommNodeError(Exception):
    """An error meant for a human: `str(err)` is the whole one-line message."""

    exit_code = EXIT_ERROR


class UsageError(CommNodeError):
    exit_code = EXIT_USAGE


class ConflictError(CommNodeError):
    exit_code = EXIT_CONFLICT


class BoundaryError(CommNodeError):
    exit_code = EXIT_BOUNDARY


class ConfigError(CommNodeError):
    """comm-node.toml is unreadable or invalid; `problems` holds one line per problem."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        first = problems[0] if problems else "invalid"
        more = (
            f" (and {len(problems) - 1} more: run `comm-node config check`)"
            if len(problems) > 1
            else ""
        )
        super().__init__(f"{first}{more}")
