"""JavaScript and TypeScript imports, found with regexes on comment-free text.

Forms: `import ... from "x"`, `import "x"`, `export ... from "x"`, `require("x")` and
dynamic `import("x")` (a template literal without `${}` counts). Relative specifiers are
resolved like Node and TypeScript do: the exact file, then with an extension, then a
directory's `index`; a `.js` specifier may name a `.ts` source. A bare specifier resolves
when it names a package of the workspace (a `package.json` "name"); other packages are
outside the workspace and never break a rule.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

from comm_node_tui.boundaries.found import FoundImport, ParseError

EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts", ".json")
SOURCE_SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts")
_TS_FOR_JS = {".js": (".ts", ".tsx"), ".mjs": (".mts",), ".cjs": (".cts",), ".jsx": (".tsx",)}

_Q = r"""(['"])((?:(?!\1)[^\\\n]|\\.)+)\1"""
_PATTERNS = [
    # import x from "m"; import {a, b as c} from "m"; import * as ns from "m"; import type ...
    re.compile(r"\bimport\s+(?!\()(?:type\s+)?[\w$*{}\s,]+?\s+from\s*" + _Q),
    re.compile(r"\bimport\s*" + _Q),  # import "m" (side effects)
    re.compile(r"\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*" + _Q),
    re.compile(r"\brequire\s*\(\s*" + _Q + r"\s*\)"),
    re.compile(r"\bimport\s*\(\s*" + _Q + r"\s*[,)]"),
    re.compile(r"\bimport\s*\(\s*`([^`$\\]+)`\s*[,)]"),
]


def strip_comments(text: str) -> str:
    """Blank out // and /* */ comments, keeping strings, template literals and newlines
    (so line numbers and offsets still match the file)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c in "'\"`":
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n" and c != "`":
                    break  # an unterminated string ends at the line's end
                j += 1
            out.append(text[i : j + 1])
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in "/'\"`":
                j += 1
            if j == i:
                j += 1
            out.append(text[i:j])
            i = j
    return "".join(out)


@lru_cache(maxsize=65536)
def _isfile(path: str) -> bool:
    return os.path.isfile(path)


def clear_caches() -> None:
    _isfile.cache_clear()


def resolve_path(base: str) -> str | None:
    """Node/TypeScript resolution of a path without the package lookup."""
    if _isfile(base):
        return base
    stem, ext = os.path.splitext(base)
    for alt in _TS_FOR_JS.get(ext, ()):
        if _isfile(stem + alt):
            return stem + alt
    for ext in EXTENSIONS:
        if _isfile(base + ext):
            return base + ext
    for ext in EXTENSIONS:
        index = os.path.join(base, "index" + ext)
        if _isfile(index):
            return index
    return None


def _package_target(spec: str, packages: dict[str, str]) -> str | None:
    parts = spec.split("/")
    name = "/".join(parts[:2]) if spec.startswith("@") else parts[0]
    root = packages.get(name)
    if root is None:
        return None
    rest = spec[len(name) :].lstrip("/")
    if rest:
        return resolve_path(os.path.join(root, rest)) or resolve_path(
            os.path.join(root, "src", rest)
        )
    return (
        resolve_path(os.path.join(root, "src", "index"))
        or resolve_path(os.path.join(root, "index"))
        or os.path.join(root, "package.json")
    )


def find_imports(path: str, source: bytes, packages: dict[str, str]) -> list[FoundImport]:
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start})") from None
    clean = strip_comments(text)
    seen: set[int] = set()
    out: list[FoundImport] = []
    base_dir = os.path.dirname(path)
    for rx in _PATTERNS:
        for m in rx.finditer(clean):
            last = m.lastindex
            assert last is not None  # every pattern ends in the specifier's group, always set
            spec = m.group(last)
            start = m.start(last)
            if start in seen:
                continue
            seen.add(start)
            line = clean.count("\n", 0, m.start()) + 1  # where the statement starts
            if spec.startswith((".", "/")):
                hit = resolve_path(os.path.normpath(os.path.join(base_dir, spec)))
            else:
                hit = _package_target(spec, packages)
            out.append(FoundImport(line, spec, [hit] if hit else []))
    out.sort(key=lambda f: f.line)
    return out
