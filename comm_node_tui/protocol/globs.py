"""Gitignore-style globs on workspace-absolute paths: matching, overlap and containment.

Path matching uses pathspec's gitignore patterns (compiled to regexes, which are cached as
text so hot paths such as the edit guard need only `re`). Two questions pathspec does not
answer are answered here segment by segment, with `fnmatch` for a single segment:
- do two globs overlap (some path matches both)?
- does a glob cover another (every path the second matches, the first matches)?
Both are exact for literal segments, `*`, `**`, `?` and character classes within one
segment, and err towards "overlap" when two segments both hold several wildcards.

A pattern is relative to its domain's directory. Gitignore rules apply: a pattern with no
slash (except a trailing one) matches at any depth; a leading slash anchors it; a pattern
that names a directory covers everything below it. One departure, for overlap and
containment only: a last segment with an extension (`a.ts`, `*.py`) is taken to name files,
unless the pattern ends in `/` or such a directory exists.
"""

from __future__ import annotations

import os
from functools import cache, lru_cache

WILD = frozenset("*?[")


def fnmatchcase(name: str, pat: str) -> bool:
    """fnmatch.fnmatchcase, imported on first use: fnmatch brings `re` (15 ms of a
    SessionStart hand-off, which builds globs for the agent's locks but never compares two
    wildcard segments; issue 22)."""
    from fnmatch import fnmatchcase as match

    return match(name, pat)


class Glob:
    """A pattern anchored at a domain directory, as segments of an absolute path."""

    __slots__ = ("base_len", "pattern", "segs")

    def __init__(self, base: str, pattern: str) -> None:
        self.pattern = pattern
        base_segs = _base_segs(base)
        self.base_len = len(base_segs)
        segs = normalize(pattern)
        if segs[-1] == "**" and len(segs) > 1 and _looks_like_file(segs[-2], pattern):
            candidate = os.path.join(base, *segs[:-1])
            if "**" not in segs[:-1] and not os.path.isdir(candidate):
                segs = segs[:-1]
        self.segs = base_segs + segs

    @property
    def literal_prefix(self) -> tuple[str, ...]:
        out = list(self.segs[: self.base_len])
        for seg in self.segs[self.base_len :]:
            if seg == "**" or any(c in WILD for c in seg):
                break
            out.append(seg)
        return tuple(out)

    @property
    def text(self) -> str:
        """The absolute glob, e.g. `/ws/backend/src/**`."""
        return "/" + "/".join(self.segs)

    def regex(self) -> str:
        """A regex (text) matching absolute paths without the leading slash."""
        return glob_regex(self.segs[: self.base_len], self.pattern)

    def overlaps(self, other: Glob) -> bool:
        return _intersect(self.segs, self.base_len, other.segs, other.base_len)

    def covers(self, other: Glob) -> bool:
        return _covers(self.segs, self.base_len, other.segs, other.base_len)


@lru_cache(maxsize=1024)
def _base_segs(base: str) -> tuple[str, ...]:
    return tuple(s for s in os.path.realpath(base).split("/") if s)


def normalize(pattern: str) -> tuple[str, ...]:
    """Gitignore rules to plain segments; always ends in `**` (a match covers what is below)."""
    p = pattern.strip().replace("\\", "/")
    anchored = p.startswith("/")
    p = p.strip("/")
    parts = [s for s in p.split("/") if s and s != "."]
    if not parts:
        return ("**",)
    if not anchored and "/" not in pattern.strip().strip("/"):
        parts = ["**", *parts]
    # `a/**/**/b` is `a/**/b`
    out: list[str] = []
    for s in parts:
        if s == "**" and out and out[-1] == "**":
            continue
        out.append(s)
    if out[-1] != "**":
        out.append("**")
    return tuple(out)


def _looks_like_file(last: str, pattern: str) -> bool:
    """A last segment with an extension (`a.ts`, `*.py`) names files, so nothing lies below it.

    Gitignore lets any name be a directory; locks would then see `src/x.py` overlap
    `src/**/test_*.py` (as if x.py were a directory). A trailing slash, or an existing
    directory of that name, keeps the directory reading.
    """
    if pattern.rstrip().endswith("/") or last == "**":
        return False
    stem = last.lstrip(".")
    return "." in stem


def validate_pattern(pattern: str) -> str | None:
    """Why a lock/scope pattern is unacceptable, or None."""
    if not pattern or not pattern.strip():
        return "empty pattern"
    if "\x00" in pattern or any(ord(c) < 32 for c in pattern):
        return "control characters in the pattern"
    if pattern.startswith("!"):
        return "negated patterns ('!') cannot be locked"
    parts = pattern.replace("\\", "/").split("/")
    if ".." in parts:
        return "'..' is not allowed: patterns stay inside the domain"
    if len(pattern) > 1000:
        return "pattern is over 1000 characters"
    try:
        glob_regex((), pattern)
    except Exception as exc:  # what pathspec cannot compile (a trailing '\\', ...)
        return f"not a valid glob ({str(exc).split(':')[0]})"
    return None


