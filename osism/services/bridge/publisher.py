"""Publishing an event on Redis, or keeping it until Redis can take it.

An event is published at once when Redis is connected and nothing is kept
before it. When publishing fails, one reconnect is tried and the event
published again; when that fails too, or nobody received it (see
:mod:`.receivers`), it is kept (see :mod:`.backlog`) and the reconnector
publishes it later.
"""

import logging
from collections import Counter
from typing import Callable, Optional

from osism.services.bridge import wire
from osism.services.bridge.backlog import Backlog
from osism.services.bridge.history import RedisHistory
from osism.services.bridge.link import RedisLink
from osism.services.bridge.receivers import Receivers
from osism.services.bridge.reconnector import Reconnector
from osism.services.bridge.wire import Event
from osism.services.event_buffer import EventBuffer

logger = logging.getLogger("osism.event_bridge")


class Publisher:
    """``origin`` marks the events an API process delivered to its own clients
    already. ``reconnect`` makes one attempt to connect (the bridge's).
    ``keeps_for_redis`` tells whether events Redis did not take are kept for
    it: not when Redis is off, nor while an API runs embedded for want of a
    Redis it was not told about."""

    def __init__(
        self,
        link: RedisLink,
        backlog: Backlog,
        receivers: Receivers,
        reconnector: Reconnector,
        stats: "Counter[str]",
        origin: str,
        reconnect: Callable[[], None],
        keeps_for_redis: Callable[[], bool],
        history: Optional[RedisHistory] = None,
    ) -> None:
        # Where published events are kept too (none by default).
        self.history = RedisHistory(0) if history is None else history
        self.link = link
        self.backlog = backlog
        self.receivers = receivers
        self.reconnector = reconnector
        self.stats = stats
        self.origin = origin
        self.reconnect = reconnect
        self.keeps_for_redis = keeps_for_redis
        # This process's clients, once it serves a WebSocket manager.
        self.local_queue: "Optional[EventBuffer[Event]]" = None

    def serve_local_clients(
        self,
        local_queue: "EventBuffer[Event]",
        backlog: "EventBuffer[Event]",
    ) -> None:
        """From now on an event Redis did not deliver reaches this process's
        clients at once through ``local_queue``, and waits for the other API
        processes in ``backlog``, marked with this process's origin."""
        with self.backlog.lock:
            if self.local_queue is None:
                self.local_queue = local_queue
                self.backlog.set_apart(backlog)

    def publish(self, event: Event) -> None:
        """Publish ``event``, or keep it. Raises what keeping raises
        (queue.Full from a full local queue) and what encoding raises (a
        payload that is not JSON is the caller's error, not a reason to
        reconnect)."""
        with self.backlog.lock:
            if self.link.client is not None and self.backlog.empty():
                message = wire.encode(event)
                receivers = self._publish(event["event_type"], message)
                if receivers is not None and not self.receivers.keeps_unreceived(
                    receivers
                ):
                    return
            self.keep(event)

    def _publish(self, event_type: str, message: str) -> Optional[int]:
        """Publish once, and once more after reconnecting. How many
        subscribers received the event, or None when it was not published."""
        try:
            receivers = self.history.publish(
                self.link.client, self.link.channel, message
            )
        except Exception as e:
            logger.error("Failed to publish event %s to Redis: %s", event_type, e)
            self.link.note_outage(e)
            self.reconnect()
            if self.link.client is None:
                return None
            try:
                receivers = self.history.publish(
                    self.link.client, self.link.channel, message
                )
            except Exception as retry_error:
                logger.error(
                    "Failed to publish event %s to Redis after reconnect: %s",
                    event_type,
                    retry_error,
                )
                self.link.lose(retry_error)
                return None
            self.stats["published"] += 1
            logger.info("Published event %s to Redis after reconnect", event_type)
            return receivers
        self.stats["published"] += 1
        if receivers > 0:
            logger.info(
                "Published event %s to Redis (%d subscribers)", event_type, receivers
            )
        elif self.receivers.nobody_since is None:
            logger.warning(
                "No Redis subscribers received event %s (is the API running?)",
                event_type,
            )
        return receivers

    def publish_now(self, event: Event) -> bool:
        """Publish ``event`` now, or say it could not be (False): nothing is
        kept. For a publisher that keeps what Redis did not take itself (the
        listener leaves it unacknowledged on RabbitMQ)."""
        with self.backlog.lock:
            if self.link.client is None:
                self.reconnect()
            if self.link.client is None:
                return False
            return self._publish(event["event_type"], wire.encode(event)) is not None

    def keep(self, event: Event) -> None:
        """Keep an event Redis did not deliver; publish it when Redis can.

        In an API process local clients get it now from the local queue (its
        own subscriber did not receive it either: Redis was down, or took it
        for nobody) and the other API processes once Redis can take it; it
        carries this process's origin then, so its own subscriber skips it.
        Delivering locally at once also keeps the local order: nothing waits
        for the own subscriber.
        """
        wanted = self.keeps_for_redis()
        with self.backlog.lock:
            if self.local_queue is None:
                # Nobody reads the local queue of a bridge that only
                # publishes: there it is the backlog.
                self.backlog.keep(event)
            else:
                if wanted:
                    self.backlog.keep(wire.with_origin(event, self.origin))
                    self.stats["kept_for_redis"] += 1
                self.local_queue.put_nowait(event)
            self.stats["queued_locally"] += 1
            logger.debug("Queued event %s locally", event["event_type"])
            if wanted:
                self.backlog.warn_once_about_drops()
                self.reconnector.ensure_running()
