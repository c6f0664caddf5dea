"""comm-node: a control room for many Claude Code agents working on one project."""

__version__ = "0.1.0"
