"""`comm-node web` (issue 21): the real server in a subprocess on a tmp workspace (real tmux
on the private socket), driven by the distribution's headless Chromium through Playwright.

The page's terminal is xterm.js drawing into a canvas, so the DOM holds no text. The tests
read xterm's own buffer instead: an init script catches the Terminal object as textual.js
hands it to its fit add-on (`addon._terminal = terminal`), and `screen_text` joins the
buffer's lines, which are what the canvas shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path

import pytest

from comm_node_tui.coordination.pause import read_pause
from comm_node_tui.engine.pidlock import holder_pid
from comm_node_tui.workspace.discovery import load_workspace
from tests.conftest import cli_env, write_workspace
from tests.waiting import wait_for

CHROMIUM = "/usr/bin/chromium"
# What works as root on this machine and in CI: no sandbox (root), no GPU, nothing fetched.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # xterm.js asks for WebGL first: with no GPU that is SwiftShader, GPU work done on the CPU
    # for pixels no test reads (the tests read xterm's buffer). Without it xterm draws on a
    # 2D canvas, as the screenshots show.
    "--disable-webgl",
]
# Bounds for when something is wrong, never paid by a passing run: the full suite in
# parallel on the 2-core machine beside other work (load average 50) took more than 30 s for
# a room to answer one key.
FIRST_DRAW_MS = 240_000  # a room process starting
KEY_MS = 120_000  # a key's effect drawn
# How often a wait looks at the terminal. Playwright's default polls on every animation frame,
# which keeps the page producing frames (renderer, compositor and software GPU busy at 60 Hz)
# for as long as a wait lasts, and reads the whole buffer each time; a look every 50 ms costs
# a fraction of that and is as sure (a wait still ends only when the text is there).
POLL_MS = 50
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "_terminal", {
  configurable: true,
  set(v) {
    if (v && v.buffer && v.buffer.active && !window.__xterm) window.__xterm = v;
    Object.defineProperty(this, "_terminal", {value: v, writable: true, configurable: true});
  },
});
"""
SCREEN_JS = """() => {
  const t = window.__xterm;
  if (!t) return "";
  const b = t.buffer.active, out = [];
  for (let i = 0; i < b.length; i++) {
    const line = b.getLine(i);
    if (line) out.push(line.translateToString(true));
  }
  return out.join("\\n");
}"""


def shows(text: str) -> str:
    """A wait_for_function predicate: the terminal shows `text`."""
    return f"() => ({SCREEN_JS})().includes({json.dumps(text)})"


