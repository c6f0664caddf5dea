"""Issue 22's faster task loading judged by its results: the same tasks, readiness and
problems as before, with orjson or json reading a Beads export, and for native tasks parsed
or read from the cache; a task's contract made only when asked for."""

from __future__ import annotations

import hashlib
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson  # noqa: F401 (imported: the loader then reads every export with it)
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comm_node_tui.coordination.tasks import (
    CACHE_FILE,
    Contract,
    Readiness,
    Task,
    _task_row,
    load_beads_jsonl,
    load_native_cached,
    load_native_text,
)

EXPORTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "beads"
NOW = datetime(2026, 11, 21, tzinfo=UTC)
DOMAINS = {"d0", "d1", "backend", "gastown"}
FIELDS = (
    "id", "title", "status", "priority", "issue_type", "domain", "assignee", "labels", "deps",
    "parent", "pinned", "ephemeral", "defer_until", "required_artifacts", "description",
)  # fmt: skip
# Every field of every task of the real exports, their readiness (ready, reasons, why not
# ready, unblocks, counts) and problems, digested with the loader and readiness of main at
# 002c520, before this change (the digest below, run on that code).
BEFORE = {
    "beads-repo-385c0c03.jsonl": "1baa69ed1c5d773c",
    "gastown-repo-cf3b3a67.jsonl": "e9f86c7782fd4624",
}


def typed(v: object) -> object:
    """`v` with the type of every value spelled out (1 and 1.0, a list and a tuple differ)."""
    if isinstance(v, dict):
        return {k: typed(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [type(v).__name__, *[typed(x) for x in v]]
    if isinstance(v, float) and math.isnan(v):
        return ["float", "nan"]
    return [type(v).__name__, v]


def facts(tasks: dict[str, Task], problems: list[str], published: set[str]) -> list:
    r = Readiness(tasks, published, NOW)
    out: list = [problems, list(tasks), r.ready, r.reasons, r.counts()]
    for tid, t in tasks.items():
        fields = {f: getattr(t, f) for f in FIELDS}
        out.append([tid, fields, t.contract.to_json(), t.to_json()])
        out.append([r.why_not_ready(tid), r.unblocks(tid), r.blocked(tid)])
    return out


def digest(tasks: dict[str, Task], problems: list[str]) -> str:
    text = json.dumps(typed(facts(tasks, problems, {"a1", "x:a2"})), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "json"])
def test_the_real_exports_load_and_judge_exactly_as_before(fast):
    found = sorted(p.name for p in EXPORTS.glob("*.jsonl"))
    assert found == sorted(BEFORE), f"{EXPORTS}: the shared exports moved"
    for name, want in BEFORE.items():
        tasks, problems = load_beads_jsonl(str(EXPORTS / name), DOMAINS, fast=fast)
        assert digest(tasks, problems) == want, name


# ---- orjson and json read every line alike ------------------------------------------------
# Values that orjson reads differently from json or refuses: integers past 64 bits (orjson:
# a float), NaN and infinities, lone surrogates; the loader must give json's result.
ODD = st.sampled_from(
    [2**64, -(2**63) - 1, 2**70, 1.5, -0.0, 1e300, "\ud800", "P1", " p3 ", True, None, "", "{}"]
)
SCALAR = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=8), ODD)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
IDS = st.sampled_from(["a", "b", "c", "d"])
KINDS = st.sampled_from(["blocks", "parent-child", "waits-for", "conditional-blocks", "x"])
BIG = st.sampled_from([2**64, 2**70, -(2**63) - 1])  # orjson: floats
DEP = st.fixed_dictionaries(
    {
        "depends_on_id": IDS,
        "type": KINDS,
        "metadata": st.one_of(
            st.sampled_from(["{}", " ", '{"gate": "any-children"}', "{bad", '{"n": 1e999}']),
            st.fixed_dictionaries({"n": BIG}),
            st.dictionaries(st.sampled_from(["gate", "n"]), VALUE, max_size=2),
            VALUE,
        ),
    },
    optional={"issue_id": st.one_of(IDS, VALUE)},
)
RECORD = st.fixed_dictionaries(
    {"id": st.one_of(IDS, IDS, IDS, VALUE)},
    optional={
        "title": VALUE,
        "status": st.one_of(st.sampled_from(["open", "closed", "pinned", "in_progress"]), VALUE),
        "priority": st.one_of(BIG, ODD, VALUE),
        "labels": st.one_of(st.lists(st.sampled_from(["domain:d0", "domain:", "x"])), VALUE),
        "dependencies": st.one_of(st.lists(st.one_of(DEP, DEP, VALUE), max_size=3), VALUE),
        "metadata": st.one_of(
            st.just('{"required_artifacts": ["a1", 2], "notify": ["d0"]}'),
            st.dictionaries(st.sampled_from(["required_artifacts", "artifacts"]), VALUE),
            VALUE,
        ),
        "defer_until": st.one_of(st.just("2099-01-01T00:00:00Z"), VALUE),
        "parent": st.one_of(IDS, VALUE),
        "acceptance_criteria": VALUE,
        "ephemeral": VALUE,
        "pinned": VALUE,
        "assignee": st.one_of(st.just("d1"), VALUE),
    },
)


