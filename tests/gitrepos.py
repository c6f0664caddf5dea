"""Real git repositories for the integration tests: a main repository on `main` holding the
workspace, and one worktree per domain on its own branch, as `comm-node init` makes them with
create = "worktree" (kickoff/scaffold.py: `git worktree add -b comm-node/<name> <path>`).
Identity and signing are set in the repository's own config, never the user's."""

from __future__ import annotations

import subprocess
from pathlib import Path

SHARED = "".join(f"line {i}\n" for i in range(1, 21))


def git(cwd: Path | str, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def branches(root: Path) -> dict[str, str]:
    """Every branch and the commit it points at."""
    out = git(root, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split(" ", 1) for line in out.splitlines())


def commit(folder: Path, files: dict[str, str | bytes | None], message: str = "work") -> str:
    """Write (None: delete) files in a domain's folder and commit them; the new commit."""
    for rel, content in files.items():
        path = folder / rel
        if content is None:
            git(folder, "rm", "-q", rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        git(folder, "add", rel)
    git(folder, "commit", "-q", "-m", message)
    return git(folder, "rev-parse", "HEAD").strip()


def make_project(
    tmp_path: Path,
    domains: tuple[str, ...] = ("api", "web", "docs"),
    domain_extra: dict[str, str] | None = None,
    extra: str = "",
) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Test"), ("user.email", "t@example.com")):
        git(root, "config", key, value)
    git(root, "config", "commit.gpgsign", "false")
    (root / ".gitignore").write_text(".comm-node/\n")
    (root / "README.md").write_text("# proj\n")
    (root / "src").mkdir()
    (root / "src" / "shared.txt").write_text(SHARED)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    parts = [
        '[project]\nname = "proj"\n\n[agents]\nbudget_tokens = 0\n\n'
        "[boundaries]\ncheck_interval_s = 0\n",
        extra,
    ]
    for name in domains:
        git(root, "worktree", "add", "-q", "-b", f"comm-node/{name}", name)
        more = (domain_extra or {}).get(name, "")
        parts.append(f'\n[[domains]]\nname = "{name}"\npath = "{name}"\n{more}\n')
    # written after the worktrees, and never committed: a worktree holding a copy of
    # comm-node.toml would be found first by the CLI's walk up from the domain's folder
    (root / "comm-node.toml").write_text("\n".join(parts))
    return root
