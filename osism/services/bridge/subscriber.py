"""The thread that reads the Redis channel, supervised and restarted.

:meth:`Subscriber.listen` is the seed's subscriber loop: it reads messages
until shutdown and, after a read fails, waits ``retry_delay``, reconnects and
subscribes again, giving up after ``max_retries`` failures in a row.
:meth:`Subscriber.supervise`, the thread's body, starts it again after a
cool-down that grows with :class:`~osism.services.retry.Backoff` (from
REDIS_RETRY_DELAY to REDIS_RESTART_MAX_DELAY, from the start again once a
run got subscribed), so an outage of any length ends the same way.

The pub/sub object is this part's: only its thread, or anyone while that
thread does not run, replaces it (see :meth:`Subscriber.owned_here`).
"""

import asyncio
import json
import logging
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, Optional

from osism.services.bridge import threads, wire
from osism.services.bridge.link import RedisLink
from osism.services.bridge.loop_reader import LoopReader
from osism.services.bridge.wire import Event
from osism.services.retry import Backoff

logger = logging.getLogger("osism.event_bridge")

# Seconds one read waits for a message; bounds how long shutdown waits.
READ_TIMEOUT = 1.0
# Seconds without a word from Redis after which the subscriber pings it: a
# Redis that stopped answering (a frozen host, SIGSTOP) looks like a quiet
# channel otherwise, and health would say ok for as long as it lasts.
PING_AFTER = 1.0


def pass_on(message: Any) -> Any:
    """What redis-py's parser does with a message of the channel, less its
    debug line: by default it looks up a logger and prints the whole
    message into a string for ``logger.debug``, whether or not DEBUG is on
    (2 us an event, at 1,000 events/s a fiftieth of the API's CPU)."""
    return message


