"""engine/domains.py registry_texts: every domain's registry.json text, made in linear time,
is byte for byte what `json.dumps(registry_for(ws, dom), indent=1) + "\n"` writes (issue 22:
Engine.start encoded N files of N peers with json's pure-Python indenting encoder)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comm_node_tui.engine.domains import registry_texts
from comm_node_tui.workspace.model import Workspace
from comm_node_tui.workspace.registry import registry_for

NAME = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
TEXT = st.text(max_size=12)  # quotes, backslashes, newlines, non-ASCII: JSON escapes them
WORDS = st.lists(TEXT, max_size=3)


@st.composite
def workspaces(draw: st.DrawFn) -> Workspace:
    names = draw(st.lists(NAME, min_size=1, max_size=6, unique=True))
    domains = [
        {
            "name": n,
            "path": "/ws/" + n,
            "role": draw(TEXT),
            "scope": draw(WORDS),
            "exports": draw(WORDS),
            "imports": draw(st.dictionaries(TEXT, WORDS, max_size=2)),
            "allowed_imports": draw(WORDS),
            "forbidden_imports": draw(WORDS),
        }
        for n in names
    ]
    return Workspace("/ws", {"project": {"name": draw(TEXT)}, "domains": domains})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workspaces())
def test_registry_texts_are_json_dumps_to_the_byte(ws):
    texts = registry_texts(ws)
    assert list(texts) == list(ws.domains)
    for dom in ws.domains.values():
        assert texts[dom.name] == json.dumps(registry_for(ws, dom), indent=1) + "\n"


def test_one_domain_has_no_peers():
    ws = Workspace("/ws", {"project": {"name": "p"}, "domains": [{"name": "a", "path": "/ws/a"}]})
    text = registry_texts(ws)["a"]
    assert text == json.dumps(registry_for(ws, ws.domains["a"]), indent=1) + "\n"
    assert json.loads(text)["peers"] == []
