"""Textual's Footer, its keys given the footer's `compact` value before they mount.

A FooterKey starts compact (Textual's default) and is bound to the footer's value after it
mounts, so each key of each recompose (every focus change) had its styles worked out twice
more, to add "-compact" and take it off again: 665 style passes against 55 for a room's start
and 12 tabs, and 1,642 class changes in the kickoff wizard's tests. Given the value now, its
mount finds nothing to change. (The palette key is not bound: it stays compact.) The wizard
uses it as it is; the control room's footer (tui/widgets/footer.py) builds on it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeysFooter(Footer):
    def compose(self) -> ComposeResult:
        for key in super().compose():
            if isinstance(key, FooterKey) and not key.has_class("-command-palette"):
                key.set_reactive(FooterKey.compact, self.compact)
                key.set_class(self.compact, "-compact", update=False)
            yield key
