"""`comm-node check`: files changed outside a domain's scope, and imports that break its
rules. Plain data in and out; the CLI, the pre-commit hook and the engine share it."""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import asdict, dataclass, field

from comm_node_tui.boundaries import gitfiles, js_imports, python_imports, rust_imports
from comm_node_tui.boundaries.found import FoundImport, ParseError
from comm_node_tui.boundaries.managed import is_managed
from comm_node_tui.boundaries.rules import Rules, relative
from comm_node_tui.workspace.model import Domain, Workspace

MAX_SOURCE_BYTES = 2 * 1024 * 1024  # larger "source" is generated or data: reported, skipped
LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".rs": "rust",
    **{ext: "js" for ext in js_imports.SOURCE_SUFFIXES},
}


@dataclass(slots=True)
class Violation:
    kind: str  # "scope" (a change outside the scope) or "import"
    domain: str
    file: str  # relative to the workspace when inside it
    line: int  # 0 for scope violations
    rule: str
    owner: str | None  # the domain that owns the file or the import's target
    import_text: str = ""
    target: str = ""

    @property
    def key(self) -> tuple:
        return (self.kind, self.domain, self.file, self.import_text, self.target)

    def to_json(self) -> dict:
        out = asdict(self)
        out["import"] = out.pop("import_text")
        return out

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        owner = f" (owned by {self.owner})" if self.owner else ""
        if self.kind == "scope":
            return f"{self.domain}: {where}: changed outside its scope{owner}; {self.rule}"
        return f"{self.domain}: {where}: {self.import_text} -> {self.target}{owner}: {self.rule}"


@dataclass
class Report:
    mode: str
    violations: list[Violation] = field(default_factory=list)
    unparsed: list[dict] = field(default_factory=list)
    edges: dict[tuple[str, str], dict] = field(default_factory=dict)
    files_checked: int = 0
    imports_checked: int = 0
    not_git: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "violations": [v.to_json() for v in self.violations],
            "unparsed": self.unparsed,
            "edges": [{"from": a, "to": b, **info} for (a, b), info in sorted(self.edges.items())],
            "files_checked": self.files_checked,
            "imports_checked": self.imports_checked,
            "not_git": self.not_git,
            "seconds": round(self.seconds, 3),
        }


class ImportCache:
    """Imports per file, kept while the file (size, mtime) and the set of files around it
    stay the same: the engine re-checks every few seconds and most files do not change."""

    def __init__(self) -> None:
        self.epoch: object = None
        self.entries: dict[str, tuple[tuple[int, int], list[FoundImport] | str]] = {}

    def start(self, epoch: object) -> None:
        if epoch != self.epoch:
            # a file appeared or went away: resolution may differ, parse results may not
            self.epoch = epoch
            self.entries.clear()
            for mod in (python_imports, js_imports, rust_imports):
                mod.clear_caches()


