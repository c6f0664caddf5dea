"""[cluster] in comm-node.toml: typed like every section, secrets never shown or logged,
bad values refused in one line, and without it nats is never imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from comm_node_tui.workspace.config import ClusterConfig, parse_config
from comm_node_tui.workspace.settings import DEFAULTS, ClusterSettings, mask_nats
from tests.conftest import cli_env, run_cli, write_workspace
from tests.natskit import NatsServer, events, machine
from tests.waiting import wait_for

TOKEN = "s3cr3t-t0ken-9f8e7d"


def test_the_cluster_table_agrees_with_its_settings_defaults():
    for name, field in ClusterConfig.model_fields.items():
        default = field.get_default(call_default_factory=True)
        want = getattr(DEFAULTS.cluster, name)
        assert (list(want) if name == "local" else want) == default, name
    assert not DEFAULTS.cluster.enabled


def test_environment_overrides_and_secrets_are_masked():
    s = ClusterSettings.from_config(
        {"nats": "nats://h:4222", "local": ["a"]},
        env={"COMM_NODE_NATS_TOKEN": TOKEN, "COMM_NODE_NATS_PASSWORD": TOKEN + "p"},
    )
    assert s.enabled and s.token == TOKEN and s.local == ("a",)
    assert TOKEN not in repr(s) and TOKEN not in json.dumps(s.masked())
    assert (
        mask_nats(f"nats://u:{TOKEN}@h:4222,nats://h2:4222") == "nats://***@h:4222,nats://h2:4222"
    )


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('nats = "http://h:4222"', "cluster.nats"),
        ('nats = "nats://h"\nnode = "m 1"', "cluster.node"),
        ('nats = "nats://h"\nreplicas = 9', "cluster.replicas"),
        ('nats = "nats://h"\nsecret = "x"', "cluster.secret"),
    ],
)
def test_a_bad_cluster_table_is_one_line_naming_the_file_and_field(tmp_path, table, field):
    root = write_workspace(tmp_path / "ws", extra=f"[cluster]\n{table}\n")
    res = run_cli("whoami", cwd=root / "backend")
    assert res.returncode != 0
    assert "comm-node.toml" in res.stderr and field in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    with pytest.raises(Exception) as bad:
        parse_config(f'[project]\nname = "p"\n[cluster]\nnats = "ftp://u:{TOKEN}@h"\n')
    assert TOKEN not in str(bad.value)


def test_config_show_hides_the_token_and_password(tmp_path):
    root = write_workspace(
        tmp_path / "ws",
        extra=f'[cluster]\nnats = "nats://u:{TOKEN}@h:4222"\ntoken = "{TOKEN}"\n'
        f'password = "{TOKEN}"\n',
    )
    for args in (("config", "show"), ("config", "show", "--json")):
        shown = run_cli(*args, cwd=root)
        assert shown.returncode == 0, shown.stderr
        assert TOKEN not in shown.stdout and "***" in shown.stdout


def test_without_a_cluster_table_nats_is_never_imported(tmp_path):
    root = write_workspace(tmp_path / "ws")
    code = (
        "import sys\n"
        "from comm_node_tui.workspace.discovery import load_workspace\n"
        "from comm_node_tui.engine.engine import Engine\n"
        "from comm_node_tui.coordination.coordinator import Coordinator\n"
        f"ws = load_workspace({str(root)!r})\n"
        "e = Engine(ws); e.start()\n"
        "Coordinator(ws).acquire(ws.domains['backend'], ['x.py'])\n"
        "e.stop()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'nats'"
        " or m.startswith('comm_node_tui.cluster')))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=cli_env()
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_in_cluster_mode_send_stays_off_nats_and_the_token_is_never_logged(tmp_path):
    server = NatsServer(tmp_path / "nats", token=TOKEN).start()
    try:
        root = machine(tmp_path / "m1", server.url, "m1", ["a"], domains=("a", "b"))
        env = cli_env(COMM_NODE_NATS_TOKEN=TOKEN)
        # an agent's send writes its outbox only: the engine relays (no nats in the CLI)
        code = (
            "import sys\nfrom comm_node_tui.cli import main\n"
            "try:\n    main(['send', '--to', 'b', 'hi'])\nexcept SystemExit:\n    pass\n"
            "print('nats' in sys.modules)\n"
        )
        res = subprocess.run(
            [sys.executable, "-c", code], cwd=root / "a", capture_output=True, text=True,
            timeout=60, env=env,
        )  # fmt: skip
        assert res.stdout.strip().splitlines()[-1] == "False", res.stderr
        # the engine connects with the token from the environment and never writes it
        proc = subprocess.Popen(
            [sys.executable, "-m", "comm_node_tui", "serve", "--workspace", str(root)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            wait_for(lambda: events(root, "cluster.up"), what="engine connected with the token")
            wait_for(lambda: events(root, "message.routed"), what="the send routed")
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=60)
        # a wrong token: refused in one line that names neither token
        bad = run_cli(
            "lock", "acquire", "x.py", cwd=root / "a", env=cli_env(COMM_NODE_NATS_TOKEN="nope")
        )
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1, bad.stderr
        assert "nope" not in bad.stderr and TOKEN not in bad.stderr
        good = run_cli("lock", "acquire", "x.py", cwd=root / "a", env=env)
        assert good.returncode == 0, good.stderr
        log = (root / ".comm-node" / "events.jsonl").read_text()
        for text in (log, out, err, bad.stderr, good.stderr, good.stdout):
            assert TOKEN not in text
    finally:
        server.stop()


def test_up_starts_only_this_machines_agents(tmp_path):
    import os

    socket = f"cn-cluster-up-{os.getpid()}"
    root = machine(
        tmp_path / "m1", "nats://127.0.0.1:9", "m1", ["a"], domains=("a", "b")
    )  # no server needed: starting agents never talks to NATS
    fake = f"{sys.executable} -m comm_node_tui.demo.fake_agent"
    config = root / "comm-node.toml"
    config.write_text(config.read_text().replace("[agents]\n", f'[agents]\ncommand = "{fake}"\n'))
    try:
        res = run_cli("up", "--json", cwd=root, env=cli_env(COMM_NODE_TMUX_SOCKET=socket))
        assert res.returncode == 0, res.stderr
        assert [row["domain"] for row in json.loads(res.stdout)] == ["a"]
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_another_engines_published_state_of_the_wrong_shape_is_dropped_or_mended():
    """Another machine's bytes are input: a state with a wrong type must not raise in every
    World this engine builds (engine._remote_rows) or in the owner lookup (cluster/ops.py)."""
    from comm_node_tui.cluster.state import published_state

    good = {"node": "m2", "domains": ["b"], "ts": 5, "agents": {"b": {"state": "idle"}}}
    assert published_state(good) == {**good, "ts": 5.0, "panes": {}, "health": {}}
    for bad in (None, [], "x", {"domains": ["b"]}, {"node": 2, "domains": []}, {"node": "m2"}):
        assert published_state(bad) is None, bad
    mended = published_state(
        {"node": "m2", "domains": ["b", 3, None], "ts": "soon", "agents": [], "panes": "x",
         "health": None}
    )  # fmt: skip
    assert mended == {
        "node": "m2", "domains": ["b"], "ts": 0.0, "agents": {}, "panes": {}, "health": {}
    }  # fmt: skip
    assert published_state({"node": "m2", "domains": [], "ts": True})["ts"] == 0.0


def test_a_server_down_at_the_start_is_said_by_the_engine_and_refused_by_a_call(
    tmp_path, engine_for
):
    """A server that is down when the engine starts: the engine says so (one cluster.down,
    naming the refusal) and an agent's shared decision is refused in one line that says why.
    nats-py's first connect retried a refused server for ever: the engine never said it, and
    the call waited out the whole timeout to say only "no answer"."""
    root = machine(tmp_path / "m1", "nats://127.0.0.1:9", "m1", ["a"])  # nothing listens
    engine_for(root)
    [down] = wait_for(lambda: events(root, "cluster.down"), what="the engine says it is cut off")
    assert "cannot connect to NATS at nats://127.0.0.1:9: ConnectionRefusedError" in down["msg"]
    res = run_cli("lock", "acquire", "x.py", cwd=root / "a")
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
    assert "cannot connect to NATS at nats://127.0.0.1:9: ConnectionRefusedError" in res.stderr
    assert len(events(root, "cluster.down")) == 1  # one event for the outage, not one a retry


def test_the_first_connection_passes_a_server_that_refuses_us_to_the_next(tmp_path):
    """Two listed servers, the first with another token: the first connection goes on to
    the second (it gave up at the first refusal after the TCP connect, for the engine and a
    CLI call alike), and one that refuses us alone is a one-line error saying why."""
    from comm_node_tui.cluster.client import ClusterClient, ClusterUnavailable

    other = NatsServer(tmp_path / "other", name="other", token="another-token").start()
    ours = NatsServer(tmp_path / "ours", name="ours", token="our-token").start()
    try:
        both = ClusterSettings(nats=f"{other.url},{ours.url}", token="our-token")
        for persistent in (True, False):
            for _ in range(4):  # nats-py shuffles the servers: each order, most likely
                client = ClusterClient(both, "t", persistent=persistent)
                try:
                    client.ensure()
                    assert client.up and client.nc.connected_url.port == ours.port
                finally:
                    client.close()
        alone = ClusterClient(ClusterSettings(nats=other.url, token="our-token"), "t")
        try:
            alone.ensure()
        except ClusterUnavailable as exc:
            said = str(exc)
            # the server's word, or on a loaded machine the reset of the socket it closed
            # after saying it (the word unread): either way one line, no secret
            assert "Authorization Violation" in said or "ConnectionResetError" in said, said
            assert "\n" not in said and "our-token" not in said, said
        else:
            raise AssertionError("connected with the wrong token")
        finally:
            alone.close()
    finally:
        other.stop()
        ours.stop()


def test_a_lock_over_nats_never_loads_aiohttp_and_one_over_a_websocket_does(tmp_path):
    """nats-py imports aiohttp (~0.16 s of CPU) for its websocket transport alone: an agent's
    `lock acquire` over nats:// goes without it, one over ws:// still works, and so does a
    ws:// client in a process that imported nats the lean way before (the room's peek)."""
    from tests.natskit import free_port

    server = NatsServer(tmp_path / "nats")
    ws_port = free_port()
    server.config += f'websocket {{ listen: "127.0.0.1:{ws_port}", no_tls: true }}\n'
    server.start()
    ws_url = f"ws://127.0.0.1:{ws_port}"
    code = (
        "import sys\nfrom comm_node_tui.cli import main\n"
        "try:\n    main(['lock', 'acquire', 'x.py'])\nexcept SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "print('aiohttp' in sys.modules)\n"
    )
    try:
        for url, loaded in ((server.url, "False"), (ws_url, "True")):
            root = machine(tmp_path / url[:2], url, "m1", ["a"], domains=("a", "b"))
            res = subprocess.run(
                [sys.executable, "-c", code], cwd=root / "a", capture_output=True, text=True,
                timeout=60, env=cli_env(),
            )  # fmt: skip
            out = res.stdout.strip().splitlines()
            assert res.returncode == 0 and out[0].startswith("granted"), res.stdout + res.stderr
            assert out[-1] == loaded, (url, res.stdout)
        both = (
            "import sys\n"
            "from comm_node_tui.cluster.client import ClusterClient\n"
            "from comm_node_tui.workspace.settings import ClusterSettings\n"
            "for url in sys.argv[1:]:\n"
            "    c = ClusterClient(ClusterSettings(nats=url), 't')\n"
            "    c.ensure()\n"
            "    print(url[:2], c.up, 'aiohttp' in sys.modules)\n"
            "    c.close()\n"
        )
        res = subprocess.run(
            [sys.executable, "-c", both, server.url, ws_url], capture_output=True, text=True,
            timeout=60, env=cli_env(),
        )  # fmt: skip
        assert res.stdout.split("\n")[:2] == ["na True False", "ws True True"], (
            res.stdout + res.stderr
        )
    finally:
        server.stop()


def test_a_missing_tls_file_fails_the_connection_not_the_client(tmp_path):
    """The client imports nats-py as it is made, and only that: a CA file that is not there
    is the connection's failure (the engine says cluster.down and retries), never the
    constructor's, which would stop the engine's start."""
    from comm_node_tui.cluster.client import ClusterClient

    settings = ClusterSettings(nats="tls://127.0.0.1:9", tls_ca=str(tmp_path / "no-ca.pem"))
    client = ClusterClient(settings, "t")
    try:
        with pytest.raises(OSError):
            client.ensure()
    finally:
        client.close()
