"""The operator's hand: every intervention of the control room as one service that does the
IO and answers in one line (actions.py), and the room's reads that are not the engine's
world (lookups.py). Above the engine, below the UI: nothing here knows about Textual."""
