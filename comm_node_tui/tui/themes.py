"""Themes from themes/*.toml and layouts from layouts/*.tcss, found next to the package."""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.app import App
from textual.theme import Theme

_PKG = Path(__file__).resolve().parent.parent
THEME_KEYS = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)


def _folder(name: str) -> Path:
    for candidate in (_PKG / name, _PKG.parent / name):  # installed wheel, then the repo
        if candidate.is_dir():
            return candidate
    return _PKG.parent / name


def layouts() -> dict[str, Path]:
    return {p.stem: p for p in sorted(_folder("layouts").glob("*.tcss"))}


# A layout by terminal size when the user picked none: compact on a laptop or in a split,
# wall on a big screen; default in between (its grid needs about 100x30 to show every panel).
COMPACT_BELOW = (100, 30)  # columns, rows: compact when either is smaller
WALL_FROM = (180, 45)  # wall when both are at least this


def by_size(columns: int, rows: int) -> str:
    """The layout for a terminal of this size."""
    if columns < COMPACT_BELOW[0] or rows < COMPACT_BELOW[1]:
        return "compact"
    if columns >= WALL_FROM[0] and rows >= WALL_FROM[1]:
        return "wall"
    return "default"


def load_themes() -> tuple[list[Theme], list[str]]:
    """The themes in themes/*.toml, and one line per file that could not be loaded."""
    themes, problems = [], []
    for path in sorted(_folder("themes").glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            colours = {k: data[k] for k in THEME_KEYS if isinstance(data.get(k), str)}
            variables = data.get("variables", {})
            themes.append(
                Theme(
                    name=str(data.get("name", path.stem)),
                    dark=bool(data.get("dark", True)),
                    variables={str(k): str(v) for k, v in variables.items()},
                    **colours,
                )
            )
        except (OSError, tomllib.TOMLDecodeError, TypeError, ValueError, KeyError) as exc:
            problems.append(f"{path.name}: {exc}")
    return themes, problems


def use_theme(app: App, wanted: str) -> list[str]:
    """Register themes/*.toml and switch to `wanted` (the default when there is no such
    theme); what went wrong, one line each."""
    themes, problems = load_themes()
    for t in themes:
        app.register_theme(t)
    if wanted in app.available_themes:
        app.theme = wanted
        return problems
    app.theme = "elder" if "elder" in app.available_themes else "textual-dark"
    return [f"no theme '{wanted}'; using {app.theme}", *problems]
