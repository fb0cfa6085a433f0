"""A bounded, ordered, thread-safe buffer that drops its oldest item when full.

The event bridge keeps events in it while Redis cannot take them. Dropping
the oldest keeps the most recent state of a cloud, which is what an operator
watching the stream wants once Redis is back; every drop is counted.
"""

import queue
from typing import Any, TypeVar

T = TypeVar("T")


class EventBuffer(queue.Queue[T]):
    """A :class:`queue.Queue` whose ``put`` never blocks and never fails.

    A put into a full buffer drops the oldest item instead, and counts it in
    :attr:`dropped`. :meth:`requeue` puts an item back at the head, for a
    consumer that took it and could not pass it on.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize <= 0:
            raise ValueError(f"an event buffer needs a bound, got {maxsize}")
        super().__init__(maxsize)
        self.dropped = 0

    def put(self, item: T, block: bool = True, timeout: Any = None) -> None:
        with self.not_empty:
            if self._qsize() >= self.maxsize:
                # The dropped item was counted as unfinished and nobody will
                # call task_done for it: the new item takes its place in the
                # count, so join() still returns.
                self.queue.popleft()
                self.dropped += 1
            else:
                self.unfinished_tasks += 1
            self.queue.append(item)
            self.not_empty.notify()

    def requeue(self, item: T) -> None:
        """Put ``item`` back at the head; if that overfills, it is the one dropped."""
        with self.not_empty:
            if self._qsize() >= self.maxsize:
                self.dropped += 1
                return
            self.unfinished_tasks += 1
            self.queue.appendleft(item)
            self.not_empty.notify()
