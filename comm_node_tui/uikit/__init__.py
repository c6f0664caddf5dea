"""Textual pieces the kickoff wizard and the control room share: the footer, and the
workaround for a Textual cache that keeps dead widgets' renders alive (applied here, so
that whatever UI imports a piece of this package has it)."""

from comm_node_tui.uikit import textual_fixes  # noqa: F401  (applied on import)