class Subscriber:
    """Reads ``link``'s channel and hands each event to ``deliver``, except
    those marked with ``origin`` (this process delivered them already).
    ``reconnect`` makes one attempt to connect (the bridge's)."""

    def __init__(
        self,
        link: RedisLink,
        origin: str,
        max_retries: int,
        retry_delay: float,
        restart_backoff: Backoff,
        shutdown: threading.Event,
        stats: "Counter[str]",
        reconnect: Callable[[], None],
        deliver: Callable[[Event], None],
        on_subscribed: Callable[[], None] = lambda: None,
        on_lost: Callable[[], None] = lambda: None,
        answer_within: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        loop_of: Callable[[], Optional[asyncio.AbstractEventLoop]] = lambda: None,
        batch_interval: float = 0.0,
    ) -> None:
        # EVENT_BATCH_INTERVAL, for the loop's reads.
        self.batch_interval = batch_interval
        # The loop that reads the channel instead of this thread, if any
        # (the WebSocket manager's, see loop_reader).
        self.loop_of = loop_of
        self._reader: Optional[LoopReader] = None
        # Seconds Redis has to answer a ping (REDIS_SOCKET_TIMEOUT).
        self.answer_within = answer_within
        self.clock = clock
        self._heard_at = 0.0
        self._pinged_at: Optional[float] = None
        # Called after every subscribe that succeeded (catching up), and
        # when a subscription broke (what comes meanwhile is to catch up on).
        self.on_subscribed = on_subscribed
        self.on_lost = on_lost
        self.link = link
        self.origin = origin
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.restart_backoff = restart_backoff
        self.shutdown = shutdown
        self.stats = stats
        self.reconnect = reconnect
        self.deliver = deliver
        self.pubsub: Any = None
        self.thread: Optional[threading.Thread] = None
        # Whether the loop is subscribed and reading (health's redis_connected).
        self.connected = False

    def start(self) -> None:
        self.thread = threads.start_daemon(self.supervise, "subscriber")

    def owned_here(self) -> bool:
        """True in the subscriber thread, or anywhere while none is running."""
        thread = self.thread
        return (
            thread is None
            or thread.ident == threading.get_ident()
            or not thread.is_alive()
        )

    def adopt(self, client: Any) -> None:
        """After a connection attempt (by the owner): a new pub/sub from a
        connected ``client`` when there is none, none without a client."""
        if client is None:
            self.drop()
        elif self.pubsub is None:
            pubsub = client.pubsub()
            # redis-py's public attribute, read when the pub/sub connects.
            pubsub.push_handler_func = pass_on
            self.pubsub = pubsub

    def drop(self) -> None:
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            self._close(pubsub)

    def _close(self, pubsub: Any) -> None:
        self._stop_loop_reading()
        try:
            pubsub.close()
        except Exception as e:
            logger.debug("Closing the Redis subscriber failed: %s", e)

    def supervise(self) -> None:
        """Run :meth:`listen` until shutdown, restarting it when it ends."""
        delays = self.restart_backoff.delays()
        while not self.shutdown.is_set():
            self.connected = False
            try:
                self.listen()
            except Exception as e:
                self.stats["redis_errors"] += 1
                self.link.note_outage(e)
                logger.error("Redis subscriber failed: %s", e)
            if self.shutdown.is_set():
                break
            if self.connected:
                delays = self.restart_backoff.delays()
            self.connected = False
            self.stats["subscriber_restarts"] += 1
            delay = next(delays)
            logger.warning("Restarting the Redis subscriber in %g s", delay)
            if self.shutdown.wait(delay):
                break
            self.reconnect()

    def listen(self) -> None:
        """Read the channel until shutdown, reconnecting on errors; give up
        after ``max_retries`` failures in a row."""
        if self.pubsub is None:
            logger.error("Redis subscriber not initialised, not subscribing")
            return
        retry_count = 0
        try:
            self.pubsub.subscribe(self.link.channel)
            self.connected = True
            logger.info("Subscribed to Redis channel %s", self.link.channel)
            self.on_subscribed()
            while not self.shutdown.is_set():
                try:
                    self._heard()
                    while not self.shutdown.is_set():
                        pubsub = self.pubsub
                        if pubsub is None:
                            raise ConnectionError("not connected to Redis")
                        reader = self._loop_reader(pubsub)
                        if reader is not None:
                            self._ping_when_quiet(reader)
                            reader.wait(READ_TIMEOUT)
                        else:
                            self._ping_when_quiet(pubsub)
                            self.take(pubsub.get_message(timeout=READ_TIMEOUT))
                        retry_count = 0
                        self.connected = True
                except Exception as e:
                    self._stop_loop_reading()
                    if self.shutdown.is_set():
                        # shutdown() closing the connection under us; not an
                        # outage, so no reconnect.
                        break
                    retry_count += 1
                    self.connected = False
                    self.on_lost()
                    self.link.note_outage(e)
                    self.stats["redis_errors"] += 1
                    logger.error(
                        "Redis subscriber error (attempt %d/%d): %s",
                        retry_count,
                        self.max_retries,
                        e,
                    )
                    if retry_count >= self.max_retries:
                        logger.error(
                            "Max Redis reconnection attempts reached, giving up"
                        )
                        break
                    self.shutdown.wait(self.retry_delay)
                    self.reconnect()
                    self._resubscribe()
        finally:
            if self.pubsub is not None:
                self._close(self.pubsub)
            logger.info("Redis subscriber stopped")

    def take(self, message: Optional[Dict[str, Any]]) -> None:
        """What a read of the pub/sub gave (None: nothing came)."""
        if message is None:
            return
        self._heard()
        if message["type"] == "message":
            self.handle(message["data"])

    def _loop_reader(self, pubsub: Any) -> Optional[LoopReader]:
        """The reader that reads ``pubsub`` on the manager's loop, attached
        if it was not; None where this thread reads itself (no loop runs,
        or it does not take the socket). A loop that stopped, or another
        loop in its place, has the reading moved."""
        loop = self.loop_of()
        running = loop is not None and loop.is_running()
        reader = self._reader
        if reader is not None and reader.pubsub is pubsub and reader.loop is loop:
            if running:
                return reader
        self._stop_loop_reading()
        if loop is None or not running:
            return None
        if reader is None or reader.loop is not loop:
            reader = self._reader = LoopReader(loop, self.take, self.batch_interval)
        return reader if reader.attach(pubsub) else None

    def _stop_loop_reading(self) -> None:
        if self._reader is not None:
            self._reader.detach()

    def _heard(self) -> None:
        self._heard_at = self.clock()
        self._pinged_at = None

    def _ping_when_quiet(self, pubsub: Any) -> None:
        """Ping a quiet Redis; one that did not answer within
        ``answer_within`` seconds counts as lost (ConnectionError)."""
        now = self.clock()
        if self._pinged_at is None:
            if now - self._heard_at >= PING_AFTER:
                pubsub.ping()
                self._pinged_at = now
        elif now - self._pinged_at > self.answer_within:
            raise ConnectionError(
                f"Redis did not answer a ping within {self.answer_within:g} s"
            )

    def _resubscribe(self) -> None:
        """Subscribe again after a reconnect; a failure counts as the next error."""
        if self.pubsub is None:
            return
        try:
            self.pubsub.subscribe(self.link.channel)
        except Exception as e:
            logger.debug("Subscribing again failed: %s", e)
            return
        self.connected = True
        logger.info("Subscribed to Redis channel %s again", self.link.channel)
        self.on_subscribed()

    def handle(self, data: str) -> None:
        """One message of the channel: delivered, or logged and counted."""
        try:
            event = wire.decode(data)
            if wire.origin_of(event) == self.origin:
                self.stats["own_skipped"] += 1
            else:
                self.deliver(event)
        except wire.InvalidEvent as e:
            self.stats["invalid"] += 1
            logger.error("Skipping Redis message that is not an event: %s", e)
        except json.JSONDecodeError as e:
            self.stats["invalid"] += 1
            logger.error("Failed to decode Redis message as JSON: %s", e)
        except Exception as e:
            self.stats["dropped"] += 1
            logger.error("Error processing Redis event: %s", e)