def _manifests(dirs: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Workspace JS packages (package.json name -> dir) and Rust crates (name -> crate root
    file), from each domain directory and two levels below it."""
    packages: dict[str, str] = {}
    crates: dict[str, str] = {}

    def visit(d: str, depth: int) -> None:
        pkg = os.path.join(d, "package.json")
        if os.path.isfile(pkg):
            try:
                import json

                with open(pkg, "rb") as fh:
                    name = json.loads(fh.read(1 << 20)).get("name")
                if isinstance(name, str) and name:
                    packages.setdefault(name, d)
            except (RecursionError, OSError, ValueError, AttributeError):
                pass
        cargo = os.path.join(d, "Cargo.toml")
        if os.path.isfile(cargo):
            try:
                with open(cargo, "rb") as fh:
                    name = tomllib.loads(fh.read(1 << 20).decode()).get("package", {}).get("name")
                root = rust_imports.crate_root(d)
                if isinstance(name, str) and root:
                    crates.setdefault(name.replace("-", "_"), root)
            except (OSError, ValueError, AttributeError):
                pass
        if depth:
            try:
                subdirs = [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
            except OSError:
                return
            for sub in sorted(subdirs):
                if os.path.basename(sub) not in gitfiles.SKIP_DIRS:
                    visit(sub, depth - 1)

    for d in dirs:
        visit(d, 2)
    return packages, crates


def _python_roots(ws: Workspace, dom: Domain, top: str | None) -> list[str]:
    roots = [dom.path, os.path.join(dom.path, "src")]
    if top:
        roots += [top, os.path.join(top, "src")]
    for other in ws.domains.values():
        roots += [other.path, os.path.join(other.path, "src")]
    roots.append(ws.root)
    return [r for r in dict.fromkeys(roots) if os.path.isdir(r)]


def _is_runtime(ws: Workspace, path: str) -> bool:
    """comm-node's own files (boundaries/managed.py): never a boundary question."""
    return f"{os.sep}.comm-node{os.sep}" in path or is_managed(ws, path)


def run_check(
    ws: Workspace,
    *,
    domain: str | None = None,
    staged: bool = False,
    repo: str | None = None,
    cache: ImportCache | None = None,
) -> Report:
    t0 = time.perf_counter()
    report = Report(mode="staged" if staged else "worktree")
    rules = Rules(ws)
    strict = ws.domain(domain) if domain else None
    selected = [strict] if strict else list(ws.domains.values())
    tops: dict[str, str | None] = {d.name: gitfiles.repo_top(d.path) for d in ws.domains.values()}
    repo = os.path.realpath(repo) if repo else None

    # Which repositories (or plain directories) to look at, and each one's files.
    sources: dict[str, tuple[str | None, list[Domain]]] = {}
    for d in selected:
        top = tops[d.name]
        if repo and top != repo:
            continue
        key = top or d.path
        sources.setdefault(key, (top, []))[1].append(d)
        if top is None:
            report.not_git.append(d.name)

    files: list[str] = []
    changes: list[str] = []
    contents: dict[str, bytes | None] = {}
    for key, (top, _doms) in sources.items():
        if top is None:
            files += gitfiles.walk(key)  # no git: imports only, no change tracking
        elif staged:
            staged_files = gitfiles.staged(top)
            changes += staged_files
            parse = [p for p in staged_files if os.path.splitext(p)[1] in LANGUAGES]
            contents.update(gitfiles.staged_contents(top, parse, MAX_SOURCE_BYTES))
            files += list(contents)
        else:
            files += gitfiles.tracked_and_new(top)
            changes += gitfiles.changed(top)
    files = [os.path.realpath(f) if os.path.islink(f) else f for f in dict.fromkeys(files)]

    # 1. Changes outside the scope.
    selected_names = {d.name for d in selected}
    for path in dict.fromkeys(changes):
        if _is_runtime(ws, path):
            continue
        owner = rules.owner(path)
        if strict is not None:
            if rules.in_scope(strict, path):
                continue
            blamed = strict
        else:
            if owner is not None:
                continue
            holders = ws.domain_of_path(path)
            if not holders or holders[0].name not in selected_names:
                continue  # outside every domain's directory: the operator's files
            blamed = holders[0]
        rule = (
            f"{blamed.name}'s scope is {', '.join(blamed.scope)}"
            if strict is not None
            else "no domain's scope covers it"
        )
        report.violations.append(
            Violation("scope", blamed.name, relative(ws, path), 0, rule, owner)
        )

    # 2. Imports.
    packages, crates = _manifests([d.path for d in ws.domains.values()])
    if cache is not None:
        cache.start((len(files), hash(tuple(files)), tuple(sorted(packages)), tuple(crates)))
    roots_of: dict[str, list[str]] = {}
    for path in files:
        lang = LANGUAGES.get(os.path.splitext(path)[1])
        if lang is None:
            continue
        owner = rules.owner(path)
        if owner is None or owner not in selected_names:
            continue
        dom = ws.domains[owner]
        found = _imports(
            path, lang, dom, contents, staged, cache, packages, crates, report, roots_of, ws, tops
        )
        if found is None:
            continue
        report.files_checked += 1
        for imp in found:
            report.imports_checked += 1
            for target in imp.targets:
                target_owner = rules.owner(target)
                verdict = rules.judge(dom, target)
                if target_owner and target_owner != dom.name:
                    edge = report.edges.setdefault(
                        (dom.name, target_owner), {"count": 0, "violations": 0}
                    )
                    edge["count"] += 1
                    edge["violations"] += verdict is not None
                if verdict is not None:
                    rule, tgt_owner = verdict
                    report.violations.append(
                        Violation(
                            "import",
                            dom.name,
                            relative(ws, path),
                            imp.line,
                            rule,
                            tgt_owner,
                            imp.text,
                            relative(ws, target),
                        )
                    )
    report.violations.sort(key=lambda v: (v.domain, v.file, v.line, v.import_text))
    report.seconds = time.perf_counter() - t0
    return report


def _imports(
    path: str,
    lang: str,
    dom: Domain,
    contents: dict[str, bytes | None],
    staged: bool,
    cache: ImportCache | None,
    packages: dict[str, str],
    crates: dict[str, str],
    report: Report,
    roots_of: dict[str, list[str]],
    ws: Workspace,
    tops: dict[str, str | None],
) -> list[FoundImport] | None:
    stamp = None
    if staged:
        source = contents.get(path)
        if source is None:
            if path in contents:
                report.unparsed.append({"file": relative(ws, path), "error": "too large"})
            return None
    else:
        try:
            st = os.stat(path)
        except OSError as exc:
            report.unparsed.append({"file": relative(ws, path), "error": exc.strerror or "?"})
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        if cache is not None:
            hit = cache.entries.get(path)
            if hit and hit[0] == stamp:
                if isinstance(hit[1], str):
                    report.unparsed.append({"file": relative(ws, path), "error": hit[1]})
                    return None
                return hit[1]
        if st.st_size > MAX_SOURCE_BYTES:
            report.unparsed.append({"file": relative(ws, path), "error": "too large"})
            return None
        try:
            with open(path, "rb") as fh:
                source = fh.read(MAX_SOURCE_BYTES + 1)
        except OSError as exc:
            report.unparsed.append({"file": relative(ws, path), "error": exc.strerror or "?"})
            return None
    try:
        if lang == "python":
            roots = roots_of.get(dom.name)
            if roots is None:
                roots = roots_of[dom.name] = _python_roots(ws, dom, tops.get(dom.name))
            found = python_imports.find_imports(path, source, roots)
        elif lang == "js":
            found = js_imports.find_imports(path, source, packages)
        else:
            found = rust_imports.find_imports(path, source, crates)
    except ParseError as exc:
        report.unparsed.append({"file": relative(ws, path), "error": str(exc)})
        if cache is not None and stamp is not None:
            cache.entries[path] = (stamp, str(exc))
        return None
    if cache is not None and stamp is not None:
        cache.entries[path] = (stamp, found)
    return found
