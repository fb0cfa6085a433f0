"""Unit tests of osism.services.loop_handoff."""

import asyncio
import threading
from typing import List
from unittest.mock import MagicMock

import pytest

from osism.services.loop_handoff import LoopHandoff


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def run_pending(loop) -> None:
    """Run the callbacks the loop has been handed so far."""
    loop.run_until_complete(asyncio.sleep(0))


class TestSubmit:
    def test_items_are_delivered_on_the_loop_in_order(self, loop):
        delivered: List[int] = []
        handoff = LoopHandoff(loop, delivered.append)

        for item in range(5):
            handoff.submit(item)

        assert delivered == []
        run_pending(loop)
        assert delivered == [0, 1, 2, 3, 4]

    def test_items_submitted_before_the_loop_runs_share_one_wake_up(self, loop):
        handoff: LoopHandoff[int] = LoopHandoff(loop, lambda item: None)
        loop.call_soon_threadsafe = MagicMock(wraps=loop.call_soon_threadsafe)

        for item in range(100):
            handoff.submit(item)
        run_pending(loop)
        handoff.submit(100)

        assert loop.call_soon_threadsafe.call_count == 2

    def test_items_from_other_threads_are_all_delivered(self, loop):
        delivered: List[int] = []
        handoff = LoopHandoff(loop, delivered.append)

        def submit_range(start: int) -> None:
            for item in range(start, start + 500):
                handoff.submit(item)

        threads = [threading.Thread(target=submit_range, args=(n,)) for n in (0, 500)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=5)
        run_pending(loop)

        assert sorted(delivered) == list(range(1000))
        assert [n for n in delivered if n < 500] == list(range(500))

    def test_a_closed_loop_refuses_the_item_and_the_next_one(self, loop):
        handoff: LoopHandoff[int] = LoopHandoff(loop, lambda item: None)
        loop.close()

        for item in (1, 2):
            with pytest.raises(RuntimeError, match="Event loop is closed"):
                handoff.submit(item)

    def test_the_owner_is_kept(self, loop):
        owner = object()

        assert LoopHandoff(loop, print, owner).owner is owner
        assert LoopHandoff(loop, print).owner is None
