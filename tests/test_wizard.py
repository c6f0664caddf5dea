"""The init wizard driven with the Pilot, to the end, then the files on disk checked; bad
input refused on the step where it is typed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import git
from textual import events
from textual._context import active_message_pump
from textual.keys import _character_to_key
from textual.widgets import Button, Input

from comm_node_tui.kickoff.wizard import InitWizard
from comm_node_tui.workspace.discovery import load_workspace
from tests.waiting import until

# what the app itself has taken, in order (run_test's message hook, below): a test waits
# for the app to have handled what its keys and clicks set off
TOOK: list = []


def run(app: InitWizard, size: tuple[int, int] = (150, 50)):
    """app.run_test(), noting each message as the app itself takes it (the hook runs in the
    taking pump's context, just before its handlers)."""
    TOOK.clear()

    def hook(message) -> None:
        if active_message_pump.get() is app:
            TOOK.append(message)

    return app.run_test(size=size, message_hook=hook)


async def taken(pilot, since: int, what: str, check) -> None:
    """Until the app has taken a message `check` accepts (after the first `since`), and has
    handled it: its handlers are done once it has handled what came after it."""
    await until(pilot, lambda: any(check(m) for m in TOOK[since:]), every=0.01, what=what)
    await pilot.pause(0)


async def fill(pilot, **fields: str) -> None:
    """Type into inputs by id, as a user does (focus, then keys); until the app has taken
    the field's last change (its handlers of it done)."""
    for wid, text in fields.items():
        widget = pilot.app.query_one(f"#{wid}")
        since, changes = len(TOOK), widget.value != "" or text != ""
        widget.value = ""
        widget.focus()
        # focus, not a pause(): Pilot.pause() waits for the whole process to go idle, a
        # quarter of a second a field here (the keys would queue behind the focus anyway)
        await until(pilot, lambda w=widget: w.has_focus, every=0.01, what=f"#{wid} focused")
        await type_keys(pilot, widget, text)
        if changes:
            await taken(
                pilot,
                since,
                f"#{wid}'s change to {text!r} at the app",
                lambda m, w=widget, t=text: (
                    isinstance(m, Input.Changed) and m.input is w and m.value == t
                ),
            )


async def type_keys(pilot, widget, text: str) -> None:
    """The keys of `text` queued at once, as a fast typist's are, then a wait for `widget` to
    hold them. (Pilot.press() waits for the whole process to go idle after every key: a
    tenth of a second a key here, seconds a field on a loaded machine.)"""
    for ch in text:
        # the key's name as the Pilot gives it (bindings see "slash", "full_stop", ...)
        pilot.app.post_message(events.Key(_character_to_key(ch), ch))
    await until(
        pilot,
        lambda: widget.value == text,
        what=f"#{widget.id} to hold {text!r}",
        show=lambda: widget.value,
    )


async def click(pilot, wid: str) -> None:
    """A mouse click on the button, as a terminal sends it (down, up: the app makes the
    click), then until the app has handled its press. (Pilot.click() waits for the whole
    process to go idle four times a click: half a second a click here, more when loaded.)"""
    app = pilot.app
    button = app.query_one(f"#{wid}")
    # a Button ignores presses during its 0.2 s "active" effect: a second click on it waits
    # the first one's out
    await until(
        pilot,
        lambda: not button.has_class("-active"),
        every=0.02,
        what=f"#{wid}'s pressed effect to end",
    )
    # where Pilot.click() clicks, once the button is laid out there (a step just shown)
    await until(
        pilot,
        lambda: app.get_widget_at(*button.region.offset)[0] is button,
        every=0.01,
        what=f"#{wid} on screen, where a click lands on it",
        show=lambda: (button.region, app.get_widget_at(*button.region.offset)[0]),
    )
    x, y = button.region.offset
    since = len(TOOK)
    for kind in (events.MouseDown, events.MouseUp):
        app.post_message(kind(None, x, y, 0, 0, 1, False, False, False, screen_x=x, screen_y=y))
    await taken(
        pilot,
        since,
        f"#{wid} pressed",
        lambda m: isinstance(m, Button.Pressed) and m.button is button,
    )


def error(app) -> str:
    return str(app.query_one("#error").render())


async def test_wizard_to_the_end(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    (root / "api").mkdir(parents=True)
    (root / "api" / "CLAUDE.md").write_text("# mine\n")
    git.Repo.init(root / "billing")  # a repository Discover should find
    app = InitWizard(str(root))
    async with run(app) as pilot:
        # 1. project: empty is refused on this step
        await fill(pilot, **{"project-name": ""})
        await click(pilot, "next")
        assert "project name: required" in error(app)
        await fill(pilot, **{"project-name": "shop"})
        await click(pilot, "next")
        assert app.query_one("#steps").current == "domains"
        # 2. domains: Discover finds api and billing; add web as a new git repository
        await click(pilot, "next")
        assert "add at least one" in error(app)
        await click(pilot, "d-discover")
        assert [d["name"] for d in app.state.domains] == ["api", "billing"]
        await fill(
            pilot,
            **{
                "d-name": "web",
                "d-path": "web",
                "d-role": "The storefront",
                "d-scope": "src/**, public/**",
                "d-imports": "api:openapi.yaml",
            },
        )
        app.query_one("#d-create").value = "git"
        await click(pilot, "d-add")
        assert error(app) == "", error(app)
        # bad input is refused here, where it is typed
        await fill(pilot, **{"d-name": "web", "d-path": "web2"})
        await click(pilot, "d-add")
        assert "name: a domain 'web' already exists" in error(app)
        await fill(pilot, **{"d-name": "far", "d-path": "../../nowhere-at-all"})
        await click(pilot, "d-add")
        assert "does not exist and is outside the workspace" in error(app)
        await fill(pilot, **{"d-name": "bad", "d-path": "bad", "d-scope": "../up/**"})
        await click(pilot, "d-add")
        assert "scope: '../up/**': '..' is not allowed" in error(app)
        await fill(pilot, **{"d-name": "Bad Name", "d-path": "x", "d-scope": ""})
        await click(pilot, "d-add")
        assert "must match [a-z0-9][a-z0-9-]*" in error(app)
        await click(pilot, "next")
        assert "press Add / update (or Clear form) first" in error(app)
        await click(pilot, "d-clear")
        # edit api's role by selecting its row
        table = app.query_one("#domain-table")
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#d-name").value == "api"
        await fill(
            pilot, **{"d-role": "The REST API", "d-exports": "openapi.yaml", "d-scope": "src/**"}
        )
        await click(pilot, "d-add")
        assert [d["name"] for d in app.state.domains] == ["api", "billing", "web"]
        await click(pilot, "next")
        assert app.query_one("#steps").current == "tasks", error(app)
        # 3. tasks: native; an unknown dependency is refused
        app.query_one("#t-source").value = "native"
        await pilot.pause()
        await fill(
            pilot, **{"t-id": "T2", "t-title": "Product page", "t-domain": "web", "t-deps": "T1"}
        )
        await click(pilot, "t-add")
        assert "unknown task 'T1'" in error(app)
        await fill(
            pilot, **{"t-id": "T1", "t-title": "API contract", "t-domain": "api", "t-deps": ""}
        )
        await click(pilot, "t-add")
        await fill(
            pilot, **{"t-id": "T2", "t-title": "Product page", "t-domain": "nope", "t-deps": "T1"}
        )
        await click(pilot, "t-add")
        assert "unknown domain 'nope'" in error(app)
        await fill(pilot, **{"t-domain": "web"})
        await click(pilot, "t-add")
        assert [t["id"] for t in app.state.tasks] == ["T1", "T2"]
        await click(pilot, "next")
        # 4. review: the TOML and every file, nothing written yet
        assert app.query_one("#steps").current == "review"
        toml = app.query_one("#review-toml").text
        assert 'name = "shop"' in toml and 'name = "web"' in toml
        files = app.query_one("#review-files")
        listed = {str(files.get_row_at(i)[1]) for i in range(files.row_count)}
        assert {
            "comm-node.toml",
            "tasks.toml",
            "api/CLAUDE.md",
            "web/.claude/settings.json",
            "billing/.comm-node/PROTOCOL.md",
            "web",
        } <= listed
        assert not (root / "comm-node.toml").exists()
        await click(pilot, "next")  # "Write files"
        await until(pilot, lambda: app.written)
        assert app.query_one("#steps").current == "meeting"
        await click(pilot, "m-finish")
    # the files on disk
    ws = load_workspace(str(root))
    assert sorted(ws.domains) == ["api", "billing", "web"]
    assert ws.domains["api"].role == "The REST API" and ws.domains["api"].exports == [
        "openapi.yaml"
    ]
    assert ws.domains["web"].scope == ["src/**", "public/**"]
    assert (root / "web" / ".git").is_dir()
    assert (root / "api" / "CLAUDE.md").read_text().startswith("# mine\n")
    assert "you are the `web` agent of shop" in (root / "web" / "CLAUDE.md").read_text()
    assert json.loads((root / "billing" / ".claude" / "settings.json").read_text())["hooks"]
    assert "T2" in (root / "tasks.toml").read_text()
    # the agents get a private tmux server, not the user's own
    assert ws.config["tmux"]["socket"] == "cn-shop"


async def test_wizard_on_an_existing_workspace_shows_changes_first(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "a").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "old"\n[agents]\nbudget_tokens = 777\n'
        '[[domains]]\nname = "a"\npath = "a"\nrole = "first"\n'
    )
    app = InitWizard(str(root))
    async with run(app) as pilot:
        assert app.query_one("#project-name").value == "old"
        assert "already has a comm-node.toml" in str(app.query_one(".hint").render())
        await click(pilot, "next")
        await click(pilot, "next")
        await click(pilot, "next")
        files = app.query_one("#review-files")
        actions = {
            str(files.get_row_at(i)[1]): str(files.get_row_at(i)[0]) for i in range(files.row_count)
        }
        assert actions["comm-node.toml"] == "update"  # our header; values kept
        assert "budget_tokens = 777" in app.query_one("#review-toml").text
        assert (root / "comm-node.toml").read_text().startswith("[project]")
        await pilot.press("ctrl+q")
    assert (root / "comm-node.toml").read_text().startswith("[project]")  # untouched


async def test_wizard_meeting_step_starts_agents(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    socket = f"cn-wiz-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    fake = f"{sys.executable} -m comm_node_tui.demo.fake_agent --hooks"
    (root / "one").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        f'[project]\nname = "wiz"\n[agents]\ncommand = "{fake}"\n'
        '[[domains]]\nname = "one"\npath = "one"\n'
    )
    app = InitWizard(str(root), meeting_timeout_s=15)
    try:
        async with run(app) as pilot:
            for _ in range(3):
                await click(pilot, "next")
            await click(pilot, "next")
            await until(pilot, lambda: app.written)
            await click(pilot, "m-start")
            await until(pilot, lambda: app.result is not None, timeout=40)
            assert app.result["started"] == ["one"]
            assert "registered 1/1" in str(app.query_one("#meeting-count").render())
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


async def test_keys_after_a_step_change_never_press_a_hidden_button(tmp_path: Path) -> None:
    """Focus left on the domains step's Remove button, Ctrl+N to the tasks step, Enter: the
    Enter must not reach the hidden Remove (it silently removed the first domain)."""
    root = tmp_path / "shop"
    for name in ("api", "web"):
        (root / name).mkdir(parents=True)
    app = InitWizard(str(root))
    async with run(app) as pilot:
        await fill(pilot, **{"project-name": "shop"})
        await click(pilot, "next")
        await click(pilot, "d-discover")
        assert [d["name"] for d in app.state.domains] == ["api", "web"]
        app.query_one("#d-remove").focus()
        await pilot.pause()
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.query_one("#steps").current == "tasks")
        # what has focus now is on the visible step (or the navigation), never hidden
        focused = app.focused
        assert focused is not None and focused.id != "d-remove"
        assert all(w.display for w in focused.ancestors_with_self if hasattr(w, "display"))
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("ctrl+b")
        await until(pilot, lambda: app.query_one("#steps").current == "domains")
        await pilot.press("enter")
        await pilot.pause()
        assert [d["name"] for d in app.state.domains] == ["api", "web"]
        # and a hidden step's button, pressed by code, does nothing either
        app.query_one("#t-remove").press()
        app.query_one("#m-start").press()
        await pilot.pause()
        assert [d["name"] for d in app.state.domains] == ["api", "web"]
        assert app.query_one("#steps").current == "domains"


