"""Limits per agent (issue 23): `[agents] memory_max` / `cpu_quota`, per domain too.

Where a user systemd answers, the agent's whole process tree runs in a transient scope with
systemd's own limits (`systemd-run --user --scope -p MemoryMax=2G -p CPUQuota=50%`): the
kernel enforces them, and one agent's build can no longer take the CPU the others need.
Without one (a container, a machine without a user session) there is no memory limit that
would not break Claude Code (RLIMIT_AS counts the 5+ GB of address space its runtime maps,
not what it uses), so a CPU quota lowers the agent's scheduling priority (`nice -n 10`) and a
memory limit is reported as not applied (a `limits.unavailable` event).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

from comm_node_tui.workspace.model import Domain

NICE = 10  # below the operator's shell and the engine, equal among agents
PROBE_TIMEOUT_S = 5


def user_systemd() -> bool:
    """Whether `systemd-run --user --scope` works here (a user manager on the bus)."""
    if shutil.which("systemd-run") is None:
        return False
    try:
        res = subprocess.run(
            ["systemd-run", "--user", "--scope", "--quiet", "--", "true"],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0


def limited(command: str, dom: Domain, systemd: bool) -> tuple[str, str | None]:
    """(the pane's command with the domain's limits applied, why a limit asked for could
    not be applied or None). The command is a shell line (a wrapper, `FOO=1 claude`), so it
    runs under `sh -c` inside the scope or below `nice`."""
    if not dom.memory_max and not dom.cpu_quota:
        return command, None
    if systemd:
        words = ["systemd-run", "--user", "--scope", "--quiet", "--collect"]
        words += ["--unit", f"comm-node-{dom.name}-{_suffix()}"]
        if dom.memory_max:
            words += ["-p", f"MemoryMax={dom.memory_max}"]
        if dom.cpu_quota:
            words += ["-p", f"CPUQuota={dom.cpu_quota}"]
        return f"{shlex.join(words)} -- sh -c {shlex.quote(command)}", None
    note = None
    if dom.memory_max:
        note = (
            f"memory_max {dom.memory_max} not applied: no user systemd here "
            "(systemd-run --user); the agent runs without a memory limit"
        )
    if dom.cpu_quota:
        prefix = shlex.join(["nice", "-n", str(NICE), "sh", "-c", command])
        if note is None:
            note = f"cpu_quota {dom.cpu_quota} as a lower priority (nice {NICE}): no user systemd"
        return prefix, note
    return command, note


def _suffix() -> str:
    import os

    return os.urandom(3).hex()  # a scope unit's name must be new each start
