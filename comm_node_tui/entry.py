"""The `comm-node` console script (and `python -m comm_node_tui`).

`comm-node hook` runs on nearly every step of every agent (each Claude Code hook event), so it
goes straight to the hook handler: no argparse, whose import (with `re`, `enum`, `gettext`)
costs about as much CPU as starting Python (issue 22, docs/benchmarks.md). The hook command
line Claude Code runs (adapters/claude/settings.py) stays `.../comm-node hook`, so settings
written by any earlier version take this path too. The agents' other frequent calls (FORMS:
`send`, `inbox`, `read`, `status [set]`, `task ready|list|show|claim|done`, `lock
acquire|release|list`) in their plain forms are read here too, into the same namespace
argparse would build (tests/test_entry.py compares them); anything else (`--help`, an
abbreviation, `--`, a value starting with `-`, an error) goes to the full CLI (cli.py),
which answers as it always did.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["hook"]:
        from comm_node_tui.errors import run_handler

        return run_handler("comm_node_tui.hooks.handler", "main", None)
    if argv == ["--version"]:
        # the git pre-commit guard asks this before every commit (boundaries/precommit.py):
        # through argparse it cost ~50 ms of CPU
        from comm_node_tui.claude_code import version_line

        print(version_line())
        return 0
    args = fast_args(argv)
    if args is not None:
        from comm_node_tui.errors import run_handler

        module, func = str(vars(args)["handler"]).split(":")
        return run_handler(f"comm_node_tui.commands.{module}", func, args)
    from comm_node_tui.cli import main as cli_main

    return cli_main(argv)


class Namespace:
    """What argparse.Namespace is to the handlers: attributes."""

    def __init__(self, **kwargs: object) -> None:
        self.__dict__.update(kwargs)


# The options every subcommand takes (cli.py _common): option -> attribute.
COMMON_VALUES = {
    "--workspace": "workspace",
    "-w": "workspace",
    "--domain": "domain",
    "-d": "domain",
}
# What argparse puts in every namespace from the top-level parser.
TOP_DEFAULTS = {
    "workspace": None,
    "domain": None,
    "version": False,
    "layout": None,
    "theme": "elder",
}


# `send`'s options (cli.py _send and _common): option -> attribute; `--json` is the flag.
SEND_VALUES = {
    **COMMON_VALUES,
    "--to": "to",
    "--type": "type",
    "--task": "task",
    "--priority": "priority",
    "--budget": "budget",
    "--reply-to": "reply_to",
    "--subject": "subject",
}
PRIORITIES = ("low", "normal", "high", "urgent")


def _plain(
    rest: list[str],
    options: dict[str, str],
    values: dict[str, object],
    positional: str | None,
    flags: tuple[str, ...] = ("json",),
    nargs: str = "1",
    appends: tuple[str, ...] = (),
    typed: tuple[str, ...] = (),
) -> bool:
    """Read the plain form `[--FLAG | OPTION VALUE]... [POSITIONAL]` of REST into `values`
    (`positional`: the attribute of the positional, None when there is none; `nargs` "1" for
    one, "+" or "*" for a list of them, which argparse takes only as one unbroken run;
    `appends`: the attributes of options that add to a list, as argparse's "append");
    False when argparse should decide (an unknown or abbreviated option, a value or
    positional starting with `-`, a missing or extra positional, a missing value, an
    option of `typed` (converted or checked after, as argparse's type= or choices=) given
    twice)."""
    seen: list[str] = []
    given: set[str] = set()  # the options given already
    run_over = False  # a list positional's run ended: one more positional is argparse's error
    i = 0
    while i < len(rest):
        tok = rest[i]
        i += 1
        if tok.startswith("--") and tok[2:].replace("-", "_") in flags:
            values[tok[2:].replace("-", "_")] = True
            run_over = bool(seen)
        elif tok.startswith("-") and tok != "-":
            name, eq, value = tok.partition("=")
            if name not in options or (eq and not name.startswith("--")):
                return False  # `-w=x` is the value "=x" to argparse: its call
            if not eq:
                if i == len(rest) or rest[i].startswith("-"):
                    return False
                value = rest[i]
                i += 1
            attr = options[name]
            held = values.get(attr)
            if attr in appends and isinstance(held, list):
                values[attr] = [*held, value]  # a copy: the default list stays as it is
            elif attr in typed and attr in given:
                # argparse converts (and may refuse) each value as it comes: a later one
                # must not hide an earlier bad one (`--ttl /w --ttl=5`)
                return False
            else:
                given.add(attr)
                values[attr] = value
            run_over = bool(seen)
        elif positional is None or run_over or (nargs == "1" and seen):
            return False
        else:
            seen.append(tok)
    if positional is None:
        return True
    if nargs == "1":
        if not seen:
            return False
        values[positional] = seen[0]
    elif nargs == "+" and not seen:
        return False
    else:
        values[positional] = seen
    return True


def _typed(values: dict[str, object], attr: str, kind: type) -> bool:
    """Convert an option's value as argparse's `type=` does; False when it cannot (argparse
    reports that)."""
    if values[attr] is None:
        return True
    try:
        values[attr] = kind(str(values[attr]))
    except ValueError:
        return False
    return True


def send_args(rest: list[str]) -> Namespace | None:
    """The namespace `comm-node send REST` parses to, or None when argparse should decide."""
    values: dict[str, object] = {
        **TOP_DEFAULTS,
        "command": "send",
        "handler": "messaging:send",
        "to": None,
        "type": "info",
        "task": None,
        "priority": "normal",
        "budget": None,
        "reply_to": None,
        "subject": None,
        "json": False,
    }
    if not _plain(rest, SEND_VALUES, values, "text", typed=("budget", "priority")):
        return None
    if values["to"] is None or values["priority"] not in PRIORITIES:
        return None
    if not _typed(values, "budget", int):
        return None
    return Namespace(**values)


# `status set`'s options (cli.py _status): agents run it "as they go" (their CLAUDE.md), the
# most frequent call after the hooks.
STATUS_SET_VALUES = {**COMMON_VALUES, "--task": "task", "--progress": "progress"}


def status_set_args(rest: list[str]) -> Namespace | None:
    """The namespace `comm-node status set REST` parses to, or None when argparse should
    decide. (The state is checked by the handler, as after argparse.)"""
    values: dict[str, object] = {
        **TOP_DEFAULTS,
        "command": "status",
        "json": False,
        "status_command": "set",
        "handler": "agent:status_set",
        "task": None,
        "progress": None,
    }
    if not _plain(rest, STATUS_SET_VALUES, values, "state"):
        return None
    return Namespace(**values)


def inbox_args(rest: list[str]) -> Namespace | None:
    """The namespace `comm-node inbox REST` parses to (agents look after every step), or
    None when argparse should decide."""
    values: dict[str, object] = {
        **TOP_DEFAULTS,
        "command": "inbox",
        "unread": False,
        "operator": False,
        "json": False,
        "handler": "messaging:inbox",
    }
    if not _plain(rest, COMMON_VALUES, values, None, ("json", "unread", "operator")):
        return None
    return Namespace(**values)


class Form:
    """One plain command form (cli.py builds its parser): the namespace argparse gives it
    with no options (`values`), its options (option -> attribute), flags, positional."""

    __slots__ = ("appends", "flags", "nargs", "options", "positional", "types", "values")

    def __init__(
        self,
        values: dict[str, object],
        options: dict[str, str] | None = None,
        flags: tuple[str, ...] = ("json",),
        positional: str | None = None,
        nargs: str = "1",
        appends: tuple[str, ...] = (),
        types: tuple[tuple[str, type], ...] = (),
    ) -> None:
        self.values = {**TOP_DEFAULTS, **values}
        self.options = {**COMMON_VALUES, **(options or {})}
        self.flags = flags
        self.positional = positional
        self.nargs = nargs
        self.appends = appends
        self.types = types

    def read(self, rest: list[str]) -> Namespace | None:
        """The namespace of REST (what follows the command's words), or None when argparse
        should decide."""
        values = dict(self.values)
        typed = tuple(attr for attr, _kind in self.types)
        if not _plain(
            rest, self.options, values, self.positional, self.flags, self.nargs, self.appends, typed
        ):
            return None
        for attr, kind in self.types:
            if not _typed(values, attr, kind):
                return None
        return Namespace(**values)


def _coord(command: str, action: str, **values: object) -> dict[str, object]:
    """The defaults argparse gives `<command> <action>` of coord_cmd (task_*, lock_*)."""
    return {
        "command": command,
        "action": action,
        "json": False,
        "handler": f"coord_cmd:{command}_{action}",
        **values,
    }


def _task(action: str, **values: object) -> dict[str, object]:
    return _coord("task", action, **values)


def _lock(action: str, **values: object) -> dict[str, object]:
    return _coord("lock", action, **values)


# The frequent forms after `send`, `inbox` and `status set` (the agents' CLAUDE.md has them
# run after nearly every step; the simulated demo's agents and many tests too), by the
# command's words. The values are cli.py's defaults for each (tests/test_entry.py checks
# every form against argparse).
FORMS: dict[tuple[str, ...], Form] = {
    ("task", "ready"): Form(_task("ready", all=False), flags=("all", "json")),
    ("task", "list"): Form(_task("list")),
    ("task", "show"): Form(_task("show"), positional="id"),
    ("task", "claim"): Form(_task("claim"), positional="id"),
    ("task", "done"): Form(
        _task("done", artifact=[], force=False, by="operator", reason=""),
        {"--artifact": "artifact", "--by": "by", "--reason": "reason"},
        ("json", "force"),
        "id",
        appends=("artifact",),
    ),
    ("lock", "acquire"): Form(
        _lock("acquire", shared=False, ttl=None, reason=""),
        {"--ttl": "ttl", "--reason": "reason"},
        ("json", "shared"),
        "patterns",
        "+",
        types=(("ttl", float),),
    ),
    ("lock", "release"): Form(
        _lock("release", all=False), flags=("json", "all"), positional="patterns", nargs="*"
    ),
    ("lock", "list"): Form(_lock("list")),
    ("read",): Form(
        {"command": "read", "operator": False, "json": False, "handler": "messaging:read"},
        flags=("json", "operator"),
        positional="id",
    ),
    ("status",): Form(
        {
            "command": "status",
            "json": False,
            "status_command": None,
            "handler": "agent:status_show",
        }
    ),
}


def fast_args(argv: list[str]) -> Namespace | None:
    """The namespace argparse would build for ARGV when it is one of the plain frequent
    forms, else None (the full CLI decides)."""
    head = argv[:1]
    if head == ["send"]:
        return send_args(argv[1:])
    if head == ["inbox"]:
        return inbox_args(argv[1:])
    if argv[:2] == ["status", "set"]:
        return status_set_args(argv[2:])
    for words in (2, 1):
        form = FORMS.get(tuple(argv[:words]))
        if form is not None and len(argv) >= words:
            return form.read(argv[words:])
    return None
