"""Boundaries: who owns which files, and which imports cross which lines.

`check.py` runs the check (files changed outside a domain's scope, imports that break its
`allowed_imports` / `forbidden_imports`); `python_imports.py`, `js_imports.py` and
`rust_imports.py` find and resolve imports; `rules.py` decides; `gitfiles.py` asks git;
`graph.py` draws the domain graph; `precommit.py` installs the git pre-commit guard.
"""
