"""Handing events to the WebSocket manager, and the local queue's thread.

When the manager has recorded the loop its broadcaster runs on, an event is
handed to that loop (in batches, see :mod:`osism.services.loop_handoff`) and
the calling thread moves on at once. The seed ran a fresh private loop per
event instead, which touched the manager's asyncio queue from a foreign
thread while the broadcaster's loop used it; the private loop remains only
for a manager that has no loop yet.
"""

import asyncio
import logging
import queue
import threading
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Tuple

from osism.services.bridge import threads, wire
from osism.services.bridge.wire import Event
from osism.services.event_buffer import EventBuffer
from osism.services.event_history import EventHistory
from osism.services.loop_handoff import LoopHandoff, running_here

logger = logging.getLogger("osism.event_bridge")

# What the manager is given of an event: event type, payload, publisher id,
# event id, timestamp (see WebSocketManager.deliver_notification).
Notification = Tuple[str, Dict[str, Any], Optional[str], Optional[str], Optional[str]]


def notification_of(event: Event) -> Notification:
    return (
        event["event_type"],
        event["payload"],
        wire.publisher_id_of(event),
        wire.id_of(event),
        wire.text_of(event, wire.TIMESTAMP_KEY),
    )


def loop_of(manager: Any) -> Optional[asyncio.AbstractEventLoop]:
    """The loop ``manager`` runs on, once it recorded one."""
    loop = getattr(manager, "loop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None


# Seconds the processor waits for an event; bounds how long shutdown waits.
QUEUE_TIMEOUT = 1.0


class Handover:
    """Gives events to :attr:`manager`; never raises (what fails is logged
    and counted as dropped)."""

    def __init__(self, stats: "Counter[str]") -> None:
        self.stats = stats
        self.manager: Any = None
        self._handoff: "Optional[LoopHandoff[Notification]]" = None

    def hand_over(self, event: Event) -> None:
        manager = self.manager
        if manager is None:
            self.stats["dropped"] += 1
            logger.warning("No WebSocket manager available, dropping event")
            return
        try:
            notification = notification_of(event)
            event_type, payload, publisher_id = notification[:3]
            loop = loop_of(manager)
            if loop is not None:
                if running_here(loop):
                    # Read on the manager's loop (see loop_reader).
                    manager.deliver_notification(*notification)
                else:
                    self._handoff_to(manager, loop).submit(notification)
                return
            # The seed's call, with what the event has beyond the seed's.
            extra = () if publisher_id is None else (publisher_id,)
            ids = dict(zip(("event_id", "timestamp"), notification[3:]))
            given = {key: value for key, value in ids.items() if value is not None}
            private_loop = asyncio.new_event_loop()
            try:
                private_loop.run_until_complete(
                    manager.broadcast_event_from_notification(
                        event_type, payload, *extra, **given
                    )
                )
            finally:
                private_loop.close()
        except Exception as e:
            self.stats["dropped"] += 1
            logger.error("Error handing an event to the WebSocket manager: %r", e)

    def remember(self, events: List[Event]) -> None:
        """Have the manager keep ``events`` in its history for clients that
        resume, without sending them (on its loop, when it runs one)."""
        manager = self.manager
        notifications = [notification_of(event) for event in events]
        loop = loop_of(manager)
        if loop is not None:
            loop.call_soon_threadsafe(manager.remember, notifications)
        else:
            manager.remember(notifications)

    def mark_history(self, current: bool) -> None:
        """Tell the manager whether its history holds what Redis has (a
        resume waits while it does not, see resume_wait): on its loop, after
        what was handed over before. A manager without such a history, or
        whose loop is closed, is not told."""
        manager = self.manager
        if not isinstance(getattr(manager, "history", None), EventHistory):
            return
        loop = loop_of(manager)
        if loop is None:
            _mark(manager, current)
            return
        try:
            loop.call_soon_threadsafe(_mark, manager, current)
        except RuntimeError as e:
            logger.debug("Not marking the history of a stopped manager: %s", e)

    def _handoff_to(
        self, manager: Any, loop: asyncio.AbstractEventLoop
    ) -> "LoopHandoff[Notification]":
        handoff = self._handoff
        if handoff is None or handoff.loop is not loop or handoff.owner is not manager:
            handoff = self._handoff = LoopHandoff(
                loop, lambda item: manager.deliver_notification(*item), manager
            )
        return handoff


def _mark(manager: Any, current: bool) -> None:
    manager.history.current = current


class LocalProcessor:
    """The thread that hands the local queue's events to ``handle``."""

    def __init__(
        self,
        events: "EventBuffer[Event]",
        handle: Callable[[Event], None],
        shutdown: threading.Event,
    ) -> None:
        self.events = events
        self.handle = handle
        self.shutdown = shutdown
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self.thread = threads.start_daemon(self.run, "processor")

    def run(self) -> None:
        """Hand over queued events until shutdown."""
        logger.info("Event processor started")
        while not self.shutdown.is_set():
            try:
                event = self.events.get(timeout=QUEUE_TIMEOUT)
            except queue.Empty:
                continue
            try:
                self.handle(event)
            except Exception as e:
                logger.error("Error processing queued event: %s", e)
            finally:
                self.events.task_done()
        logger.info("Event processor stopped")
