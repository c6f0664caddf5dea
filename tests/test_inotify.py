"""engine/inotify.py: the engine's and a viewer's watcher on Linux, read when the kernel has
something instead of by a thread that wakes every few milliseconds. Real files, real inotify."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from comm_node_tui.engine import inotify
from comm_node_tui.protocol.fileio import atomic_write


def paths_of(batches: list) -> set[str]:
    return {p for batch in batches for _c, p in batch}


def test_the_engine_watcher_sees_renames_writes_and_removals_and_stops(tmp_path) -> None:
    state, outbox = tmp_path / "state", tmp_path / "outbox"
    state.mkdir()
    outbox.mkdir()
    gone = tmp_path / "gone"
    gone.mkdir()
    status = str(state / "status.json")

    async def main() -> list:
        stop = asyncio.Event()
        batches: list = []
        ignored = str(state / "events.jsonl")

        async def collect() -> None:
            gen = inotify.awatch(
                [str(state), str(outbox), str(gone)],
                stop,
                debounce_ms=30,
                step_ms=5,
                wanted=lambda _c, p: p != ignored,
            )
            async for batch in gen:
                batches.append(batch)

        task = asyncio.create_task(collect())
        await asyncio.sleep(0)  # the watches are set when the generator first runs
        want = {status, str(outbox / "m1.md"), str(gone)}
        for _ in range(600):  # the first writes may come before the watches: write again
            atomic_write(status, '{"state": "busy"}')  # a rename into the directory
            with open(ignored, "a") as fh:
                fh.write("{}\n")  # the engine's own writing: filtered out
            (outbox / "m1.md").write_text("hello")
            if gone.exists():
                gone.rmdir()
            await asyncio.sleep(0.05)
            if want <= paths_of(batches):
                break
        stop.set()
        await asyncio.wait_for(task, 30)  # the stop ends it
        return batches

    batches = asyncio.run(main())
    seen = paths_of(batches)
    assert {status, str(outbox / "m1.md"), str(gone)} <= seen
    assert str(state / "events.jsonl") not in seen
    assert all(
        c in (inotify.ADDED, inotify.MODIFIED, inotify.DELETED) for b in batches for c, _ in b
    )


def test_a_stopped_watcher_gives_back_its_descriptor(tmp_path) -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def main() -> tuple[int, int, int]:
        stop = asyncio.Event()
        before = fds()
        gen = inotify.awatch([str(tmp_path)], stop, debounce_ms=30, step_ms=5)
        task = asyncio.ensure_future(gen.__anext__())
        for _ in range(3000):  # until the generator has opened its descriptor (30 s at most)
            await asyncio.sleep(0.01)
            if fds() > before:
                break
        during = fds()
        stop.set()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(task, 30)
        return before, during, fds()

    before, during, after = asyncio.run(main())
    assert during > before and after == before


def test_the_viewer_watcher_in_a_thread(tmp_path) -> None:
    stop = threading.Event()
    batches: list = []
    done = threading.Event()

    def run() -> None:
        for batch in inotify.watch([str(tmp_path)], stop, debounce_ms=20, step_ms=20):
            batches.append(batch)
            done.set()
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    target = str(tmp_path / "status.json")
    for _ in range(600):
        atomic_write(target, "{}")
        if done.wait(0.05) and target in paths_of(batches):
            break
    assert target in paths_of(batches)
    stop.set()
    thread.join(timeout=30)  # select wakes at least every half second to see the stop
    assert not thread.is_alive()


def test_missing_or_unreadable_directories_are_left_out(tmp_path) -> None:
    ino = inotify.Inotify([str(tmp_path / "nowhere"), str(tmp_path)])
    try:
        assert list(ino.paths.values()) == [str(tmp_path)]
        assert ino.read() == set()  # nothing queued: no wait
    finally:
        ino.close()
