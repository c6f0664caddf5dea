"""The tmux control-mode client: how soon a pane's write is seen, and what a command costs.

On a private tmux server (never the user's):
1. latency: a pane runs a writer that prints one byte at random intervals (40-90 ms) and
   notes `time.monotonic()` just before each write (CLOCK_MONOTONIC is one clock for every
   process on Linux); the bench notes when `wait_activity` returns that pane. Latency = the
   first return after a write minus the write. Run quiet, then with 7 other panes redrawing
   like busy Claude Code agents (2 KB of escape-laden text every 100 ms each).
   For comparison, the 0.5 s poll sees a write after 250 ms on average plus its spawns.
2. command cost: capture-pane and list-panes with PANE_FORMAT over the control client vs the
   subprocess path (`Tmux.cmd` through libtmux and the timeout wrapper) vs a bare
   `tmux capture-pane` subprocess; median of N.
3. heavy output: `yes | head -c 5000000` in a pane with and without the client attached
   (wall time until the pane is done) and the CPU the client's reader spent.
4. steady cost: 8 panes redrawing like busy agents for 10 s; CPU of the tmux server and of
   this process, with and without the client (tmux escapes every byte it sends us).

Usage: python bench/tmux_control.py [WRITES] [COMMANDS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from common import machine, median, pct

from comm_node_tui.adapters.tmux import PANE_FORMAT, Tmux
from comm_node_tui.adapters.tmux_control import control_client

SESSION = "bench"

WRITER = textwrap.dedent(
    """
    import os, random, sys, time
    n, out = int(sys.argv[1]), sys.argv[2]
    times = []
    time.sleep(0.5)
    for i in range(n):
        time.sleep(random.uniform(0.04, 0.09))
        times.append(time.monotonic())
        os.write(1, b"m")
    with open(out + ".tmp", "w") as fh:
        fh.write("\\n".join(repr(t) for t in times))
    os.rename(out + ".tmp", out)
    time.sleep(3600)
    """
)

# A busy agent's redraw: cursor moves, colours and a spinner line, ~2 KB every 100 ms.
NOISE = textwrap.dedent(
    """
    import os, time
    frame = ("\\x1b[H\\x1b[2K\\x1b[38;5;174m✻ Frosting… (12s · ↓ 340 tokens)\\x1b[0m\\r\\n" * 30)
    data = frame.encode()[:2048]
    while True:
        os.write(1, data)
        time.sleep(0.1)
    """
)


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def script(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def latency(socket: str, folder: Path, writes: int, noisy: int) -> list[float]:
    noise = script(folder, "noise.py", NOISE)
    writer = script(folder, "writer.py", WRITER)
    out = folder / f"times-{noisy}"
    extra = [
        tmux(
            socket,
            "new-window",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-t",
            f"={SESSION}:",
            f"{sys.executable} {noise}",
        )
        for _ in range(noisy)
    ]
    ctl = control_client(socket, SESSION)
    assert ctl is not None, "no control client"
    seen: list[float] = []
    try:
        pane = tmux(
            socket,
            "new-window",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-t",
            f"={SESSION}:",
            f"{sys.executable} {writer} {writes} {out}",
        )
        while not out.exists():
            if pane in ctl.wait_activity(0.5):
                seen.append(time.monotonic())
    finally:
        ctl.close()
        for p in [*extra, pane]:
            tmux(socket, "kill-pane", "-t", p)
    wrote = [float(x) for x in out.read_text().split()]
    lat = []
    for w in wrote:
        after = [s for s in seen if s >= w]
        if after:
            lat.append(after[0] - w)
    return lat


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def command_costs(socket: str, n: int) -> dict[str, list[float]]:
    pane = tmux(
        socket,
        "new-window",
        "-d",
        "-P",
        "-F",
        "#{pane_id}",
        "-t",
        f"={SESSION}:",
        "sh -c 'seq 1 45; exec cat'",
    )
    sub = Tmux(socket, SESSION)
    ctl = control_client(socket, SESSION)
    assert ctl is not None
    bare = ["tmux", "-L", socket, "capture-pane", "-p", "-t", pane]
    listing = ("list-panes", "-s", "-t", f"={SESSION}", "-F", PANE_FORMAT)
    try:
        assert ctl.capture(pane) == sub.capture(pane)
        return {
            "capture-pane, control client": timed(lambda: ctl.capture(pane), n),
            "capture-pane, Tmux.capture (libtmux + timeout wrapper)": timed(
                lambda: sub.capture(pane), n
            ),
            "capture-pane, bare `tmux` subprocess": timed(
                lambda: subprocess.run(bare, capture_output=True, check=True), n
            ),
            "list-panes PANE_FORMAT, control client": timed(lambda: ctl.command(*listing), n),
            "list-panes PANE_FORMAT, Tmux.cmd": timed(lambda: sub.cmd(*listing), n),
        }
    finally:
        ctl.close()
        tmux(socket, "kill-pane", "-t", pane)


def heavy(socket: str, folder: Path, attached: bool) -> tuple[float, float, float]:
    pane = tmux(socket, "new-window", "-d", "-P", "-F", "#{pane_id}", "-t", f"={SESSION}:", "sh")
    ctl = control_client(socket, SESSION) if attached else None
    done = f"done-{time.monotonic_ns()}"
    stop = threading.Event()

    def drain() -> None:  # as the engine would: take the activity, ignore it here
        while ctl is not None and not stop.is_set():
            ctl.wait_activity(0.2)

    drainer = threading.Thread(target=drain)
    drainer.start()
    server = int(tmux(socket, "display-message", "-p", "#{pid}"))
    server_cpu = cpu_s(server)
    cpu = time.process_time()
    t0 = time.perf_counter()
    tmux(
        socket,
        "send-keys",
        "-t",
        pane,
        f"yes | head -c 5000000; tmux -L {socket} wait-for -S {done}",
        "Enter",
    )
    subprocess.run(["tmux", "-L", socket, "wait-for", done], check=True, timeout=300)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu
    server_cpu = cpu_s(server) - server_cpu
    stop.set()
    drainer.join()
    if ctl is not None:
        ctl.close()
    tmux(socket, "kill-pane", "-t", pane)
    return wall, cpu, server_cpu


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steady(socket: str, folder: Path, attached: bool, seconds: float = 10.0) -> tuple[float, float]:
    """Percent of a core used by the tmux server and by this process while 8 panes redraw."""
    noise = script(folder, "noise.py", NOISE)
    panes = [
        tmux(
            socket,
            "new-window",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-t",
            f"={SESSION}:",
            f"{sys.executable} {noise}",
        )
        for _ in range(8)
    ]
    server = int(tmux(socket, "display-message", "-p", "#{pid}"))
    ctl = control_client(socket, SESSION) if attached else None
    stop = threading.Event()

    def drain() -> None:
        while ctl is not None and not stop.is_set():
            ctl.wait_activity(0.2)

    drainer = threading.Thread(target=drain)
    drainer.start()
    s0, p0, t0 = cpu_s(server), time.process_time(), time.monotonic()
    stop.wait(seconds)
    wall = time.monotonic() - t0
    used = (100 * (cpu_s(server) - s0) / wall, 100 * (time.process_time() - p0) / wall)
    stop.set()
    drainer.join()
    if ctl is not None:
        ctl.close()
    for p in panes:
        tmux(socket, "kill-pane", "-t", p)
    return used


def ms(values: list[float]) -> str:
    v = [x * 1000 for x in values]
    return f"median {median(v):.2f} ms, p95 {pct(v, 95):.2f} ms, max {max(v):.2f} ms (n={len(v)})"


def main() -> None:
    writes = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    commands = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    socket = f"cn-bench-{os.getpid()}"
    subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-s", SESSION, "-x", "200", "-y", "50", "cat"],
        check=True,
    )
    print(f"machine: {machine()}")
    print(f"tmux: {tmux(socket, 'display-message', '-p', '#{version}')}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            print(f"write -> wait_activity, quiet: {ms(latency(socket, folder, writes, 0))}")
            print(
                f"write -> wait_activity, 7 noisy panes: {ms(latency(socket, folder, writes, 7))}"
            )
            for name, values in command_costs(socket, commands).items():
                print(f"{name}: {ms(values)}")
            for attached in (False, True, False, True):
                wall, cpu, server = heavy(socket, folder, attached)
                print(
                    f"yes | head -c 5000000, client {'attached' if attached else 'absent'}: "
                    f"{wall:.2f} s wall, tmux server {server:.2f} s CPU, "
                    f"this process {cpu:.2f} s CPU"
                )
            for attached in (False, True, False, True):
                server, mine = steady(socket, folder, attached)
                print(
                    f"8 redrawing panes (2 KB / 100 ms each), client "
                    f"{'attached' if attached else 'absent'}: tmux server {server:.1f} % of a "
                    f"core, this process {mine:.1f} %"
                )
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)


if __name__ == "__main__":
    main()