class WebServer:
    """`comm-node web` in its own process; its stderr read line by line as it comes."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "comm_node_tui", "web", "-w", str(root), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        self.err: list[str] = []
        threading.Thread(target=self._read_err, daemon=True).start()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith("http://"), f"no URL printed: {line!r}; stderr: {self.err}"
        self.url = line
        self.base = line.split("/?", 1)[0]
        self.token = line.split("token=", 1)[1]

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))

    def said(self, fragment: str) -> bool:
        return any(fragment in line for line in list(self.err))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


def handshake(server: WebServer, origin: str) -> tuple[int, str]:
    """A websocket handshake with the server's cookie (traded for the token as a browser
    does), from `origin`: the status and body of the answer. (Playwright's sync API runs
    an event loop in this thread, so no asyncio client here.)"""
    host, port = server.base.removeprefix("http://").rsplit(":", 1)
    http = HTTPConnection(host, int(port), timeout=30)
    http.request("GET", "/?token=" + server.token)
    traded = http.getresponse()
    traded.read()
    assert traded.status == 303
    # the token goes into a cookie scripts cannot read and other sites cannot send, and
    # the redirect's URL holds it no more
    assert traded.getheader("Location") == "/"
    set_cookie = traded.getheader("Set-Cookie", "")
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert traded.getheader("Referrer-Policy") == "no-referrer"
    cookie = set_cookie.split(";", 1)[0]
    http.request(
        "GET",
        "/ws",
        headers={
            "Cookie": cookie,
            "Origin": origin,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    answer = http.getresponse()
    body = answer.read().decode() if answer.status != 101 else ""
    http.close()
    return answer.status, body


# A look at every process of the machine costs ~10 ms (more with a full run's hundreds of
# processes): a wait on the rooms looks every 0.1 s, not wait_for's default 0.02 s.
ROOMS_EVERY_S = 0.1


def room_pids(root: Path) -> set[int]:
    """The room processes serving this workspace (python -m comm_node_tui.web.room). Not a
    room's own child: between fork and exec (a room starting tmux, say) a child still shows
    its parent's command line, and a loaded machine makes that window long enough to see."""
    found: dict[int, int] = {}  # pid -> parent pid
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if b"comm_node_tui.web.room" in argv and str(root).encode() in argv:
            found[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return {pid for pid, parent in found.items() if parent not in found}


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws")


@pytest.fixture
def serve(workspace: Path) -> Iterator:
    servers: list[WebServer] = []

    def start(*args: str) -> WebServer:
        server = WebServer(workspace, *args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.stop() == 0, server.err


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_room(browser, url: str):
    """A new browser (its own cookies) at `url`; returns its page once the room is drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.add_init_script(CATCH_TERMINAL)
    page.goto(url)
    until(page, shows("Agents"), FIRST_DRAW_MS)
    until(page, shows("frontend"), FIRST_DRAW_MS)
    return page


def until(page, predicate: str, timeout_ms: int = KEY_MS) -> None:
    """Wait until `predicate` (JavaScript) holds in the page, looking every POLL_MS."""
    page.wait_for_function(predicate, timeout=timeout_ms, polling=POLL_MS)


def screen(page) -> str:
    return page.evaluate(SCREEN_JS)


def test_the_room_in_a_browser_draws_the_agents_and_takes_keys(serve, browser, tmp_path, capsys):
    server = serve()
    page = open_room(browser, server.url)
    # the token was traded for a cookie: it is in neither the address bar nor the page
    assert page.url == server.base + "/"
    assert server.token not in page.content()
    text = screen(page)
    for name in ("backend", "frontend", "docs"):
        assert name in text
    # the room watches the server's engine, never holds one (it says so once it has looked)
    until(page, shows("viewer of pid"))
    shot = tmp_path / "room.png"
    page.screenshot(path=str(shot))
    with capsys.disabled():  # shown in the run's output, not only on a failure
        print(f"\nscreenshot of the room in Chromium: {shot}")
    assert shot.stat().st_size > 10_000
    # a key acts: ? opens the help, generated from the room's table of actions
    page.locator(".xterm-screen").click()
    page.keyboard.press("?")
    until(page, shows("comm-node control room"))
    assert "Leave the control room" in screen(page)
    page.screenshot(path=str(tmp_path / "help.png"))
    with capsys.disabled():
        print(f"screenshot of the help: {tmp_path / 'help.png'}")
    # an intervention acts as in a terminal: p, "Pause only backend", and the pause holds
    page.keyboard.press("Escape")
    # closed before the next key: an Escape followed at once by p reads as alt+p
    until(page, f"() => !({shows('comm-node control room')})()")
    page.keyboard.press("p")
    until(page, shows("Pause only backend"))
    page.keyboard.press("Enter")
    state = load_workspace(str(server.root)).paths.state
    wait_for(lambda: read_pause(state).covers("backend"), timeout=30)
    assert not read_pause(state).covers("frontend")
    # the server stopping with the tab open: its room ends, the tab says so, exit 0
    assert server.stop() == 0, server.err
    until(page, "document.body.classList.contains('-closed')")
    assert not room_pids(server.root)
    assert not any("Traceback" in line for line in server.err), server.err
    page.context.close()


def test_without_the_token_nothing_is_served(serve, browser, workspace):
    server = serve()
    context = browser.new_context()
    page = context.new_page()
    for url in (
        server.base + "/",
        server.base + "/?token=wrong",
        server.base + "/static/js/textual.js",
    ):
        response = page.goto(url)
        assert response is not None and response.status == 403, url
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "aiohttp" not in response.headers.get("server", "")
        assert "forbidden" in page.inner_text("body")
        assert "Traceback" not in page.content()
    # the websocket too, even from a page of the server's own origin (no cookie in it)
    refused = page.evaluate(
        """url => new Promise(done => {
            const ws = new WebSocket(url);
            ws.onopen = () => done("opened");
            ws.onerror = () => done("refused");
        })""",
        server.base.replace("http:", "ws:") + "/ws",
    )
    assert refused == "refused"
    context.close()
    assert not room_pids(workspace)
    # a good token with a websocket from another origin: refused by its Origin
    assert handshake(server, origin="http://evil.invalid")[0] == 403
    # the server's log lines come on stderr, read as they come
    wait_for(lambda: server.said("refused GET / from 127.0.0.1: no token"))
    wait_for(lambda: server.said("websocket from another origin"))
    # the token is printed once, on stdout: not in the server's log lines, not in the events
    assert not any(server.token in line for line in server.err)
    events = load_workspace(str(workspace)).paths.events
    wait_for(lambda: Path(events).exists())
    assert server.token not in Path(events).read_text()


def test_a_second_browser_gets_a_room_of_its_own(serve, browser, workspace):
    server = serve("--max-rooms", "2")
    first = open_room(browser, server.url)
    second = open_room(browser, server.url)  # another context: another browser's cookies
    assert len(room_pids(workspace)) == 2
    wait_for(lambda: server.said("(2 open)"))
    # each room takes its own keys: help opens in the second, not in the first
    second.locator(".xterm-screen").click()
    second.keyboard.press("?")
    until(second, shows("comm-node control room"))
    assert "comm-node control room" not in screen(first)
    # a third is refused while two are open, with one line
    status, body = handshake(server, origin=server.base)
    assert status == 503 and body.count("\n") == 1
    wait_for(lambda: server.said("refused a room: 2 are open"))
    # a room that cannot quit (stopped, as a hung one) is killed after ROOM_QUIT_S: the room
    # itself, not a shell in front of it that would leave the room running, orphaned
    rooms = room_pids(workspace)
    assert {parent_pid(pid) for pid in rooms} == {server.proc.pid}
    hung = min(rooms)
    os.kill(hung, signal.SIGSTOP)
    try:
        first.context.close()
        second.context.close()
        wait_for(
            lambda: not room_pids(workspace),
            timeout=120,
            every=ROOMS_EVERY_S,
            what="the rooms' processes gone",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGKILL)
    assert server.proc.poll() is None


def test_a_tab_closed_mid_action_ends_its_room_only(serve, browser, workspace):
    server = serve()
    ws = load_workspace(str(workspace))
    page = open_room(browser, server.url)
    # one tab, one room (a room that a reconnect replaced may still be ending: wait it out)
    wait_for(
        lambda: len(room_pids(workspace)) == 1,
        every=ROOMS_EVERY_S,
        what="one room process for the tab",
    )
    (room,) = room_pids(workspace)
    engine = holder_pid(ws.paths.engine_lock)
    assert engine == str(server.proc.pid)  # the server keeps the engine, not the room
    # mid-action: the inject dialog open, a message half typed
    page.locator(".xterm-screen").click()
    page.keyboard.press("i")
    until(page, shows("Message to backend"))
    page.keyboard.type("half a mess")
    page.context.close()
    wait_for(
        lambda: not room_pids(workspace),
        timeout=120,
        every=ROOMS_EVERY_S,
        what="the room's process gone",
    )
    wait_for(lambda: server.said("a room closed (0 open)"), timeout=30)
    # the server and the engine go on: same engine pid, no engine.stopped, a new tab works
    assert server.proc.poll() is None
    assert holder_pid(ws.paths.engine_lock) == engine
    assert "engine.stopped" not in Path(ws.paths.events).read_text()
    again = open_room(browser, server.url)
    assert room_pids(workspace) and room not in room_pids(workspace)
    again.context.close()


def test_a_viewer_cannot_act(serve, browser, workspace):
    server = serve("--viewer")
    page = open_room(browser, server.url)
    assert "read-only" in screen(page)
    page.locator(".xterm-screen").click()
    for key in ("i", "x", "p"):  # inject, kill, pause: each refused before a dialog opens
        page.keyboard.press(key)
    until(page, shows("read-only viewer"))
    text = screen(page)
    assert "Message to backend" not in text and "Kill backend" not in text
    assert "Pause or resume" not in text
    # reading still works: the help opens
    page.keyboard.press("?")
    until(page, shows("comm-node control room"))
    page.context.close()


def test_another_host_warns_in_one_line(serve):
    # 127.0.0.2 is loopback too, so nothing is exposed; it is not one of the names of
    # 127.0.0.1, which is what the warning is about
    server = serve("--host", "127.0.0.2")
    assert server.url.startswith("http://127.0.0.2:")
    wait_for(lambda: server.said("serving"))  # the warning comes first, on stderr
    warnings = [line for line in server.err if "warning" in line]
    assert len(warnings) == 1 and "SSH tunnel" in warnings[0]


def test_web_stays_off_the_cli_path(tmp_path):
    # `comm-node web --help` builds only its parser: aiohttp and textual-serve stay unloaded
    code = (
        "import sys\n"
        "from comm_node_tui.cli import main\n"
        "try:\n    main(['web', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('aiohttp', 'textual_serve') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "--viewer" in res.stdout
    assert res.stdout.strip().endswith("[]")


def test_bad_options_are_one_line(tmp_path, cli):
    root = write_workspace(tmp_path / "ws")
    res = cli("web", "-w", str(root), "--max-rooms", "0", cwd=tmp_path)
    assert res.returncode != 0
    assert re.fullmatch(r"comm-node: --max-rooms 0: at least 1\n", res.stderr)
    res = cli("web", "-w", str(root), "--port", "70000", cwd=tmp_path)
    assert res.returncode != 0
    assert re.fullmatch(r"comm-node: --port 70000: a port is 0 to 65535 .*\n", res.stderr)


def test_the_server_takes_the_engine_over_when_its_holder_goes(serve, workspace):
    from tests.conftest import start_serve

    ws = load_workspace(str(workspace))
    headless = start_serve(workspace)
    try:
        engine = wait_for(lambda: holder_pid(ws.paths.engine_lock), timeout=60)
        server = serve()
        # rooms would watch that engine: the server does not start a second one
        wait_for(lambda: server.said(f"engine pid {engine}"))
    finally:
        headless.send_signal(signal.SIGTERM)
        headless.wait(timeout=60)
    # its holder gone, the server runs the engine itself at its next look
    wait_for(lambda: holder_pid(ws.paths.engine_lock) == str(server.proc.pid), timeout=60)
    wait_for(lambda: server.said("engine in-process"))


def test_a_port_in_use_is_one_line(serve, workspace, cli, tmp_path):
    server = serve()
    port = server.base.rsplit(":", 1)[1]
    res = cli("web", "-w", str(workspace), "--port", port, cwd=tmp_path, timeout=60)
    assert res.returncode == 1
    assert re.fullmatch(rf"comm-node: cannot listen on 127.0.0.1:{port}: .+\n", res.stderr)
    assert res.stdout == ""  # no URL, no token printed for a server that is not there


def test_without_the_web_extra_it_says_what_to_install(workspace, tmp_path):
    # aiohttp made unimportable, as on an install without the extra
    code = (
        "import sys\n"
        "sys.modules['aiohttp'] = None\n"
        "from comm_node_tui.cli import main\n"
        f"sys.exit(main(['web', '-w', {str(workspace)!r}]))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=cli_env()
    )
    assert res.returncode == 1
    assert res.stderr == (
        "comm-node: `comm-node web` needs the web extra (aiohttp is missing): "
        "pip install 'comm-node-tui[web]'\n"
    )
