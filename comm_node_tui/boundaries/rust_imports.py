"""Rust imports: `use` trees (`crate::`, `super::`, `self::`, and crates of the workspace)
and `mod x;` declarations, resolved to module files.

A module path is walked one segment at a time: `seg.rs` or `seg/mod.rs` under the current
module's directory; the first segment that is not a module is an item, and the import
resolves to the last module file found. The crate root is `src/lib.rs` or `src/main.rs`
under the nearest `Cargo.toml`.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

from comm_node_tui.boundaries.found import FoundImport, ParseError

_USE = re.compile(r"\b(?:pub(?:\s*\([^)]*\))?\s+)?use\s+([^;]+);")
_MOD = re.compile(r"(?:^|[;}\s])(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+([A-Za-z_]\w*)\s*;")


def strip_comments(text: str) -> str:
    """Blank out comments (nested block comments too) and string contents, keeping
    newlines, so `use` inside a string or a comment is not taken for an import."""
    out: list[str] = []
    i, n, depth = 0, len(text), 0
    while i < n:
        c = text[i]
        two = text[i : i + 2]
        if depth:
            if two == "/*":
                depth += 1
                out.append("  ")
                i += 2
            elif two == "*/":
                depth -= 1
                out.append("  ")
                i += 2
            else:
                out.append("\n" if c == "\n" else " ")
                i += 1
        elif two == "/*":
            depth = 1
            out.append("  ")
            i += 2
        elif two == "//":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('"' + "".join("\n" if ch == "\n" else " " for ch in text[i + 1 : j]) + '"')
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_tree(tree: str) -> list[str]:
    """`a::{b, c::{d, e as f}, self}` -> ["a::b", "a::c::d", "a::c::e", "a"]."""
    tree = re.sub(r"\s+as\s+[A-Za-z_]\w*", "", tree)  # `e as f` imports e
    tree = re.sub(r"\s+", "", tree)
    if tree.count("{") != tree.count("}"):
        raise ParseError(f"unbalanced braces in `use {tree[:60]}`")

    def go(prefix: str, text: str) -> list[str]:
        brace = text.find("{")
        if brace < 0:
            if text.endswith("::self"):
                text = text[: -len("::self")]
            if text == "self" and prefix:
                return [prefix.rstrip(":")]
            return [prefix + text]
        head = text[:brace]
        inner = text[brace + 1 : text.rfind("}")]
        items, depth, cur = [], 0, ""
        for ch in inner:
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        if cur:
            items.append(cur)
        out: list[str] = []
        for item in items:
            out.extend(go(prefix + head, item))
        return out

    return go("", tree)


@lru_cache(maxsize=65536)
def _isfile(path: str) -> bool:
    return os.path.isfile(path)


@lru_cache(maxsize=4096)
def crate_root(directory: str) -> str | None:
    """The `src/lib.rs` or `src/main.rs` of the crate holding `directory`."""
    d = directory
    while True:
        if _isfile(os.path.join(d, "Cargo.toml")):
            for name in ("lib.rs", "main.rs"):
                root = os.path.join(d, "src", name)
                if _isfile(root):
                    return root
            return None
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def clear_caches() -> None:
    _isfile.cache_clear()
    crate_root.cache_clear()


def module_dir(path: str) -> str:
    """Where the child modules of the module in `path` live."""
    name = os.path.basename(path)
    if name in ("mod.rs", "lib.rs", "main.rs"):
        return os.path.dirname(path)
    return os.path.splitext(path)[0]


def _walk(file: str, segments: list[str]) -> str:
    """Follow module segments from the module in `file`; the last module file reached."""
    for seg in segments:
        d = module_dir(file)
        for cand in (os.path.join(d, seg + ".rs"), os.path.join(d, seg, "mod.rs")):
            if _isfile(cand):
                file = cand
                break
        else:
            break
    return file


def _parent_module(file: str) -> str | None:
    """The file of the parent module of the module in `file`."""
    name = os.path.basename(file)
    if name in ("lib.rs", "main.rs"):
        return None
    d = os.path.dirname(file)
    if name == "mod.rs":
        d = os.path.dirname(d)
    # the parent is d.rs (2018 style) or d/mod.rs, or the crate root living in d
    for cand in (
        d + ".rs",
        os.path.join(d, "mod.rs"),
        *(os.path.join(d, n) for n in ("lib.rs", "main.rs")),
    ):
        if _isfile(cand):
            return cand
    return None


def resolve(path: str, use_path: str, crates: dict[str, str]) -> str | None:
    segs = [s for s in use_path.split("::") if s]
    if not segs or use_path.startswith("::"):
        return None
    head = segs[0]
    if head == "crate":
        root = crate_root(os.path.dirname(path))
        return _walk(root, segs[1:]) if root else None
    if head in ("self", "super"):
        file: str | None = path
        while segs and segs[0] in ("self", "super"):
            if segs.pop(0) == "super":
                file = _parent_module(file) if file else None
        return _walk(file, segs) if file else None
    root = crates.get(head)
    if root:
        return _walk(root, segs[1:])
    return None  # std, a dependency, or an item in scope: not a file of the workspace


def find_imports(path: str, source: bytes, crates: dict[str, str]) -> list[FoundImport]:
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start})") from None
    clean = strip_comments(text)
    out: list[FoundImport] = []
    for m in _USE.finditer(clean):
        line = clean.count("\n", 0, m.start(1)) + 1
        targets: list[str] = []
        for use_path in expand_tree(m.group(1)):
            hit = resolve(path, use_path, crates)
            if hit and hit != path and hit not in targets:
                targets.append(hit)
        out.append(FoundImport(line, "use " + re.sub(r"\s+", " ", m.group(1).strip()), targets))
    for m in _MOD.finditer(clean):
        line = clean.count("\n", 0, m.start(1)) + 1
        d = module_dir(path)
        name = m.group(1)
        hit = next(
            (
                c
                for c in (os.path.join(d, name + ".rs"), os.path.join(d, name, "mod.rs"))
                if _isfile(c)
            ),
            None,
        )
        out.append(FoundImport(line, f"mod {name}", [hit] if hit else []))
    out.sort(key=lambda f: f.line)
    return out
