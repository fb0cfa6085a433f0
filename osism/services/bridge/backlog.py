"""Events kept, in order, until Redis takes them.

Publishing and keeping happen under :attr:`Backlog.lock`: while events are
kept, a new event queues behind them instead of overtaking them, and the
reconnector publishes them in the order they came.

Where they wait depends on the bridge. One that only publishes (the
listener) has no clients of its own: it keeps them in its local queue, the
seed's fallback, which nothing else reads there. One that serves a
WebSocket manager feeds its local clients from its local queue and keeps
events for Redis apart (:meth:`Backlog.set_apart`).
"""

import logging
import threading

from osism.services.bridge.wire import Event
from osism.services.event_buffer import EventBuffer

logger = logging.getLogger("osism.event_bridge")


class Backlog:
    """A bounded, ordered buffer of events for Redis; the oldest are dropped
    beyond its bound, which is warned about once per outage."""

    def __init__(self, buffer: "EventBuffer[Event]") -> None:
        self.buffer = buffer
        self.lock = threading.RLock()
        # Drops already reported (see report_drops) and whether the current
        # run of drops was warned about.
        self._drops_reported = 0
        self._drop_warned = False

    def set_apart(self, buffer: "EventBuffer[Event]") -> None:
        """Keep events in ``buffer`` from now on; what was kept stays where it is."""
        with self.lock:
            self.buffer = buffer
            self._drops_reported = 0
            self._drop_warned = False

    def keep(self, event: Event) -> None:
        self.buffer.put_nowait(event)

    def take(self) -> Event:
        """The oldest kept event, taken out (the caller holds the lock)."""
        event = self.buffer.get_nowait()
        self.buffer.task_done()
        return event

    def put_back(self, event: Event) -> None:
        """Return a taken event to the head, for a caller that could not pass
        it on."""
        self.buffer.requeue(event)

    def empty(self) -> bool:
        return self.buffer.empty()

    def size(self) -> int:
        return self.buffer.qsize()

    @property
    def dropped(self) -> int:
        return self.buffer.dropped

    def warn_once_about_drops(self) -> None:
        if self.buffer.dropped > self._drops_reported and not self._drop_warned:
            self._drop_warned = True
            logger.warning(
                "The Redis buffer is full (%d events): dropping the oldest until "
                "Redis takes them (REDIS_BUFFER_SIZE)",
                self.buffer.maxsize,
            )

    def report_drops(self) -> None:
        """Say how many events were dropped since the last report; the next
        drop is warned about again."""
        dropped = self.buffer.dropped - self._drops_reported
        if dropped:
            logger.warning(
                "%d events were dropped while Redis could not take them "
                "(the buffer holds %d)",
                dropped,
                self.buffer.maxsize,
            )
        self._drops_reported = self.buffer.dropped
        self._drop_warned = False
