"""Bridge between the process that receives OpenStack notifications and the
one that streams them to WebSocket clients. The listener calls
:meth:`EventBridge.add_event`, which publishes ``{"event_type": ...,
"payload": ...}`` on the Redis channel ``osism:events``. The API calls
:meth:`EventBridge.set_websocket_manager`: a subscriber thread has the channel
read (on the manager's loop), a processor thread the local queue. Without
Redis, events reach only this process's clients.

``EventBridge`` is the seed's interface (names, signatures, log texts, the
private names its tests use); the parts in :mod:`osism.services.bridge` do the
work, one job each, and say what they add so the stream survives Redis outages.
"""

import json  # noqa: F401 - the seed's tests patch event_bridge.json.dumps
import logging
import queue
import threading
import uuid
from collections import Counter
from typing import Any, Dict, Optional

from osism.services.bridge import wire
from osism.services.bridge.backlog import Backlog
from osism.services.bridge.catch_up import CatchUp
from osism.services.bridge.delegation import Part as _Part
from osism.services.bridge.delivery import Handover, LocalProcessor, loop_of
from osism.services.bridge.history import RedisHistory
from osism.services.bridge.link import RedisLink, redis
from osism.services.bridge.publisher import Publisher
from osism.services.bridge.receivers import Receivers
from osism.services.bridge.reconnector import Reconnector
from osism.services.bridge.subscriber import Subscriber
from osism.services.bridge.threads import is_running, join_if_running
from osism.services.event_buffer import EventBuffer
from osism.services.retry import Backoff
from osism.settings import Settings

logger = logging.getLogger("osism.event_bridge")

REDIS_AVAILABLE = redis is not None
REDIS_CHANNEL = wire.CHANNEL
ORIGIN_KEY = wire.ORIGIN_KEY
PUBLISHER_KEY = wire.PUBLISHER_KEY


