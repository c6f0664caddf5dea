"""What the language parsers hand back: one import, resolved to files in the workspace."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class FoundImport:
    line: int
    text: str  # the import as written, e.g. "backend.db" or "../api/client"
    targets: list[str] = field(default_factory=list)  # absolute paths it resolves to


class ParseError(Exception):
    """A file that cannot be parsed (reported, never fatal)."""
