"""init (the wizard, or --from PLAN.toml) and kickoff (the meeting)."""

from __future__ import annotations

import os
import sys

from comm_node_tui.errors import CommNodeError, ConfigError, UsageError


def _root(args) -> str:
    return os.path.realpath(getattr(args, "workspace", None) or os.getcwd())


def describe(plan, root: str) -> list[str]:
    lines = []
    for c in plan.changes:
        rel = os.path.relpath(c.path, root)
        who = f" [{c.domain}]" if c.domain else ""
        lines.append(f"{c.action:9} {rel}{who}: {c.what}")
    return lines


def init(args) -> int:
    root = _root(args)
    if not args.plan:
        if not sys.stdin.isatty() or not sys.stdout.isatty():
            raise UsageError(
                "the init wizard needs a terminal; for scripts use "
                "`comm-node init --from PLAN.toml --yes`"
            )
        from comm_node_tui.kickoff.wizard import run_wizard

        return run_wizard(root)
    from comm_node_tui.kickoff.plan import check_domain_paths, load_plan
    from comm_node_tui.kickoff.scaffold import apply, build_plan, config_diff, sandbox_default
    from comm_node_tui.protocol.paths import CONFIG_NAME, STATE_DIR

    config, tasks, creations = load_plan(args.plan)
    problems = check_domain_paths(root, config, creations)
    if problems:
        raise ConfigError(args.plan, [f"{os.path.basename(args.plan)}: {p}" for p in problems])
    config, sandbox_off = sandbox_default(root, config)
    plan = build_plan(root, config, tasks, creations, sandbox_off=sandbox_off)
    pending = plan.pending
    config_change = next(c for c in plan.changes if c.path == os.path.join(root, CONFIG_NAME))
    if args.json and not args.yes:
        from comm_node_tui.commands.context import print_json

        print_json(
            [
                {
                    "path": c.path,
                    "action": c.action,
                    "what": c.what,
                    "domain": c.domain,
                    **(
                        {"hand_edited": c.hand_edited, "diff": config_diff(c)}
                        if c is config_change and c.action == "update"
                        else {}
                    ),
                }
                for c in plan.changes
            ]
        )
        return 0
    if not pending:
        print(f"{root}: up to date ({len(plan.changes)} files checked, nothing to change)")
        return 0
    for line in describe(plan, root):
        if not line.startswith("unchanged"):
            print(line)
    if config_change.action == "update":
        # The whole file is rewritten from the plan: what only the file holds (hand edits,
        # comments) is lost, so it is shown before anyone says yes.
        sys.stdout.write(config_diff(config_change))
        if config_change.hand_edited:
            print(
                f"{CONFIG_NAME} was edited since `comm-node init` wrote it: the lines marked "
                "- above are replaced by the plan's (put them in the plan to keep them); a "
                f"copy is kept in {STATE_DIR}/backups/"
            )
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("these changes need confirmation: run again with --yes")
        answer = input(f"apply {len(pending)} change(s)? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing changed")
            return 1
    done = apply(plan)
    # The file just written, loaded here where pydantic already is: its config cache spares
    # the next command (the kickoff, each agent's first hook) ~0.2 s of imports.
    try:
        from comm_node_tui.workspace.discovery import load_workspace

        load_workspace(root)
    except CommNodeError:
        pass  # said by the next command that reads it
    if config_change.backup:
        print(f"{CONFIG_NAME} as it was: {os.path.relpath(config_change.backup, root)}")
    print(f"{root}: {len(done)} change(s) made; next: `comm-node kickoff`")
    return 0


def kickoff(args) -> int:
    from comm_node_tui.commands.context import print_json, workspace
    from comm_node_tui.kickoff.meeting import Meeting

    ws = workspace(args)
    if not ws.domains:
        raise CommNodeError("no domains in comm-node.toml: run `comm-node init` first")

    def progress(p: dict) -> None:
        if not args.json:
            print(f"registered {len(p['registered'])}/{p['total']}: {p['note']}", flush=True)

    summary = Meeting(ws, timeout_s=args.timeout, retries=args.retries, on_progress=progress).run(
        inject=not args.no_prompt
    )
    if args.json:
        print_json(summary)
    else:
        print(f"started: {', '.join(summary['started']) or 'none'}")
        for name, why in sorted(summary["failed"].items()):
            print(f"NOT started: {name}: {why}", file=sys.stderr)
    return 1 if summary["failed"] else 0
