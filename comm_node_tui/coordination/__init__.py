"""Coordination services shared by the agents' CLI and the engine: locks, task claims and
the task graph, communication budgets and their journal, artifacts and the operator's
actions, all in `.comm-node/` under one flock (store.py). No engine, tmux or Textual here:
an agent's `comm-node lock` works whether or not an engine runs."""
