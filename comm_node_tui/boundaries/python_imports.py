"""Python imports, found with `ast` and resolved to files.

Absolute imports are looked up under the search roots (the file's own package root first,
then the roots the checker passes: the domain's directory and its `src/`, the repository,
the other domains); a module is `a/b.py`, `a/b/__init__.py`, or a namespace package
directory holding Python files. `from x import y` resolves to the submodule `x/y` when there
is one, else to `x` itself. Relative imports count packages up from the file.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from functools import lru_cache

from comm_node_tui.boundaries.found import FoundImport, ParseError


@lru_cache(maxsize=65536)
def _isfile(path: str) -> bool:
    return os.path.isfile(path)


@lru_cache(maxsize=16384)
def _is_namespace_dir(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return any(e.name.endswith(".py") for e in it)
    except OSError:
        return False


def clear_caches() -> None:
    """Forget file existence (the engine calls this before each check)."""
    _isfile.cache_clear()
    _is_namespace_dir.cache_clear()
    package_root.cache_clear()


def module_file(root: str, dotted: str) -> str | None:
    """The file (or namespace directory) of module `dotted` under `root`, if any."""
    if not dotted:
        return None
    base = os.path.join(root, *dotted.split("."))
    if _isfile(base + ".py"):
        return base + ".py"
    init = os.path.join(base, "__init__.py")
    if _isfile(init):
        return init
    if _is_namespace_dir(base):
        return base
    return None


@lru_cache(maxsize=16384)
def package_root(directory: str) -> str:
    """The directory above the outermost package holding `directory`."""
    while _isfile(os.path.join(directory, "__init__.py")):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory


def _resolve_absolute(module: str, roots: list[str]) -> str | None:
    for root in roots:
        hit = module_file(root, module)
        if hit:
            return hit
    return None


def _relative_base(path: str, level: int) -> str:
    """The package directory `level` dots up from the file at `path`."""
    base = os.path.dirname(path)
    for _ in range(level - 1):
        base = os.path.dirname(base)
    return base


def find_imports(path: str, source: bytes, roots: list[str]) -> list[FoundImport]:
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ParseError(f"Python syntax error{where}: {getattr(exc, 'msg', exc)}") from None
    search = [package_root(os.path.dirname(path)), *roots]
    out: list[FoundImport] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                hit = _resolve_absolute(alias.name, search)
                out.append(FoundImport(node.lineno, f"import {alias.name}", [hit] if hit else []))
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            look: Callable[[str], str | None]
            if node.level:
                base = _relative_base(path, node.level)
                text = "." * node.level + mod

                def look(dotted: str, base: str = base) -> str | None:
                    if not dotted:
                        init = os.path.join(base, "__init__.py")
                        return init if _isfile(init) else (base if os.path.isdir(base) else None)
                    return module_file(base, dotted)

            else:
                text = mod

                def look(dotted: str) -> str | None:
                    return _resolve_absolute(dotted, search)

            targets: list[str] = []
            parent = look(mod)
            for alias in node.names:
                if alias.name != "*":
                    sub = look(f"{mod}.{alias.name}" if mod else alias.name)
                    if sub:
                        targets.append(sub)
                        continue
                if parent and parent not in targets:
                    targets.append(parent)
            names = ", ".join(a.name for a in node.names)
            out.append(FoundImport(node.lineno, f"from {text} import {names}", targets))
    out.sort(key=lambda f: f.line)
    return out