async def test_wizard_asks_for_a_private_tmux_socket(tmp_path: Path) -> None:
    """Without a socket the agents started in the user's own tmux server (their sessions,
    their prefix key): the project step asks, and defaults to `cn-<project>`."""
    root = tmp_path / "My Shop"
    (root / "api").mkdir(parents=True)
    app = InitWizard(str(root))
    async with run(app) as pilot:
        assert app.query_one("#project-socket").value == "cn-my-shop"
        await fill(pilot, **{"project-name": "Store 2"})
        assert app.query_one("#project-socket").value == "cn-store-2"  # follows the name
        await fill(pilot, **{"project-socket": "my.socket"})
        await click(pilot, "next")
        assert "tmux socket: 'my.socket' contains '.'" in error(app)
        assert app.query_one("#steps").current == "project"
        await fill(pilot, **{"project-name": "Store 3"})
        assert app.query_one("#project-socket").value == "my.socket"  # typed: kept
        await fill(pilot, **{"project-socket": "agents_1"})
        await click(pilot, "next")
        await click(pilot, "d-discover")
        for _ in range(2):
            await click(pilot, "next")
        assert app.query_one("#steps").current == "review"
        assert 'socket = "agents_1"' in app.query_one("#review-toml").text
        await click(pilot, "next")
        await until(pilot, lambda: app.written)
        await click(pilot, "m-finish")
    assert load_workspace(str(root)).config["tmux"]["socket"] == "agents_1"
    # an existing workspace keeps what its file says (here: the default server), so agents
    # already running there are not lost from sight; the field shows it, empty
    (root / "comm-node.toml").write_text(
        '[project]\nname = "old"\n[tmux]\nlayout = "tiled"\n'
        '[[domains]]\nname = "api"\npath = "api"\n'
    )
    app = InitWizard(str(root))
    async with run(app) as pilot:
        assert app.query_one("#project-socket").value == ""
        await fill(pilot, **{"project-name": "renamed"})
        assert app.query_one("#project-socket").value == ""
        for _ in range(3):
            await click(pilot, "next")
        toml = app.query_one("#review-toml").text
        assert "socket" not in toml and 'layout = "tiled"' in toml
        await pilot.press("ctrl+q")


async def test_the_native_task_form_fits_an_80_column_terminal(tmp_path: Path) -> None:
    """Every input of the native-task form is on screen and wide enough to type in at 80x24
    (the form once hid three of its five inputs off the right edge)."""
    root = tmp_path / "shop"
    (root / "api").mkdir(parents=True)
    app = InitWizard(str(root))
    async with run(app, (80, 24)) as pilot:

        async def press(wid: str) -> None:  # scrolled to first, as Tab to it would
            app.query_one(f"#{wid}").scroll_visible(animate=False)
            await pilot.pause()
            await click(pilot, wid)

        await fill(pilot, **{"project-name": "shop"})
        await press("next")
        await fill(pilot, **{"d-name": "api", "d-path": "api"})
        await press("d-add")
        await press("next")
        assert app.query_one("#steps").current == "tasks", error(app)
        app.query_one("#t-source").value = "native"
        await pilot.pause()
        screen = app.screen.region
        for wid in ("t-id", "t-title", "t-domain", "t-deps", "t-artifacts"):
            widget = app.query_one(f"#{wid}")
            widget.scroll_visible(animate=False)
            await pilot.pause()
            region = widget.region
            assert region.width >= 8, (wid, region)
            assert screen.contains_region(region), (wid, region, screen)
