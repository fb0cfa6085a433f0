"""Handing work from other threads to an asyncio event loop in batches.

``loop.call_soon_threadsafe`` per item writes to the loop's self-pipe and
wakes the loop once per item. At thousands of events per second that wake-up
is a large part of the cost of an event, so items are collected here and
the loop is woken once per batch: whatever arrives while a wake-up is
pending joins it. Order is kept.
"""

import asyncio
import threading
from typing import Callable, Generic, List, TypeVar

T = TypeVar("T")


def running_here(loop: asyncio.AbstractEventLoop) -> bool:
    """True when called on ``loop`` (in its thread, while it runs)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class LoopHandoff(Generic[T]):
    """Delivers items to ``deliver`` on ``loop``, from any thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[T], None],
        owner: object = None,
    ) -> None:
        self.loop = loop
        # Whom the items are for; lets a caller tell its handoffs apart.
        self.owner = owner
        self._deliver = deliver
        self._lock = threading.Lock()
        self._items: List[T] = []
        self._scheduled = False

    def submit(self, item: T) -> None:
        """Queue ``item`` for the loop; raises RuntimeError if the loop is closed."""
        with self._lock:
            self._items.append(item)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._run)
        except BaseException:
            with self._lock:
                self._scheduled = False
                self._items.clear()
            raise

    def _run(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        for item in items:
            self._deliver(item)
