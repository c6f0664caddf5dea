"""The footer: the keys of the focused context, with `? Help` and `q Quit` always shown.

Textual's Footer lays keys out in binding order and cuts what does not fit at the right edge,
which at 80 columns was help and quit, the two keys a newcomer needs. Here they sit in a
group docked at the right end with the palette key, and the keys before give way first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import HorizontalGroup
from textual.widgets._footer import FooterKey

from comm_node_tui.uikit.footer import KeysFooter

ALWAYS = ("help", "quit")  # the actions whose keys never give way
LAYOUT_TRIES = 50  # refreshes to wait for the keys' first layout


class RoomFooter(KeysFooter):
    DEFAULT_CSS = """
    RoomFooter > HorizontalGroup.always {
        dock: right;
        width: auto;
        padding-left: 1;
        background: $footer-background;
    }
    RoomFooter > HorizontalGroup.always > FooterKey.-command-palette { dock: none; }
    """

    def compose(self) -> ComposeResult:
        keys = list(super().compose())
        always = sorted(
            (k for k in keys if isinstance(k, FooterKey) and k.action in ALWAYS),
            key=lambda k: ALWAYS.index(k.action),
        )
        palette = [k for k in keys if k.has_class("-command-palette")]
        yield from (k for k in keys if k not in always and k not in palette)
        if always or palette:
            yield HorizontalGroup(*always, *palette, classes="always")
        self.call_after_refresh(self._hide_cut)

    def on_resize(self) -> None:
        for key in self.query_children(FooterKey):
            key.display = True
        self.call_after_refresh(self._hide_cut)

    def _hide_cut(self, tries: int = LAYOUT_TRIES) -> None:
        """A key the group at the right would cut (`p Pau`) is not shown at all."""
        groups = self.query_children(HorizontalGroup)
        if not groups:
            return
        keys = [k for k in self.query_children(FooterKey) if k.display]
        group = groups.first()
        if (not group.region.width or any(not k.region.width for k in keys)) and tries > 0:
            # A recomposed footer's keys may not be laid out after the first refresh (seen
            # on a loaded machine): with no regions yet nothing would be hidden, for good.
            self.call_after_refresh(self._hide_cut, tries - 1)
            return
        edge = group.region.x
        for key in keys:
            if key.region.right > edge:
                key.display = False
