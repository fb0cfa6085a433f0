"""Bridge between the process that receives OpenStack notifications and the
process that streams them to WebSocket clients.

The publishing side (the listener) calls :meth:`EventBridge.add_event`, which
publishes ``{"event_type": ..., "payload": ...}`` on the Redis channel
``osism:events``. The API side calls :meth:`EventBridge.set_websocket_manager`,
which starts a subscriber thread for that channel and a processor thread for
the local queue; both hand every event to the WebSocket manager's event loop
with ``call_soon_threadsafe``. Without Redis, events go to the local queue and
reach only this process's WebSocket clients.
"""

import asyncio
import json
import logging
import queue
import threading
from collections import Counter
from typing import Any, Dict, Optional

from osism.settings import get_settings

logger = logging.getLogger("osism.event_bridge")

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    REDIS_AVAILABLE = True
except ImportError:  # pragma: no cover - redis is a runtime dependency
    REDIS_AVAILABLE = False

REDIS_CHANNEL = "osism:events"


def _invalid_event_reason(event_data: Any) -> Optional[str]:
    """Why a decoded Redis message is not an event, or None if it is one."""
    if not isinstance(event_data, dict):
        return f"expected a JSON object, got {type(event_data).__name__}"
    if not isinstance(event_data.get("event_type"), str):
        return "missing or non-string 'event_type'"
    if not isinstance(event_data.get("payload"), dict):
        return "missing or non-object 'payload'"
    return None


