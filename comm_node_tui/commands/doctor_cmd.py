"""`comm-node doctor`: is this machine and this workspace ready for agents? One line per check,
OK / WARN / FAIL with what to do; exit 0 all OK, 1 any FAIL, 2 only WARNs (docs/cli.md).

Every check reads and runs, none writes: the hooks are compared with what `hooks install`
would write, the config with what `config check` says, tmux is asked, never started. A
check that breaks (a broken file, a missing program, a dead or hung server) is a FAIL line,
never a traceback: a doctor must work best on the machine that is most broken.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

OK, WARN, FAIL = "OK", "WARN", "FAIL"
EXIT = {OK: 0, WARN: 2, FAIL: 1}
RUN_TIMEOUT_S = 30
PROBE_S = 5.0  # a tmux server answers list-sessions in milliseconds


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.status:<4}  {self.name:<18} {self.detail}{fix}"


@dataclass
class _Tmux:
    """What the tmux check found, for the checks that need a server."""

    binary: str | None = None
    version: tuple[int, int] | None = None
    usable: bool = False


class Doctor:
    def __init__(self, workspace_arg: str | None) -> None:
        self.workspace_arg = workspace_arg
        self.checks: list[Check] = []
        self.tmux = _Tmux()
        self.root: str | None = None
        self.ws = None  # the Workspace, once its config is valid
        self.server = None  # the adapters.tmux.Tmux of the workspace, once reachable
        self.agents_up = False  # agent panes run (they need .comm-node/bin/comm-node)
        self.sandbox_why: str | None = None  # why the OS sandbox cannot run here

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    def guarded(self, name: str, check: Callable[[], None]) -> None:
        """Run one check; whatever it raises is its FAIL line."""
        try:
            check()
        except Exception as exc:  # a doctor reports, it does not crash
            self.add(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}")

    def run(self) -> list[Check]:
        self.guarded("tmux", self.check_tmux)
        self.guarded("config", self.check_config)
        self.guarded("tmux server", self.check_server)
        self.guarded("agent CLI", self.check_agent_cli)
        self.guarded("comm-node in panes", self.check_pane_comm_node)
        if self.ws is not None:
            for dom in self.ws.domains.values():
                self.guarded(f"hooks: {dom.name}", lambda d=dom: self.check_hooks(d))
        self.guarded("sandbox", self.check_sandbox_tools)
        if self.ws is not None and any(d.sandbox for d in self.ws.domains.values()):
            for dom in self.ws.domains.values():
                self.guarded(f"sandbox: {dom.name}", lambda d=dom: self.check_sandbox(d))
        if self.ws is not None and any(
            d.memory_max or d.cpu_quota for d in self.ws.domains.values()
        ):
            self.guarded("limits", self.check_limits)
        return self.checks

    # ---- tmux -----------------------------------------------------------------------------
    def check_tmux(self) -> None:
        from comm_node_tui.adapters.tmux import MIN_VERSION, TmuxError, tmux_version
        from comm_node_tui.adapters.tmux_control import CONTROL_MIN_VERSION

        need = _dotted(MIN_VERSION)
        binary = shutil.which("tmux")
        if binary is None:
            self.add(
                "tmux",
                FAIL,
                f"not found on PATH (comm-node needs tmux {need} or newer)",
                "install tmux: apt-get install tmux, brew install tmux",
            )
            return
        try:
            version = tmux_version(binary)
        except TmuxError as exc:
            self.add("tmux", FAIL, str(exc), f"check that {binary} runs")
            return
        self.tmux = _Tmux(binary, version, version >= MIN_VERSION)
        shown = _dotted(version) if version != (99, 0) else "a development build"
        control = _dotted(CONTROL_MIN_VERSION)
        if version < MIN_VERSION:
            self.add(
                "tmux",
                FAIL,
                f"tmux {shown} at {binary} is too old: comm-node needs {need} or newer",
                f"install tmux {control} or newer",
            )
        elif version < CONTROL_MIN_VERSION:
            self.add(
                "tmux",
                WARN,
                f"tmux {shown} at {binary}: works, but control mode needs {control}, so "
                "screens are read by polling (slower, a process per read)",
                f"install tmux {control} or newer",
            )
        else:
            self.add("tmux", OK, f"tmux {shown} at {binary} (needs {need}; control mode available)")

    # ---- the workspace --------------------------------------------------------------------
    def check_config(self) -> None:
        from comm_node_tui.errors import CommNodeError
        from comm_node_tui.workspace.discovery import find_root, workspace_from_config

        try:
            self.root = find_root(self.workspace_arg)
        except CommNodeError as exc:
            self.add("config", FAIL, str(exc))  # it says what to do
            return
        path = os.path.join(self.root, "comm-node.toml")
        # The file itself, validated in full, never the config cache: the cache lives in
        # .comm-node/, where a sandboxed agent's long-running command can replace it (the
        # read-only mount of a file the host renames over is gone: a forged "sandbox off"
        # read as OK), and a file edited keeping its size and mtime still matches its stamp.
        from comm_node_tui.workspace.configfile import check_config

        config, problems = check_config(path, self.root)
        if config is None:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self.add(
                "config",
                FAIL,
                f"{problems[0]}{more}; the hooks and the session are not checked until it loads",
                "`comm-node config check` lists every problem",
            )
            return
        # the model just validated, not the file read and validated again (and the cache not
        # written: a doctor writes nothing)
        self.ws = workspace_from_config(self.root, config.model_dump(mode="json"))
        count = len(config.domains)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self.add(
                "config", FAIL, f"{problems[0]}{more}", "`comm-node config check` lists them all"
            )
        else:
            self.add("config", OK, f"{path}: valid, {count} domains")

    # ---- the workspace's tmux server ------------------------------------------------------
    def check_server(self) -> None:
        if self.ws is None:
            return  # no workspace: no socket or session to look for
        from comm_node_tui.adapters.tmux import Tmux, TmuxError
        from comm_node_tui.panes.manager import session_for, socket_for

        socket, session = socket_for(self.ws), session_for(self.ws)
        if socket is None:
            self.add(
                "tmux socket",
                WARN,
                "no [tmux] socket: the agents run in your own default tmux server, among "
                "your sessions and under your key bindings",
                f'set `[tmux] socket = "cn-{self.ws.project}"` in comm-node.toml (before '
                "`comm-node up`, or after `comm-node down`)",
            )
        where = f"socket '{socket}'" if socket else "the default server"
        if not self.tmux.usable:
            self.add("tmux server", FAIL, f"not checked ({where}): tmux is missing or too old")
            return
        answer = self.probe_server(socket)
        if isinstance(answer, Check):
            self.checks.append(answer)
            return
        if answer is None:
            self.add(
                "tmux server",
                WARN,
                f"not started: no tmux server on {where}",
                "`comm-node up` starts the agents",
            )
            return
        names = answer
        try:
            tmux = Tmux(socket, session)
            panes = tmux.panes()
        except TmuxError as exc:
            self.add("tmux server", FAIL, f"{where}: {exc}")
            return
        self.server = tmux
        if session not in names:
            self.add(
                "tmux server",
                WARN,
                f"not started: {where} answers, but has no session {session}",
                "`comm-node up` starts the agents",
            )
            return
        self.agents_up = any(not p.dead for p in panes.values())
        dead = sorted(n for n, p in panes.items() if p.dead)
        missing = sorted(set(self.ws.domains) - set(panes))
        detail = f"session {session} on {where}: {len(panes)} agent panes"
        if dead or missing:
            parts = [f"exited: {', '.join(dead)}"] if dead else []
            parts += [f"no pane: {', '.join(missing)}"] if missing else []
            self.add(
                "tmux server",
                WARN,
                f"{detail} ({'; '.join(parts)})",
                "`comm-node restart D` / `comm-node up D`",
            )
        else:
            self.add("tmux server", OK, detail)

    def probe_server(self, socket: str | None) -> list[str] | Check | None:
        """The server's session names; None when no server runs; a FAIL when it does not
        answer. Asked with output to files, not pipes: the tmux client hands its
        descriptors to the server, so a stopped server keeps a pipe open after the client is
        killed and whoever reads it waits forever (seen: Tmux.cmd, through libtmux)."""
        import tempfile

        argv = [self.tmux.binary or "tmux", *(["-L", socket] if socket else [])]
        argv += ["list-sessions", "-F", "#{session_name}"]
        where = f"socket '{socket}'" if socket else "the default server"
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                res = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=PROBE_S
                )
            except subprocess.TimeoutExpired:
                return Check(
                    "tmux server",
                    FAIL,
                    f"the tmux server on {where} did not answer within {PROBE_S:g} s (hung or "
                    "stopped)",
                    f"`tmux{' -L ' + socket if socket else ''} kill-server` ends it (and the "
                    "agents in it)",
                )
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace").strip()
        if res.returncode == 0:
            return stdout.splitlines()
        if "no server running" in stderr or "error connecting" in stderr:
            return None
        return Check("tmux server", FAIL, f"{where}: tmux list-sessions: {stderr or 'failed'}")

    def agents_path(self) -> tuple[str, str]:
        """(PATH, where it comes from): the agents' panes inherit the tmux server's global
        environment, so a running server's PATH is theirs; before it runs, `comm-node up`
        starts it from this environment."""
        if self.server is not None:
            try:
                for line in self.server.cmd("show-environment", "-g", "PATH"):
                    if line.startswith("PATH="):
                        return line[len("PATH=") :], "the tmux server's PATH"
            except Exception:
                pass
        return os.environ.get("PATH", os.defpath), "this shell's PATH"

    # ---- the agent CLI --------------------------------------------------------------------
    def check_agent_cli(self) -> None:
        from comm_node_tui.adapters.agent_cli import CLIS, DEFAULT, agent_cli_for

        cli = agent_cli_for(self.ws) if self.ws is not None else CLIS[DEFAULT]()
        if self.ws is not None and self.ws.domains:
            commands = {cli.command(d) for d in self.ws.domains.values()}
        else:
            commands = {cli.program}
        path, source = self.agents_path()
        env = {**os.environ, "PATH": path}
        for command in sorted(commands):
            self._check_program(cli, command, path, source, env, several=len(commands) > 1)

    def _check_program(self, cli, command: str, path: str, source: str, env, several) -> None:
        name = "agent CLI" + (f": {command[:24]}" if several else "")
        try:
            word = shlex.split(command)[0]
        except (ValueError, IndexError):
            self.add(name, FAIL, f"cannot read the command {command!r}", "fix [agents] command")
            return
        found = shutil.which(word, path=path)
        if found is None:
            fix = (
                f"install {cli.label} {cli.version}, or give [agents] command its full path"
                if os.path.basename(word) == cli.program
                else f"make `{word}` available to the agents, or fix [agents] command"
            )
            self.add(name, FAIL, f"`{word}` not found on the agents' PATH ({source})", fix)
            return
        if os.path.basename(found) != cli.program:
            # Not the CLI's own program (a wrapper, a test double): running it to ask its
            # version could start an agent.
            self.add(
                name,
                WARN,
                f"`{word}` ({found}) is not `{cli.program}`: its version is not checked "
                f"(comm-node is tested with {cli.label} {cli.version})",
            )
            return
        version = cli.program_version(found, env)
        if version is None:
            self.add(
                name,
                FAIL,
                f"{found} --version does not answer with a version",
                f"reinstall {cli.label} {cli.version}",
            )
        elif version != cli.version:
            self.add(
                name,
                WARN,
                f"{cli.label} {version} at {found}; comm-node is tested with {cli.version} "
                "(its screens and hooks may differ)",
                f"{cli.label} {cli.version} if the agents misbehave",
            )
        else:
            self.add(name, OK, f"{cli.label} {version} at {found} (the tested version)")

    # ---- comm-node as the agents run it ---------------------------------------------------
    def check_pane_comm_node(self) -> None:
        if self.ws is None:
            return
        from comm_node_tui.adapters.agent_cli import comm_node_command

        script = os.path.join(self.ws.paths.state, "bin", "comm-node")
        rel = os.path.relpath(script, self.ws.root)
        if not os.path.exists(script):
            path, source = self.agents_path()
            other = shutil.which("comm-node", path=path)
            if not self.agents_up:
                self.add(
                    "comm-node in panes",
                    OK,
                    f"{rel} is written by `comm-node up` when it starts the agents",
                )
            elif other:
                self.add(
                    "comm-node in panes",
                    WARN,
                    f"{rel} is missing: the agents run {other}, found on {source}",
                    "`comm-node restart D` writes it",
                )
            else:
                self.add(
                    "comm-node in panes",
                    FAIL,
                    f"{rel} is missing and no comm-node is on the agents' PATH: their "
                    "protocol calls fail",
                    "`comm-node restart D` writes it",
                )
            return
        try:
            res = subprocess.run(
                [script, "--version"],
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
            answer = res.stdout.strip() if res.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError) as exc:
            answer, res = "", None
            why = str(exc)
        else:
            why = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
        if not answer.startswith("comm-node "):
            self.add(
                "comm-node in panes",
                FAIL,
                f"{rel} does not run: {why}",
                "`comm-node down` then `comm-node up` (or `comm-node restart D`) rewrites it",
            )
            return
        with open(script, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        if comm_node_command() not in text:
            self.add(
                "comm-node in panes",
                WARN,
                f"{rel} runs another comm-node installation than this one ({answer})",
                "`comm-node restart D` from this installation rewrites it",
            )
            return
        self.add("comm-node in panes", OK, f"{rel} runs: {answer}")

    # ---- hooks and allow rules ------------------------------------------------------------
    def check_hooks(self, dom) -> None:
        from comm_node_tui.adapters.agent_cli import agent_cli_for
        from comm_node_tui.errors import CommNodeError

        name = f"hooks: {dom.name}"
        fix = f"`comm-node hooks install --domain {dom.name}`"
        if not os.path.isdir(dom.path):
            self.add(name, FAIL, f"{dom.path} does not exist", "see `comm-node config check`")
            return
        cli = agent_cli_for(self.ws)
        path = cli.hooks_file(dom)
        rel = os.path.relpath(path, self.ws.root)
        if not os.path.exists(path):
            self.add(name, FAIL, f"{rel} does not exist: no {cli.label} hooks", fix)
            return
        try:
            want = json.loads(cli.hooks_preview(dom))
            with open(path, encoding="utf-8") as fh:
                have = json.load(fh)
        except CommNodeError as exc:
            self.add(name, FAIL, str(exc))
            return
        except ValueError as exc:
            self.add(name, FAIL, f"{rel}: not valid JSON ({exc})")
            return
        stale = _stale_events(have.get("hooks"), want.get("hooks"))
        allow_have = _allow(have)
        allow_missing = [r for r in _allow(want) if r not in allow_have]
        if stale:
            total = len(want.get("hooks") or {})
            shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
            self.add(
                name,
                FAIL,
                f"comm-node's hooks are missing or out of date in {rel} for {len(stale)} of "
                f"{total} events ({shown}): the agent's state and mail go unreported",
                fix,
            )
        elif allow_missing:
            self.add(
                name,
                WARN,
                f"{len(allow_missing)} of comm-node's permission allow rules are missing in "
                f"{rel}: the agent is asked before its own comm-node calls",
                fix,
            )
        else:
            self.add(name, OK, f"hooks and allow rules current in {rel}")

    # ---- the OS sandbox (issue 23) --------------------------------------------------------
    def _cli(self):
        from comm_node_tui.adapters.agent_cli import CLIS, DEFAULT, agent_cli_for

        return agent_cli_for(self.ws) if self.ws is not None else CLIS[DEFAULT]()

    def check_sandbox_tools(self) -> None:
        path, source = self.agents_path()
        on = [d.name for d in self.ws.domains.values() if d.sandbox] if self.ws else []
        # tried once only where a domain needs it: otherwise a missing tool is news enough
        why = self._cli().sandbox_probe(path) if on else self._cli().sandbox_unavailable(path)
        self.sandbox_why = why
        if why is None:
            where = f"on for {', '.join(on)}" if on else "off for every domain"
            self.add("sandbox", OK, f"bubblewrap and socat on the agents' PATH ({source}); {where}")
        elif on:
            self.add(
                "sandbox",
                FAIL,
                f"{why}: the agents with sandbox = true ({', '.join(on)}) will not start",
                "install what is named, or set sandbox = false in comm-node.toml",
            )
        else:
            self.add("sandbox", OK, f"off for every domain; {why} (needed for sandbox = true)")

    def check_sandbox(self, dom) -> None:
        from comm_node_tui.errors import CommNodeError

        name = f"sandbox: {dom.name}"
        if not dom.sandbox:
            walled = None
            if any(p.sandbox and p.path == dom.path for p in self.ws.domains.values()):
                # a peer in its folder wants the sandbox: only then are its settings read
                try:
                    walled = self._cli().sandbox_preview(self.ws, dom).get("walled_by")
                except CommNodeError as exc:
                    self.add(name, FAIL, str(exc))
                    return
            if walled:
                # one settings file cannot be both: the peers' walls are this agent's too
                self.add(
                    name,
                    WARN,
                    "sandbox = false, but its agent runs walled: it shares its folder's "
                    f".claude/settings.json with {', '.join(walled)} (sandbox = true)",
                    "set sandbox the same for every domain of a folder",
                )
            else:
                self.add(name, OK, "off (this domain's sandbox = false)")
            return
        if self.sandbox_why:
            self.add(name, FAIL, f"sandbox = true cannot work here: {self.sandbox_why}")
            return
        try:
            seen = self._cli().sandbox_preview(self.ws, dom)
        except CommNodeError as exc:
            self.add(name, FAIL, str(exc))
            return
        rel = os.path.relpath(seen["path"], self.ws.root)
        # the first gap may be the reason commands still ask: said once
        gaps = "".join(f"; {line}" for line in seen["partial"] if line != seen["prompts"])
        if seen["stale"]:
            self.add(
                name,
                WARN,
                f"sandbox = true, but {rel} does not hold it yet as comm-node writes it{gaps}",
                f"`comm-node hooks install --domain {dom.name}` (or it is written when the "
                "agent starts)",
            )
        elif seen["prompts"]:
            self.add(
                name,
                WARN,
                f"on in {rel}, but commands it cannot check may still ask: {seen['prompts']}{gaps}",
            )
        else:
            self.add(name, OK, f"on in {rel}{gaps}")

    # ---- limits per agent (issue 23) -------------------------------------------------------
    def check_limits(self) -> None:
        """Which limits an agent's start applies here: a systemd scope (the kernel enforces
        memory and CPU), or only a lower priority (panes/limits.py)."""
        from comm_node_tui.panes.limits import NICE, user_systemd

        doms = [d for d in self.ws.domains.values() if d.memory_max or d.cpu_quota]
        names = ", ".join(d.name for d in doms)
        if user_systemd():
            self.add("limits", OK, f"a systemd scope per agent (systemd-run --user) for {names}")
            return
        niced = [d.name for d in doms if d.cpu_quota]
        unlimited = [d.name for d in doms if d.memory_max]
        parts = []
        if niced:
            parts.append(f"cpu_quota as a lower priority (nice {NICE}) for {', '.join(niced)}")
        if unlimited:
            parts.append(f"memory_max not applied for {', '.join(unlimited)}")
        self.add(
            "limits",
            WARN,
            f"no user systemd here (systemd-run --user): {'; '.join(parts)}",
            "run comm-node in a user session with systemd (loginctl enable-linger) for "
            "enforced limits",
        )


def _stale_events(have: object, want: object) -> list[str]:
    """The events whose hook groups in `want` are not all in `have` (order aside)."""
    have = have if isinstance(have, dict) else {}
    out = []
    for event, groups in (want if isinstance(want, dict) else {}).items():
        present = {json.dumps(g, sort_keys=True) for g in have.get(event) or [] if g}
        if any(json.dumps(g, sort_keys=True) not in present for g in groups):
            out.append(event)
    return out


def _allow(settings: dict) -> list[str]:
    perms = settings.get("permissions")
    allow = perms.get("allow") if isinstance(perms, dict) else None
    return [r for r in allow if isinstance(r, str)] if isinstance(allow, list) else []


def _dotted(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def exit_code(checks: list[Check]) -> int:
    statuses = {c.status for c in checks}
    return EXIT[FAIL] if FAIL in statuses else EXIT[WARN] if WARN in statuses else EXIT[OK]


def doctor(args) -> int:
    checks = Doctor(getattr(args, "workspace", None)).run()
    code = exit_code(checks)
    if args.json:
        from comm_node_tui.commands.context import print_json

        print_json({"ok": code == 0, "exit_code": code, "checks": [asdict(c) for c in checks]})
        return code
    for c in checks:
        print(c.line())
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    print(f"{counts[OK]} OK, {counts[WARN]} WARN, {counts[FAIL]} FAIL", file=sys.stderr)
    return code