@lru_cache(maxsize=4096)
def glob_regex(base_segs: tuple[str, ...], pattern: str) -> str:
    import re

    body = plain_regex(pattern.strip())
    if body is None:
        from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

        inner = GitIgnoreBasicPattern(pattern.strip()).regex
        if inner is None:  # an empty or comment-only pattern matches nothing
            return r"(?!x)x"
        body = inner.pattern.removeprefix("^")
    prefix = re.escape("/".join(base_segs) + "/") if base_segs else ""
    return "^" + prefix + body


# What makes a pattern more than plain text to pathspec: wildcards, classes, escapes; a
# leading `#` (a comment) or `!` (a negation); `.`/`..` and empty segments, and spaces at
# either end (gitignore drops trailing ones), are left to it too.
_NOT_PLAIN = frozenset("*?[]\\")


def plain_regex(pattern: str) -> str | None:
    """pathspec's regex (without its `^`) for the two commonest lock patterns, a plain path
    (`src/api/users.py`, `docs/`) and a plain directory's everything (`src/**`), or None for
    any other: importing pathspec is ~40 ms of CPU, over half of each `lock acquire` an agent
    runs. tests/test_locks.py checks the text is pathspec's own for every such pattern."""
    everything = pattern.endswith("/**")
    core = pattern[:-3] if everything else pattern
    if not core or core[0] in "#!" or pattern != pattern.strip() or "//" in pattern:
        return None
    if _NOT_PLAIN & set(core):
        return None
    directory = everything or core.endswith("/")
    core = core.strip("/")
    segs = core.split("/")
    if not core or any(s in ("", ".", "..") for s in segs):
        return None
    import re

    # gitignore: a slash before the end anchors the pattern at the base; a trailing slash
    # (or /**) matches only below a directory of that name
    anchored = pattern.startswith("/") or len(segs) > 1 or everything
    return ("" if anchored else "(?:.+/)?") + re.escape(core) + ("/" if directory else "(?:/|$)")


def _is_literal(seg: str) -> bool:
    return seg != "**" and not any(c in WILD for c in seg)


def _seg_intersect(a: str, a_lit: bool, b: str, b_lit: bool) -> bool:
    a_lit = a_lit or _is_literal(a)
    b_lit = b_lit or _is_literal(b)
    if a_lit and b_lit:
        return a == b
    if a_lit:
        return fnmatchcase(a, b)
    if b_lit:
        return fnmatchcase(b, a)
    # Both wildcards: compare the literal text before the first and after the last wildcard.
    pa, pb = _lead(a), _lead(b)
    sa, sb = _trail(a), _trail(b)
    return (pa.startswith(pb) or pb.startswith(pa)) and (sa.endswith(sb) or sb.endswith(sa))


def _lead(seg: str) -> str:
    i = min((seg.index(c) for c in WILD if c in seg), default=len(seg))
    return seg[:i]


def _trail(seg: str) -> str:
    i = max((seg.rindex(c) for c in "*?]" if c in seg), default=-1)
    return seg[i + 1 :]


def _intersect(a: tuple, alit: int, b: tuple, blit: int) -> bool:
    @cache
    def go(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "**" and i >= alit:
            return go(i + 1, j) or (j < len(b) and go(i, j + 1))
        if j < len(b) and b[j] == "**" and j >= blit:
            return go(i, j + 1) or (i < len(a) and go(i + 1, j))
        if i == len(a) or j == len(b):
            return False
        return _seg_intersect(a[i], i < alit, b[j], j < blit) and go(i + 1, j + 1)

    return go(0, 0)


def _seg_covers(s: str, s_lit: bool, p: str, p_lit: bool) -> bool:
    if s == p:
        return True
    if s_lit or _is_literal(s):
        return False  # a literal covers only itself
    if p_lit or _is_literal(p):
        return fnmatchcase(p, s)
    return s == "*"


def _covers(s: tuple, slit: int, p: tuple, plit: int) -> bool:
    @cache
    def go(i: int, j: int) -> bool:
        if i == len(s):
            return j == len(p)
        if s[i] == "**" and i >= slit:
            return go(i + 1, j) or (j < len(p) and go(i, j + 1))
        if j == len(p):
            return False
        if p[j] == "**" and j >= plit:
            return False  # p reaches any depth here; s does not
        return _seg_covers(s[i], i < slit, p[j], j < plit) and go(i + 1, j + 1)

    return go(0, 0)