class EventBridge:
    def __init__(self, connect: bool = True) -> None:
        """Create a bridge; with ``connect=False`` Redis is first tried on first
        use (``add_event`` or ``set_websocket_manager``), which is how the
        module-level singleton stays free of network I/O at import time."""
        self._event_queue: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self._websocket_manager: Any = None
        self._processor_thread: Optional[threading.Thread] = None
        self._subscriber_thread: Optional[threading.Thread] = None
        self._shutdown_event = threading.Event()
        self._redis_client: Any = None
        self._redis_subscriber: Any = None
        self._redis_tried = False
        self._redis_lock = threading.RLock()
        self.channel = REDIS_CHANNEL
        self.max_retries = 5
        self.retry_delay = 5.0
        self.stats: Counter[str] = Counter()
        if connect:
            self._init_redis()

    def _init_redis(self) -> None:
        """Connect to Redis, or fall back to no client (local queue).

        Fix of the seed: the client becomes visible to other threads only
        after its ping succeeded, and attempts are serialised. Otherwise an
        add_event racing the API's start-up attempt publishes through a
        half-made client and waits out the failed connect itself.
        """
        with self._redis_lock:
            self._redis_tried = True
            if not REDIS_AVAILABLE:
                logger.warning(
                    "Redis library not available, using the local event queue"
                )
                return
            try:
                settings = get_settings()
                self.channel = settings.redis_channel
                client = redis.Redis(
                    host=settings.redis_host,
                    port=settings.redis_port,
                    db=settings.redis_db,
                    decode_responses=True,
                    socket_connect_timeout=10,
                    socket_timeout=None,
                    health_check_interval=30,
                )
                # The bridge owns reconnecting. redis-py's own retries (ten,
                # with back-off, in redis-py 8) made one failed attempt take
                # seconds: a slow fallback to the local queue and a shutdown
                # stalled while Redis is down.
                client.set_retry(Retry(NoBackoff(), 0))
                client.ping()
                self._redis_subscriber = client.pubsub()
                self._redis_client = client
                logger.info(
                    "Connected to Redis at %s:%s/%s",
                    settings.redis_host,
                    settings.redis_port,
                    settings.redis_db,
                )
            except Exception as e:
                logger.error("Failed to connect to Redis: %s", e)
                self._redis_client = None
                self._redis_subscriber = None

    def _ensure_redis_tried(self) -> None:
        if not self._redis_tried:
            self._init_redis()

    def set_websocket_manager(self, manager: Any) -> None:
        """Deliver events to ``manager`` from now on, starting the threads."""
        self._websocket_manager = manager
        logger.info("WebSocket manager attached to the event bridge")
        # The local queue is served before Redis is tried, so events handed
        # over while the first connection attempt runs are not held up by it.
        if self._processor_thread is None or not self._processor_thread.is_alive():
            self._start_processor_thread()
        self._ensure_redis_tried()
        if self._redis_client is not None and self._subscriber_thread is None:
            self._start_redis_subscriber()

    def add_event(self, event_type: str, payload: Dict[str, Any]) -> None:
        """Publish an event on Redis, or queue it locally without Redis.

        Never raises: what goes wrong is logged and counted.
        """
        try:
            self._ensure_redis_tried()
            event_data = {"event_type": event_type, "payload": payload}
            if self._redis_client is not None:
                # Serialised outside the publish retry: a payload that is not
                # JSON is the caller's error, not a reason to reconnect.
                message = json.dumps(event_data)
                if self._publish(event_type, message):
                    return
            self._event_queue.put_nowait(event_data)
            self.stats["queued_locally"] += 1
            logger.debug("Queued event %s locally", event_type)
        except queue.Full:
            self.stats["dropped"] += 1
            logger.warning("Local event queue full, dropping event %s", event_type)
        except Exception as e:
            self.stats["dropped"] += 1
            logger.error("Error adding event %s: %s", event_type, e)

    def _publish(self, event_type: str, message: str) -> bool:
        """Publish once, and once more after reconnecting; True if published."""
        try:
            receivers = self._redis_client.publish(self.channel, message)
        except Exception as e:
            logger.error("Failed to publish event %s to Redis: %s", event_type, e)
            self._init_redis()
            if self._redis_client is None:
                return False
            try:
                self._redis_client.publish(self.channel, message)
            except Exception as retry_error:
                logger.error(
                    "Failed to publish event %s to Redis after reconnect: %s",
                    event_type,
                    retry_error,
                )
                return False
            self.stats["published"] += 1
            logger.info("Published event %s to Redis after reconnect", event_type)
            return True
        self.stats["published"] += 1
        if receivers > 0:
            logger.info(
                "Published event %s to Redis (%d subscribers)", event_type, receivers
            )
        else:
            logger.warning(
                "No Redis subscribers received event %s (is the API running?)",
                event_type,
            )
        return True

    def _start_redis_subscriber(self) -> None:
        self._subscriber_thread = threading.Thread(
            target=self._redis_subscriber_loop,
            name="osism-event-bridge-subscriber",
            daemon=True,
        )
        self._subscriber_thread.start()

    def _start_processor_thread(self) -> None:
        self._processor_thread = threading.Thread(
            target=self._process_events,
            name="osism-event-bridge-processor",
            daemon=True,
        )
        self._processor_thread.start()

    def _redis_subscriber_loop(self) -> None:
        """Read the Redis channel until shutdown, reconnecting on errors.

        Gives up after ``max_retries`` consecutive failures.
        """
        if self._redis_subscriber is None:
            logger.error("Redis subscriber not initialised, not subscribing")
            return
        retry_count = 0
        try:
            self._redis_subscriber.subscribe(self.channel)
            logger.info("Subscribed to Redis channel %s", self.channel)
            while not self._shutdown_event.is_set():
                try:
                    while not self._shutdown_event.is_set():
                        message = self._redis_subscriber.get_message(timeout=1.0)
                        retry_count = 0
                        if message is not None and message["type"] == "message":
                            self._handle_redis_message(message["data"])
                except Exception as e:
                    if self._shutdown_event.is_set():
                        # shutdown() closing the connection under us; not an
                        # outage, so no reconnect.
                        break
                    retry_count += 1
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
                    self._shutdown_event.wait(self.retry_delay)
                    self._init_redis()
                    if self._redis_subscriber is not None:
                        self._redis_subscriber.subscribe(self.channel)
        finally:
            if self._redis_subscriber is not None:
                try:
                    self._redis_subscriber.close()
                except Exception as e:
                    logger.debug("Closing the Redis subscriber failed: %s", e)
            logger.info("Redis subscriber stopped")

    def _handle_redis_message(self, data: str) -> None:
        try:
            event_data = json.loads(data)
            reason = _invalid_event_reason(event_data)
            if reason is not None:
                self.stats["invalid"] += 1
                logger.error("Skipping Redis message that is not an event: %s", reason)
            elif self._websocket_manager is not None:
                self._process_single_event(event_data)
            else:
                self._event_queue.put_nowait(event_data)
        except json.JSONDecodeError as e:
            self.stats["invalid"] += 1
            logger.error("Failed to decode Redis message as JSON: %s", e)
        except Exception as e:
            self.stats["dropped"] += 1
            logger.error("Error processing Redis event: %s", e)

    def _process_single_event(self, event_data: Dict[str, Any]) -> None:
        """Hand one event to the WebSocket manager.

        Fix of the seed's design: when the manager has recorded the loop its
        broadcaster runs on, the event is scheduled onto that loop with
        call_soon_threadsafe and this thread moves on at once; a fresh private
        loop per event, as the seed did, would touch the manager's asyncio
        queue from this thread while the broadcaster's loop uses it. The
        private loop remains only for a manager that has no loop yet.
        """
        manager = self._websocket_manager
        if manager is None:
            self.stats["dropped"] += 1
            logger.warning("No WebSocket manager available, dropping event")
            return
        try:
            event_type = event_data["event_type"]
            payload = event_data["payload"]
            loop = getattr(manager, "loop", None)
            if isinstance(loop, asyncio.AbstractEventLoop):
                loop.call_soon_threadsafe(
                    manager.enqueue_notification, event_type, payload
                )
                return
            private_loop = asyncio.new_event_loop()
            try:
                private_loop.run_until_complete(
                    manager.broadcast_event_from_notification(event_type, payload)
                )
            finally:
                private_loop.close()
        except Exception as e:
            self.stats["dropped"] += 1
            logger.error("Error handing an event to the WebSocket manager: %r", e)

    def _process_events(self) -> None:
        """Deliver locally queued events to the WebSocket manager until shutdown."""
        logger.info("Event processor started")
        while not self._shutdown_event.is_set():
            try:
                event_data = self._event_queue.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                self._process_single_event(event_data)
            except Exception as e:
                logger.error("Error processing queued event: %s", e)
            finally:
                self._event_queue.task_done()
        logger.info("Event processor stopped")

    def health(self) -> Dict[str, Any]:
        connected = self._redis_client is not None
        subscriber = self._subscriber_thread
        return {
            "mode": "redis" if connected else "embedded",
            "redis_connected": connected,
            "subscriber_alive": subscriber is not None and subscriber.is_alive(),
            "channel": self.channel,
            "local_queue": self._event_queue.qsize(),
            "counters": dict(self.stats),
        }

    def shutdown(self) -> None:
        """Stop both threads and close the Redis connection.

        The subscriber thread is joined before its pub/sub is closed: closing
        a redis-py connection while another thread reads it is not safe. The
        close afterwards (a no-op if the thread closed it) covers a thread
        that did not finish in time.
        """
        logger.info("Shutting down the event bridge")
        self._shutdown_event.set()
        if self._subscriber_thread is not None and self._subscriber_thread.is_alive():
            self._subscriber_thread.join(timeout=5.0)
        if self._redis_subscriber is not None:
            try:
                self._redis_subscriber.close()
            except Exception as e:
                logger.error("Error closing the Redis subscriber: %s", e)
        if self._processor_thread is not None and self._processor_thread.is_alive():
            self._processor_thread.join(timeout=5.0)


event_bridge = EventBridge(connect=False)
