"""The thread that reconnects to Redis and publishes the kept events.

It runs while events are kept (or while an API process that started
without Redis waits to subscribe): it reconnects with a back-off, waits
for the subscribers to be back, then publishes the backlog in order and
ends. An event kept while it ends starts a new one.
"""

import logging
import threading
from collections import Counter
from typing import Callable, Optional

from osism.services.bridge import threads, wire
from osism.services.bridge.backlog import Backlog
from osism.services.bridge.history import RedisHistory
from osism.services.bridge.link import RedisLink
from osism.services.bridge.receivers import Receivers
from osism.services.retry import Backoff

logger = logging.getLogger("osism.event_bridge")

# How often a kept event is offered again while Redis is up but nobody, or
# not everybody, subscribes.
SUBSCRIBER_POLL_INTERVAL = 0.1


class Reconnector:
    """``reconnect`` makes one attempt to connect (the bridge's); after one
    that succeeded ``on_connected`` is called (an API process subscribes
    then)."""

    def __init__(
        self,
        link: RedisLink,
        backlog: Backlog,
        receivers: Receivers,
        backoff: Backoff,
        shutdown: threading.Event,
        stats: "Counter[str]",
        reconnect: Callable[[], None],
        on_connected: Callable[[], None],
        history: Optional[RedisHistory] = None,
    ) -> None:
        # Where published events are kept too (none by default).
        self.history = RedisHistory(0) if history is None else history
        self.link = link
        self.backlog = backlog
        self.receivers = receivers
        self.backoff = backoff
        self.shutdown = shutdown
        self.stats = stats
        self.reconnect = reconnect
        self.on_connected = on_connected
        self.thread: Optional[threading.Thread] = None

    def ensure_running(self) -> None:
        """Start the thread unless it runs; call with the backlog's lock, so
        that it cannot end unseen between this check and an event kept."""
        if not threads.is_running(self.thread):
            self.thread = threads.start_daemon(self.run, "reconnector")

    def run(self) -> None:
        """The thread's body: until nothing is kept any more, or shutdown."""
        delays = self.backoff.delays()
        while not self.shutdown.is_set():
            if self.link.client is None:
                if self.shutdown.wait(next(delays)):
                    break
                self.stats["reconnects"] += 1
                self.reconnect()
                if self.link.client is None:
                    continue
                delays = self.backoff.delays()
                self.on_connected()
            if self.flush():
                break
            if self.link.client is not None:
                self.shutdown.wait(SUBSCRIBER_POLL_INTERVAL)
        logger.debug("Reconnector stopped")

    def flush(self) -> bool:
        """Publish the kept events in order; True once none is left.

        Stops early (False) when Redis fails, or when an event reaches no
        subscriber and is to be offered again later.
        """
        backlog = self.backlog
        published = 0
        if not backlog.empty() and not self.receivers.back(
            self.link.client, self.link.channel
        ):
            return False
        while not self.shutdown.is_set():
            with backlog.lock:
                if backlog.empty():
                    self.thread = None
                    if published:
                        logger.info("Published %d kept events to Redis", published)
                    backlog.report_drops()
                    return True
                client = self.link.client
                if client is None:
                    return False
                event = backlog.take()
                try:
                    receivers = self.history.publish(
                        client, self.link.channel, wire.encode(event)
                    )
                except Exception as e:
                    backlog.put_back(event)
                    logger.error("Failed to publish kept events to Redis: %s", e)
                    self.link.lose(e)
                    return False
                if self.receivers.keeps_unreceived(receivers):
                    backlog.put_back(event)
                    return False
                self.stats["published"] += 1
                published += 1
        return False
