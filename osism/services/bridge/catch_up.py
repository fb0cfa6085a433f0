"""Catching up from the Redis history after subscribing.

An API process that subscribes for the first time fills its WebSocket
manager's history with the stream's recent events, without sending them to
anyone: a client that resumes after the API restarted finds its last event
there. One that subscribes again after its subscription broke delivers what
was published meanwhile, the stream's events after the last one it
delivered (the manager skips any it has sent already). Until either is done,
the manager's history is marked as not current, so a client that resumes
meanwhile waits for it (see :mod:`osism.services.resume_wait`).
"""

import logging
from collections import Counter
from typing import Any, Callable, Optional

from osism.services.bridge import wire
from osism.services.bridge.history import RedisHistory
from osism.services.bridge.link import RedisLink
from osism.services.bridge.wire import Event

logger = logging.getLogger("osism.event_bridge")


class CatchUp:
    """``handover`` is where the recent events are remembered (the manager's
    history), ``deliver`` where missed ones are delivered."""

    def __init__(
        self,
        history: RedisHistory,
        link: RedisLink,
        handover: Any,
        deliver: Callable[[Event], None],
        stats: "Counter[str]",
    ) -> None:
        self.history = history
        self.link = link
        self.handover = handover
        self.deliver = deliver
        self.stats = stats
        self.loaded = False
        # The id of the newest event this process delivered or remembered.
        self.last_delivered: Optional[str] = None

    def delivered(self, event: Event) -> None:
        self.last_delivered = wire.id_of(event) or self.last_delivered

    def pending(self) -> None:
        """The manager's history is to be loaded or caught up on (a first
        subscribe is coming, or the subscription broke): resumes wait for it
        (see resume_wait) until :meth:`after_subscribing` is done."""
        if self.history.size:
            self.handover.mark_history(current=False)

    def after_subscribing(self) -> None:
        """Load the history (first time) or catch up (every time after); then
        the manager's history is current, also when that failed: resumes are
        answered with what it has."""
        if self.handover.manager is None or not self.history.size:
            return
        try:
            self._load_or_catch_up(self.link.client)
        except Exception as e:
            logger.warning("Catching up from the Redis history failed: %s", e)
        self.handover.mark_history(current=True)

    def _load_or_catch_up(self, client: Any) -> None:
        if client is None:
            return
        if not self.loaded:
            self._load(client)
        elif self.last_delivered is not None:
            self._catch_up(client, self.last_delivered)

    def _load(self, client: Any) -> None:
        events = self.history.newest(client, self.link.channel)
        self.handover.remember(events)
        self.loaded = True
        for event in events:
            self.delivered(event)
        if events:
            logger.info("Loaded the %d recent events of the Redis history", len(events))

    def _catch_up(self, client: Any, last: str) -> None:
        events, found = self.history.since(client, self.link.channel, last)
        for event in events:
            self.deliver(event)
        self.stats["caught_up"] += len(events)
        if events:
            logger.info(
                "Caught up on %d events published while the subscription was down",
                len(events),
            )
        if not found:
            logger.warning(
                "Event %r is no longer in the Redis history: events published "
                "before these %d may be missing (EVENT_HISTORY_SIZE)",
                last,
                len(events),
            )