class EventBridge:
    # The seed's attributes, kept by the part whose job they are.
    _redis_client: _Part[Any] = _Part("_link", "client")
    channel: _Part[str] = _Part("_link", "channel")
    _redis_subscriber: _Part[Any] = _Part("_subscriber", "pubsub")
    _subscriber_thread: _Part[Optional[threading.Thread]] = _Part(
        "_subscriber", "thread"
    )
    max_retries: _Part[int] = _Part("_subscriber", "max_retries")
    retry_delay: _Part[float] = _Part("_subscriber", "retry_delay")
    _processor_thread: _Part[Optional[threading.Thread]] = _Part("_processor", "thread")
    _websocket_manager: _Part[Any] = _Part("_handover", "manager")

    def __init__(self, connect: bool = True, settings: Optional[Settings] = None):
        """A bridge from ``settings`` (the environment's by default). With
        ``connect=False`` Redis is first tried on first use (``add_event``,
        ``set_websocket_manager``): the singleton does no I/O at import."""
        settings = Settings() if settings is None else settings
        self.stats: Counter[str] = Counter()
        self._shutdown_event = threading.Event()
        self._shut_down = False
        self._shutdown_lock = threading.Lock()
        self._buffer_size = settings.redis_buffer_size
        self._event_queue: EventBuffer[wire.Event] = EventBuffer(self._buffer_size)
        origin = uuid.uuid4().hex
        self._link = RedisLink.from_settings(settings)
        # REDIS_RETRY_DELAY doubling up to REDIS_RESTART_MAX_DELAY (or itself).
        backoff = Backoff(
            settings.redis_retry_delay,
            max(settings.redis_retry_delay, settings.redis_restart_max_delay),
        )
        self._handover = Handover(self.stats)
        history = RedisHistory(settings.event_history_size)
        self._catch_up = CatchUp(
            history, self._link, self._handover, self._deliver_from_redis, self.stats
        )
        self._processor = LocalProcessor(
            self._event_queue,
            lambda event: self._process_single_event(event),
            self._shutdown_event,
        )
        self._subscriber = Subscriber(
            self._link,
            origin,
            settings.redis_max_retries,
            settings.redis_retry_delay,
            backoff,
            self._shutdown_event,
            self.stats,
            reconnect=lambda: self._init_redis(),
            deliver=self._deliver_from_redis,
            on_subscribed=self._catch_up.after_subscribing,
            on_lost=self._catch_up.pending,
            answer_within=settings.redis_socket_timeout,
            loop_of=lambda: loop_of(self._websocket_manager),
            batch_interval=settings.event_batch_interval,
        )
        receivers = Receivers(
            settings.redis_subscriber_wait,
            settings.redis_restart_max_delay + settings.redis_retry_delay,
            self.stats,
        )
        # A bridge that only publishes keeps events for Redis in its local
        # queue, until a manager is attached (see set_websocket_manager).
        self._backlog = Backlog(self._event_queue)
        self._reconnector = Reconnector(
            self._link,
            self._backlog,
            receivers,
            backoff,
            self._shutdown_event,
            self.stats,
            reconnect=lambda: self._init_redis(),
            on_connected=self._subscribe_if_serving,
            history=history,
        )
        self._publisher = Publisher(
            self._link,
            self._backlog,
            receivers,
            self._reconnector,
            self.stats,
            origin,
            reconnect=lambda: self._init_redis(),
            keeps_for_redis=self._keeps_for_redis,
            history=history,
        )
        if connect:
            self._init_redis()

    def _init_redis(self) -> None:
        """Connect to Redis, or fall back to no client (local queue). Attempts
        are serialised; after one, the pub/sub object is made or dropped by
        its owner only (see ``Subscriber.owned_here``)."""
        with self._link.lock:
            if self._shutdown_event.is_set():
                return
            owner = self._subscriber.owned_here()
            serving = self._websocket_manager is not None
            client = self._link.connect(serving, library=REDIS_AVAILABLE)
            if owner and self._redis_wanted():
                self._subscriber.adopt(client)

    def _ensure_redis_tried(self) -> None:
        if not self._link.tried:
            self._init_redis()

    def _redis_wanted(self) -> bool:
        return REDIS_AVAILABLE and not self._link.disabled

    def _keeps_for_redis(self) -> bool:
        """Whether events Redis did not take are kept for it: not while an API
        runs embedded for want of a Redis it was not told about."""
        return self._redis_wanted() and not self._link.absent

    def set_websocket_manager(self, manager: Any) -> None:
        """Deliver events to ``manager`` from now on, starting the threads."""
        self._websocket_manager = manager
        self._publisher.serve_local_clients(
            self._event_queue, EventBuffer(self._buffer_size)
        )
        logger.info("WebSocket manager attached to the event bridge")
        # The local queue is served before Redis is tried, so events handed
        # over while the first connection attempt runs are not held up by it.
        if not is_running(self._processor_thread):
            self._start_processor_thread()
        self._ensure_redis_tried()
        if self._redis_client is not None and self._subscriber_thread is None:
            self._start_redis_subscriber()
        elif self._redis_client is None:
            # No history to wait for: resumes are answered from what is here.
            # The seed stayed embedded for good here; the reconnector
            # subscribes once Redis is reachable.
            self._handover.mark_history(current=True)
            if self._redis_wanted():
                with self._backlog.lock:
                    self._reconnector.ensure_running()

    def _subscribe_if_serving(self) -> None:
        """Start the subscriber of an API process that started without Redis."""
        if self._websocket_manager is not None and self._subscriber_thread is None:
            self._catch_up.pending()
            self._start_redis_subscriber()

    def loads_history(self) -> bool:
        """Whether resumes are to wait for the Redis history (resume_wait)."""
        return self._keeps_for_redis() and self._catch_up.history.size > 0

    def add_event(
        self,
        event_type: str,
        payload: Dict[str, Any],
        publisher_id: Optional[str] = None,
        event_id: Optional[str] = None,
        timestamp: Optional[str] = None,
    ) -> None:
        """Publish an event on Redis, or keep it until Redis can take it.
        ``publisher_id`` (the notification's, e.g. ``nova-compute:host1``),
        ``event_id`` and ``timestamp`` (given where the event entered the
        stream) travel with it when given; the seed's message
        ``{"event_type": ..., "payload": ...}`` is unchanged without them.
        Never raises: what goes wrong is logged and counted."""
        event = wire.make_event(event_type, payload, publisher_id, event_id, timestamp)
        try:
            self._ensure_redis_tried()
            self._publisher.publish(event)
        except queue.Full:
            self.stats["dropped"] += 1
            logger.warning("Local event queue full, dropping event %s", event_type)
        except Exception as e:
            self.stats["dropped"] += 1
            logger.error("Error adding event %s: %s", event_type, e)

    def publish_now(self, event: wire.Event) -> bool:
        """Publish ``event`` (see ``wire.make_event``) on Redis now; False when
        Redis cannot take it, which keeps nothing: for a publisher that keeps
        such events itself (the listener leaves them on RabbitMQ). Raises
        what encoding raises (a payload that is not JSON)."""
        self._ensure_redis_tried()
        return self._publisher.publish_now(event)

    def _start_redis_subscriber(self) -> None:
        self._subscriber.start()

    def _start_processor_thread(self) -> None:
        self._processor.start()

    def _redis_subscriber_loop(self) -> None:
        """The seed's loop: read, reconnect, give up after ``max_retries``."""
        self._subscriber.listen()

    def _deliver_from_redis(self, event: wire.Event) -> None:
        self._catch_up.delivered(event)
        if self._websocket_manager is not None:
            self._process_single_event(event)
        else:
            self._event_queue.put_nowait(event)

    def _process_single_event(self, event_data: Dict[str, Any]) -> None:
        """Hand one event to the WebSocket manager."""
        self._handover.hand_over(event_data)

    def _process_events(self) -> None:
        """Deliver locally queued events to the WebSocket manager until shutdown."""
        self._processor.run()

    def health(self) -> Dict[str, Any]:
        """What an operator needs to see an outage: state, since when, why."""
        client_ok = self._redis_client is not None
        subscriber_alive = is_running(self._subscriber_thread)
        connected = client_ok and (not subscriber_alive or self._subscriber.connected)
        counters = dict(self.stats)
        # A bridge that only publishes keeps its backlog in its local queue.
        dropped = sum(b.dropped for b in {self._event_queue, self._backlog.buffer})
        if dropped:
            counters["buffer_dropped"] = dropped
        return {
            "mode": "redis" if client_ok else "embedded",
            "redis_connected": connected,
            "subscriber_alive": subscriber_alive,
            "channel": self.channel,
            "local_queue": self._event_queue.qsize(),
            "buffered": self._backlog.size(),
            "outage": self._link.outage(),
            "counters": counters,
        }

    def shutdown(self) -> None:
        """Stop the threads and close the Redis connections; a second call
        (the API's drain at SIGTERM, then its lifespan's end) waits for the
        first. The subscriber thread is joined before its pub/sub is closed
        (closing a redis-py connection another thread reads is not safe)."""
        with self._shutdown_lock:
            if not self._shut_down:
                self._stop()
                self._shut_down = True

    def _stop(self) -> None:
        logger.info("Shutting down the event bridge")
        self._shutdown_event.set()
        join_if_running(self._subscriber_thread, timeout=5.0)
        if self._redis_subscriber is not None:
            try:
                self._redis_subscriber.close()
            except Exception as e:
                logger.error("Error closing the Redis subscriber: %s", e)
        join_if_running(self._processor_thread, timeout=5.0)
        join_if_running(self._reconnector.thread, timeout=5.0)
        unpublished = self._backlog.size() if self._keeps_for_redis() else 0
        if unpublished:
            logger.warning("%d kept events were never published to Redis", unpublished)
        self._link.close()


event_bridge = EventBridge(connect=False)
