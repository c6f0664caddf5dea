"""The real Beads exports in ../shared/data/beads judged as before issue 22's faster loader:
the ready sets (and counts) below were computed with the loader and readiness of main at
0716c45, before the change, and must not move."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from comm_node_tui.coordination.tasks import Readiness, load_beads_jsonl

EXPORTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "beads"
# deferrals are judged against this time; the expected sets were computed at it
NOW = datetime(2026, 11, 21, tzinfo=UTC)
EXPECTED = {
    "beads-repo-385c0c03.jsonl": {
        "tasks": 704,
        "ready": [
            "aap-4ar",
            "bd-abc12",
            "bd-xyz99",
            "cr-xyz99",
            "hq-abc12",
            "offlinebrew-3d0",
            "offlinebrew-3d0.1",
            "hq-cv-d46qe",
            "hq-cv-ivmue",
            "bd-019",
            "bd-17p",
            "bd-1lc",
            "bd-o4c",
        ],
        "counts": {"ready": 13, "in_progress": 3, "blocked": 236, "done": 406, "open": 59},
    },
    "gastown-repo-cf3b3a67.jsonl": {
        "tasks": 933,
        "ready": [
            "gt-1fje",
            "gt-94i9",
            "gt-1emx",
            "gt-2e5q",
            "gt-4d7p",
            "gt-59sx",
            "gt-5rne",
            "gt-6oio",
            "gt-9xbg",
            "gt-bmho",
            "gt-d9ed",
            "gt-eo8d",
            "gt-j7rt",
            "gt-jq7l",
            "gt-l5js",
            "gt-mcw2",
            "gt-ohqi",
            "gt-oqf0",
            "gt-qago",
            "gt-qjtq",
            "gt-re2y",
            "gt-sjzd",
            "gt-tsut",
            "gt-utuk",
            "gt-veoe",
            "gt-wrdz",
            "gt-yoxw",
            "gt-yzt0",
            "gt-08hf1",
            "gt-8l3w",
            "gt-pimh",
            "gt-qzjb",
            "gt-td6p",
        ],
        "counts": {"ready": 33, "in_progress": 11, "blocked": 125, "done": 715, "open": 82},
    },
}


def test_the_real_exports_are_ready_exactly_as_before():
    found = sorted(p.name for p in EXPORTS.glob("*.jsonl"))
    assert found == sorted(EXPECTED), f"{EXPORTS}: the shared exports moved"
    for name, want in EXPECTED.items():
        tasks, problems = load_beads_jsonl(str(EXPORTS / name), {"d0", "d1"})
        assert problems == []
        assert len(tasks) == want["tasks"]
        r = Readiness(tasks, now=NOW)
        assert r.ready == want["ready"], name  # the same ids, in the same order
        assert r.counts() == want["counts"], name
