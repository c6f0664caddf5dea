"""The footer: the keys of the focused context, with `? Help` and `q Quit` always shown.

Textual's Footer lays keys out in binding order and cuts what does not fit at the right edge,
which at 80 columns was help and quit, the two keys a newcomer needs. Here they sit in a
group docked at the right end with the palette key, and the keys before give way first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import HorizontalGroup
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ALWAYS = ("help", "quit")  # the actions whose keys never give way
LAYOUT_TRIES = 50  # refreshes to wait for the keys' first layout


class RoomFooter(Footer):
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
        for key in keys:
            if isinstance(key, FooterKey) and not key.has_class("-command-palette"):
                # A FooterKey starts compact (Textual's default) and is bound to the footer's
                # value after it mounts: each key of each recompose (every focus change) had
                # its styles worked out twice more, to add "-compact" and take it off again
                # (665 style passes against 55 for a start and 12 tabs). Given the footer's
                # value now, its mount finds nothing to change. (The palette key is not
                # bound: it stays compact.)
                key.set_reactive(FooterKey.compact, self.compact)
                key.set_class(self.compact, "-compact", update=False)
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
