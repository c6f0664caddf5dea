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


def run_handler(module_name: str, func_name: str, args: object) -> int:
    """Run a command's handler with the CLI's error contract: a CommNodeError is one line on
    stderr and its exit code, ^C is 130, a closed stdout is not an error, an OSError is one
    line naming the file."""
    import sys

    try:
        # __import__, not importlib: importlib's package costs the hot path its import time
        module = __import__(module_name, fromlist=[func_name])
        return int(getattr(module, func_name)(args) or 0)
    except CommNodeError as exc:
        print(f"comm-node: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"comm-node: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
