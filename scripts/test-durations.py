#!/usr/bin/env python3
"""Refresh tests/durations.json from a run's `--durations=N` report.

    ./test -q --durations=120 | tee /tmp/run.log
    .venv/bin/python scripts/test-durations.py /tmp/run.log

The suite starts the longest tests first (tests/conftest.py): with 4 workers on 2 cores a
35 s test that starts last is 35 s added to the wall time. Only the order uses these numbers;
a stale or missing entry costs time, never a result.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

LINE = re.compile(r"^([0-9.]+)s (setup|call|teardown)\s+(\S+)$")
MIN_SECONDS = 3.0  # shorter tests pack around the long ones in any order


def main(report: str) -> None:
    seconds: dict[str, float] = {}
    for line in Path(report).read_text().splitlines():
        m = LINE.match(line.strip())
        if m:
            seconds[m[3]] = seconds.get(m[3], 0.0) + float(m[1])
    kept = {k: round(v, 1) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])}
    kept = {k: v for k, v in kept.items() if v >= MIN_SECONDS}
    out = Path(__file__).resolve().parent.parent / "tests" / "durations.json"
    out.write_text(json.dumps(kept, indent=1) + "\n")
    print(f"{out}: {len(kept)} tests of {MIN_SECONDS:g} s or more")


if __name__ == "__main__":
    main(sys.argv[1])
