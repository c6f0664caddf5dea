"""coordination/tasks.py Uncollected: the collector paused while tasks are loaded, always
back on after, and a big load that is kept (the engine's task view, the room's graph) frozen
out of the collector's later passes."""

from __future__ import annotations

import gc

import pytest

from comm_node_tui.coordination.tasks import Uncollected


@pytest.fixture
def collector(monkeypatch):
    """The test process's collector as it was, whatever a test did to it; no big load frozen
    in this process yet."""
    monkeypatch.setattr(Uncollected, "frozen", 0)
    was = gc.isenabled()
    gc.enable()
    gc.collect()
    frozen = gc.get_freeze_count()
    yield frozen
    gc.unfreeze()
    if not was:
        gc.disable()


def test_paused_inside_and_on_after_even_when_the_load_fails(collector) -> None:
    with pytest.raises(ValueError), Uncollected():
        assert not gc.isenabled()
        raise ValueError("a broken source")
    assert gc.isenabled()


def test_nested_and_overlapping_regions_end_with_the_collector_on(collector) -> None:
    outer, inner = Uncollected(), Uncollected()
    outer.__enter__()
    inner.__enter__()  # another thread's load, begun while this one runs
    outer.__exit__()  # the first to end was the one that found the collector on
    assert gc.isenabled()
    inner.__exit__()  # found it off: leaves it as it is now (on)
    assert gc.isenabled()


def test_a_big_kept_load_is_frozen_and_a_small_or_passing_one_is_not(collector) -> None:
    with Uncollected(keep=True):
        small = [[i] for i in range(100)]
    with Uncollected():
        passing = [[i] for i in range(Uncollected.MANY + 1000)]
    assert gc.get_freeze_count() == collector  # nothing frozen
    with Uncollected(keep=True):
        kept = [[i] for i in range(Uncollected.MANY + 1000)]
    assert gc.get_freeze_count() >= collector + len(kept)
    assert gc.isenabled()
    # frozen objects are still freed by their references: only the collector skips them
    before = gc.get_freeze_count()
    del kept
    assert gc.get_freeze_count() <= before - Uncollected.MANY
    assert small and passing


def test_only_the_first_big_loads_of_a_process_are_frozen(collector) -> None:
    """A later reload (a claim changes the overlay) is not frozen: what freezing keeps from
    the collector is bounded to the start-up's loads."""
    kept = []
    for _ in range(Uncollected.FREEZES):
        with Uncollected(keep=True):
            kept.append([[i] for i in range(Uncollected.MANY + 1000)])
    frozen = gc.get_freeze_count()
    assert frozen >= collector + Uncollected.FREEZES * Uncollected.MANY
    with Uncollected(keep=True):
        later = [[i] for i in range(Uncollected.MANY + 1000)]
    assert gc.get_freeze_count() == frozen and gc.isenabled()
    assert later and kept
