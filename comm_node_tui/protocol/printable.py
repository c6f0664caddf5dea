"""Text from agents or other machines (paths, node names) shown on one line: every character
that is not printable (controls, escapes, line breaks) becomes `?`, so it can neither move
the cursor nor pass for another line of output."""

from __future__ import annotations


def printable(text: str, limit: int | None = None) -> str:
    """`text` (its first `limit` characters) with nothing but printable characters."""
    if limit is not None:
        text = text[:limit]
    return "".join(c if c.isprintable() else "?" for c in text)
