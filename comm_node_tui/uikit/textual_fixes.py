"""A workaround for Textual 8's StylesCache.get_inner_outer (Textualize/textual#6665, open).

It is an instance method under `functools.lru_cache(1024)`, so the cache's keys hold up to
1,024 StylesCache objects, each with the rendered lines of a widget long gone. The room
recomposes its footer on every focus change and mounts and removes rows, screens and
notices all day: in tests, a worker's heap grew by 5,000-20,000 objects per room test
(274,000 after 25, against 99,000 with this), and every full garbage collection walked them
(a quarter of an in-process room test's CPU went to the collector). The two styles depend
only on the two colours: cached by them alone, as the method meant to.

Applied on import of comm_node_tui.uikit, which the room and the wizard import;
tests/test_room_panels.py checks that closed rooms leave no StylesCache behind (so a Textual
release that moves the method, the leak still in it, fails that test, not the room).
"""

from __future__ import annotations

from functools import lru_cache

from textual.color import Color
from textual.style import Style

try:
    from textual._styles_cache import StylesCache
except ImportError:  # a private module of Textual's, moved: nothing to mend here
    StylesCache = None  # type: ignore[assignment,misc]


@lru_cache(1024)
def _inner_outer(base_background: Color, background: Color) -> tuple[Style, Style]:
    return Style(background=base_background + background), Style(background=base_background)


# Only the method as 8.x has it (an lru_cache wrapper): a release that fixed it keeps its own.
if StylesCache is not None and hasattr(getattr(StylesCache, "get_inner_outer", None), "cache_info"):
    StylesCache.get_inner_outer = staticmethod(_inner_outer)  # type: ignore[method-assign,assignment]
