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
    if frozen:  # frozen again: the test workers freeze what collection imported (conftest.py)
        gc.collect()
        gc.freeze()
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


def test_what_was_made_before_a_region_is_not_counted_as_its_load(collector) -> None:
    """The young count may stand high when a small load begins (a process with a raised
    threshold: the test workers collect every 20,000 allocations): the load is still small,
    and nothing is frozen (it would freeze every young object, a live room's among them)."""
    old = gc.get_threshold()
    gc.set_threshold(Uncollected.MANY * 2, 10, 10)
    try:
        before = [[i] for i in range(Uncollected.MANY - 50)]  # young, not collected yet
        with Uncollected(keep=True):
            small = [[i] for i in range(100)]
        assert gc.get_freeze_count() == collector
    finally:
        gc.set_threshold(*old)
    assert before and small


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


def _in_generation(objs: list, generation: int) -> int:
    ids = {id(o) for o in objs}
    return sum(1 for o in gc.get_objects(generation) if id(o) in ids)


def test_a_big_load_not_frozen_goes_to_the_oldest_generation_at_once(collector) -> None:
    """No young or middle pass walks what a big load made (they would, twice, on its way to
    the oldest generation); full passes still do, and still collect a cycle among it."""
    import weakref

    if collector:  # something frozen in this process: unfreeze would thaw it, so no move
        gc.unfreeze()

    class Node:
        pass

    with Uncollected():
        made = [[i] for i in range(Uncollected.MANY + 1000)]
        cycle = Node()
        cycle.self = cycle  # garbage once dropped: only the collector frees it
    gone = weakref.ref(cycle)
    assert gc.get_count()[0] < 100 and gc.get_freeze_count() == 0 and gc.isenabled()
    assert _in_generation(made, 2) == len(made)
    assert _in_generation(made, 0) == _in_generation(made, 1) == 0
    del cycle
    gc.collect(1)
    assert gone() is not None  # young and middle passes do not walk the oldest generation
    gc.collect()
    assert gone() is None  # a full pass does: nothing is kept for good


def test_nothing_frozen_is_thawed_by_a_later_big_load(collector) -> None:
    with Uncollected(keep=True):
        kept = [[i] for i in range(Uncollected.MANY + 1000)]
    frozen = gc.get_freeze_count()
    assert frozen >= len(kept)
    with Uncollected():
        passing = [[i] for i in range(Uncollected.MANY + 1000)]
    assert gc.get_freeze_count() == frozen  # still frozen, not thawed into the oldest
    assert _in_generation(kept, 2) == 0
    # left to the young pass its first allocations run (which moves it one generation up)
    assert _in_generation(passing, 2) == 0
