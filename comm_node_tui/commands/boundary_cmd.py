"""check, graph, and the git half of `hooks install/uninstall --git`."""

from __future__ import annotations

import os
import sys

from comm_node_tui.errors import EXIT_BOUNDARY, CommNodeError


def _domain_name(args, ws) -> str | None:
    """--domain, else $COMM_NODE_DOMAIN (an agent checks its own work), else every domain."""
    name = getattr(args, "domain", None) or os.environ.get("COMM_NODE_DOMAIN") or None
    if name and name not in ws.domains and not getattr(args, "domain", None):
        return None  # a stale environment variable does not narrow the check
    return name


def _run(args, ws, **kw):
    from comm_node_tui.boundaries.check import run_check
    from comm_node_tui.boundaries.gitfiles import GitError

    try:
        return run_check(ws, **kw)
    except GitError as exc:
        raise CommNodeError(str(exc)) from None


def check(args) -> int:
    from comm_node_tui.commands.context import print_json, workspace

    ws = workspace(args)
    domain = _domain_name(args, ws)
    if domain:
        ws.domain(domain)  # an unknown name is a one-line error
    report = _run(args, ws, domain=domain, staged=args.staged, repo=args.repo)
    if report.violations or args.hook:
        _log(ws, report, args.hook)
    if args.json:
        print_json(report.to_json())
    else:
        out = sys.stderr if args.hook else sys.stdout
        if args.hook and report.violations:
            print(
                f"comm-node: commit blocked: {len(report.violations)} boundary violation(s)",
                file=out,
            )
        for v in report.violations:
            print(("  " if args.hook else "") + v.describe(), file=out)
        for u in report.unparsed:
            print(f"warning: {u['file']}: not checked: {u['error']}", file=sys.stderr)
        if report.not_git:
            print(
                f"note: not in git, changes not checked: {', '.join(report.not_git)}",
                file=sys.stderr,
            )
        if args.hook and report.violations:
            print("  fix them, or commit anyway with `git commit --no-verify`", file=out)
        elif not args.hook:
            print(
                f"{len(report.violations)} violation(s); {report.files_checked} files, "
                f"{report.imports_checked} imports checked ({report.mode}, "
                f"{report.seconds:.2f} s)"
            )
    return EXIT_BOUNDARY if report.violations else 0


def _log(ws, report, hook: bool) -> None:
    from comm_node_tui.protocol.events import Event, EventLog

    n = len(report.violations)
    if hook:
        etype = "boundary.commit_blocked" if n else "boundary.commit_checked"
        msg = f"pre-commit: {n} violation(s)" if n else "pre-commit: clean"
    else:
        etype, msg = "boundary.check", f"comm-node check: {n} violation(s)"
    domains = sorted({v.domain for v in report.violations})
    try:
        log = EventLog(ws.paths.events, max_bytes=1 << 62)  # append only: the engine rotates
        log.append(
            Event(
                etype,
                msg,
                level="warn" if n else "info",
                agent=domains[0] if len(domains) == 1 else None,
                data={"violations": [v.to_json() for v in report.violations[:50]], "count": n},
            )
        )
        log.close()
    except OSError:
        pass  # the verdict matters more than the log line


def graph(args) -> int:
    from comm_node_tui.boundaries.graph import to_dot, to_mermaid
    from comm_node_tui.commands.context import workspace

    ws = workspace(args)
    report = _run(args, ws)
    sys.stdout.write(to_mermaid(ws, report) if args.format == "mermaid" else to_dot(ws, report))
    return 0


def git_hooks(args, install: bool) -> int:
    from comm_node_tui.boundaries import precommit
    from comm_node_tui.boundaries.gitfiles import repo_top
    from comm_node_tui.commands.context import print_json, workspace

    ws = workspace(args)
    doms = [ws.domain(args.domain)] if getattr(args, "domain", None) else list(ws.domains.values())
    tops = []
    for d in doms:
        top = repo_top(d.path)
        if top is None:
            print(f"{d.name}: {d.path} is not in a git repository; skipped", file=sys.stderr)
        elif top not in tops:
            tops.append(top)
    if not tops:
        raise CommNodeError("no domain is in a git repository: nothing to install")
    out = [precommit.install(t, ws.root) if install else precommit.uninstall(t) for t in tops]
    if args.json:
        print_json(out)
        return 0
    for r in out:
        if install:
            kept = f"; your hook kept and run first ({r['chained']})" if r["chained"] else ""
            print(f"{r['repo']}: pre-commit guard installed ({r['hook']}){kept}")
        else:
            back = "; your previous hook restored" if r["restored"] else ""
            state = "removed" if r["removed"] else "was not installed"
            print(f"{r['repo']}: pre-commit guard {state}{back}")
    return 0
