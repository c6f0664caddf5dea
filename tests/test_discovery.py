"""Finding the workspace and the current domain, and the config cache that keeps it fast."""

from __future__ import annotations

import json
import os
import time

import pytest

from comm_node_tui.errors import CommNodeError
from comm_node_tui.workspace.discovery import find_root, load_workspace, resolve_domain
from tests.conftest import cli_env, write_workspace


def test_walks_up_from_a_subdirectory(ws_root):
    deep = ws_root / "backend" / "src" / "api"
    deep.mkdir(parents=True)
    assert find_root(cwd=str(deep)) == str(ws_root)


def test_explicit_beats_env_beats_walk(ws_root, tmp_path, monkeypatch):
    other = write_workspace(tmp_path / "other")
    monkeypatch.setenv("COMM_NODE_WORKSPACE", str(other))
    assert find_root(cwd=str(ws_root)) == str(other)
    assert find_root(str(ws_root), cwd=str(tmp_path)) == str(ws_root)
    monkeypatch.setenv("COMM_NODE_WORKSPACE", str(tmp_path))
    with pytest.raises(CommNodeError, match=r"COMM_NODE_WORKSPACE: .* has no comm-node\.toml"):
        find_root(cwd=str(ws_root))


def test_outside_any_workspace_says_how_to_start(tmp_path, cli):
    res = cli("whoami", cwd=tmp_path)
    assert res.returncode == 1
    assert "comm-node init" in res.stderr and "Traceback" not in res.stderr


def test_domain_from_flag_env_or_cwd(ws_root, monkeypatch):
    ws = load_workspace(str(ws_root))
    sub = ws_root / "frontend" / "src"
    sub.mkdir()
    assert resolve_domain(ws, cwd=str(sub)).name == "frontend"
    monkeypatch.setenv("COMM_NODE_DOMAIN", "docs")
    assert resolve_domain(ws, cwd=str(sub)).name == "docs"
    assert resolve_domain(ws, "backend", cwd=str(sub)).name == "backend"
    monkeypatch.setenv("COMM_NODE_DOMAIN", "ghost")
    with pytest.raises(CommNodeError, match="COMM_NODE_DOMAIN: unknown domain 'ghost'"):
        resolve_domain(ws, cwd=str(sub))
    monkeypatch.delenv("COMM_NODE_DOMAIN")
    with pytest.raises(CommNodeError, match="in no domain"):
        resolve_domain(ws, cwd=str(ws_root))


def test_nested_domain_wins_and_shared_directory_is_ambiguous(tmp_path):
    root = tmp_path / "mono"
    (root / "repo" / "web").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname="m"\n'
        '[[domains]]\nname="core"\npath="repo"\nscope=["src/**"]\n'
        '[[domains]]\nname="api"\npath="repo"\nscope=["api/**"]\n'
        '[[domains]]\nname="web"\npath="repo/web"\n'
    )
    ws = load_workspace(str(root))
    assert resolve_domain(ws, cwd=str(root / "repo" / "web")).name == "web"
    with pytest.raises(CommNodeError, match=r"several domains \(core, api\)"):
        resolve_domain(ws, cwd=str(root / "repo"))
    # Two domains in one directory keep separate protocol folders.
    assert ws.domains["core"].paths.inbox != ws.domains["api"].paths.inbox
    assert ws.domains["web"].paths.dir == str(root / "repo" / "web" / ".comm-node")


def test_cache_is_used_and_invalidated_by_an_edit(ws_root):
    load_workspace(str(ws_root))
    cache = ws_root / ".comm-node" / "guarded" / "config.cache.json"
    data = json.loads(cache.read_text())
    # Poison the cached copy: a hit proves the TOML was not parsed again.
    data["config"]["project"]["name"] = "from-cache"
    cache.write_text(json.dumps(data))
    assert load_workspace(str(ws_root)).project == "from-cache"
    toml = ws_root / "comm-node.toml"
    time.sleep(0.01)  # time passes, as before a real edit: the file's mtime moves on
    toml.write_text(toml.read_text().replace("test-proj", "edited"))
    assert load_workspace(str(ws_root)).project == "edited"


def test_garbage_cache_is_ignored(ws_root):
    (ws_root / ".comm-node" / "guarded").mkdir(parents=True, exist_ok=True)
    (ws_root / ".comm-node" / "guarded" / "config.cache.json").write_bytes(b"\x00\xffnot json")
    assert load_workspace(str(ws_root)).project == "test-proj"


def test_cli_resolves_domain_from_env(ws_root, cli):
    res = cli("whoami", "--json", cwd=ws_root, env=cli_env(COMM_NODE_DOMAIN="docs"))
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["domain"] == "docs" and info["path"] == os.path.realpath(ws_root / "docs")
    assert {p["name"] for p in info["peers"]} == {"backend", "frontend"}