# in every example, beside the generated ones: each value orjson reads otherwise, where it
# would reach a task
CORPUS = [
    ({"id": "p", "priority": 2**64}, ""),
    ({"id": "q", "priority": -(2**63) - 1, "parent": "p"}, ""),
    ({"id": "r", "dependencies": [{"depends_on_id": "p", "type": "waits-for",
                                   "metadata": {"gate": "any-children", "n": 2**70}}]}, ""),
    ({"id": "s", "title": "\ud800", "priority": 1}, ""),
    ({"id": "t", "priority": 2.0}, "nan"),
    ({"id": "u", "priority": 3}, "bom"),
    ({"id": "v"}, "deep"),
]  # fmt: skip


def line_of(rec: dict, damage: str) -> bytes:
    text = json.dumps(rec)  # json writes NaN, Infinity and lone surrogates, as an agent may
    if damage == "cut":
        text = text[:-2]
    elif damage == "bom":
        text = "\ufeff" + text
    elif damage == "nan":
        text = text[:-1] + ', "x": NaN}'
    elif damage == "deep":
        text = text[:-1] + ', "x": ' + "[" * 1100 + "]" * 1100 + "}"
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(RECORD, st.sampled_from(["", "", "", "", "cut", "bom", "nan", "deep"])),
        max_size=8,
    ),
    st.sampled_from([b"", b"\xff\xfe", b"  ", b"[1]", b"null"]),
)
def test_orjson_and_json_read_any_export_alike(tmp_path_factory, records, odd_line):
    path = tmp_path_factory.mktemp("export") / "issues.jsonl"
    lines = [line_of(rec, damage) for rec, damage in [*records, *CORPUS]]
    path.write_bytes(b"\n".join([*lines, odd_line]) + b"\n")
    fast = load_beads_jsonl(str(path), DOMAINS, fast=True)
    plain = load_beads_jsonl(str(path), DOMAINS, fast=False)
    assert typed(facts(*fast, set())) == typed(facts(*plain, set()))


def test_a_big_integer_priority_is_json_s_integer_not_orjson_s_float(tmp_path):
    path = tmp_path / "issues.jsonl"
    edge = {"depends_on_id": "a", "type": "waits-for", "metadata": {"n": 2**64}}
    records = [{"id": "a", "priority": 2**70}, {"id": "b", "dependencies": [edge]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    tasks, problems = load_beads_jsonl(str(path), set(), fast=True)
    assert tasks["a"].priority == 2**70 and type(tasks["a"].priority) is int
    assert tasks["b"].deps == [("waits-for", "a", {"n": 2**64})]
    assert type(tasks["b"].deps[0][2]["n"]) is int and problems == []


# ---- a task's contract, made when asked for -------------------------------------------------
def test_a_task_without_a_contract_gives_an_empty_one_made_once():
    t = Task("a")
    c = t.contract
    assert isinstance(c, Contract) and c.empty() and t.contract is c
    c.verify.append("make check")  # what a caller adds to it stays with the task
    assert t.contract.verify == ["make check"]
    other = Task("b")
    assert other.contract is not c and other.contract.verify == []
    with pytest.raises(AttributeError, match="'Task' object has no attribute 'contracts'"):
        t.contracts  # noqa: B018 (a missing attribute is still an error)


def test_a_cache_row_of_a_task_without_a_contract_makes_none():
    t = Task("a")
    row = _task_row(t)
    assert row[-1] == [[], [], [], [], ""]
    assert "contract" not in {n for n in Task.__slots__ if _is_set(t, n)}
    t.contract = Contract(done_when=["it builds"], notify=["d1"])
    assert _task_row(t)[-1] == [["it builds"], [], ["d1"], [], ""]


def _is_set(t: Task, slot: str) -> bool:
    try:
        getattr(Task, slot).__get__(t, Task)
    except AttributeError:
        return False
    return True


# ---- native tasks: parsed or cached, the same tasks ----------------------------------------
NATIVE = """\
[[tasks]]
id = "T1"
title = "first"
domain = "d0"
priority = 1

[[tasks]]
id = "T2"
title = "second"
domain = "nowhere"
depends_on = ["T1", ""]
parent = "T1"
required_artifacts = ["api"]
done_when = ["tests pass", " "]
notify = ["d1"]
notes = "  see the design  "
bogus = 1

[[tasks]]
id = "T2"
type = "epic"
status = "closed"
verify = ["make check"]

[[tasks]]
title = "no id"
"""


def test_native_tasks_parsed_and_cached_are_the_same(tmp_path):
    path = tmp_path / "tasks.toml"
    path.write_text(NATIVE)
    st_ = path.stat()  # changed a minute ago: its parse is cached
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns - 60_000_000_000))
    state = tmp_path / "state"
    direct = load_native_text(NATIVE, "tasks.toml", DOMAINS)
    parsed = load_native_cached(str(path), DOMAINS, str(state))
    assert (state / CACHE_FILE).exists()
    cached = load_native_cached(str(path), DOMAINS, str(state))
    want = typed(facts(*direct, {"api"}))
    assert typed(facts(*parsed, {"api"})) == want
    assert typed(facts(*cached, {"api"})) == want
    tasks, problems = direct
    assert problems == [
        "tasks.toml: tasks[1] (T2).bogus: unknown key",
        "tasks.toml: tasks[1] (T2).domain: unknown domain 'nowhere'",
        "tasks.toml: tasks[1] (T2).done_when: must be a list of non-empty strings; ignored",
        "tasks.toml: tasks[2].id: duplicate id 'T2' (the later one wins)",
        "tasks.toml: tasks[3].id: required text is missing; task skipped",
    ]
    assert tasks["T2"].contract.verify == ["make check"] and tasks["T1"].contract.empty()
