"""Bridge between the process that receives OpenStack notifications and the
process that streams them to WebSocket clients.

The publishing side (the listener) calls :meth:`EventBridge.add_event`, which
publishes ``{"event_type": ..., "payload": ...}`` on the Redis channel
``osism:events``. The API side calls :meth:`EventBridge.set_websocket_manager`,
which starts a subscriber thread for that channel and a processor thread for
the local queue; both hand every event to the WebSocket manager's event loop
with ``call_soon_threadsafe``. Without Redis, events go to the local queue and
reach only this process's WebSocket clients.

Redis outages (fixes of the seed, which stopped the stream for good):

- Events that cannot be published are kept, in order, in a bounded buffer
  (REDIS_BUFFER_SIZE; the oldest are dropped beyond it, counted) and a
  reconnector thread publishes them once Redis is back. While it holds
  events, new ones queue behind them, so order is kept.
- An event that Redis took but no subscriber received (the API's subscriber
  is reconnecting, or the API restarts) is kept the same way, for up to
  REDIS_SUBSCRIBER_WAIT seconds of nobody subscribing.
- The seed's subscriber loop still gives up after ``max_retries`` failures;
  a supervisor restarts it after a cool-down that doubles up to
  REDIS_RESTART_MAX_DELAY, so the stream never stops for good.
- One Redis client serves the bridge for its whole life (redis-py reconnects
  its pooled connections by itself). Only the subscriber thread, or a caller
  when no subscriber thread runs, ever replaces the pub/sub object.
"""

import asyncio
import json
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Tuple

from osism.services.event_buffer import EventBuffer
from osism.services.loop_handoff import LoopHandoff
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

# How often the reconnector offers a kept event again while Redis is up but
# nobody subscribes.
SUBSCRIBER_POLL_INTERVAL = 0.1

# Key that marks an event this bridge has already delivered to its own
# WebSocket clients (published after an outage, for the other API
# processes); its own subscriber skips it.
ORIGIN_KEY = "origin"


def _invalid_event_reason(event_data: Any) -> Optional[str]:
    """Why a decoded Redis message is not an event, or None if it is one."""
    if not isinstance(event_data, dict):
        return f"expected a JSON object, got {type(event_data).__name__}"
    if not isinstance(event_data.get("event_type"), str):
        return "missing or non-string 'event_type'"
    if not isinstance(event_data.get("payload"), dict):
        return "missing or non-object 'payload'"
    return None


def _utc_text(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


class EventBridge:
    def __init__(self, connect: bool = True) -> None:
        """Create a bridge; with ``connect=False`` Redis is first tried on first
        use (``add_event`` or ``set_websocket_manager``), which is how the
        module-level singleton stays free of network I/O at import time."""
        settings = get_settings()
        self._event_queue: EventBuffer[Dict[str, Any]] = EventBuffer(
            settings.redis_buffer_size
        )
        # Events for the other API processes, kept while Redis cannot take
        # them (only used once a WebSocket manager is attached).
        self._pending: EventBuffer[Dict[str, Any]] = EventBuffer(
            settings.redis_buffer_size
        )
        self._websocket_manager: Any = None
        self._processor_thread: Optional[threading.Thread] = None
        self._subscriber_thread: Optional[threading.Thread] = None
        self._reconnector_thread: Optional[threading.Thread] = None
        self._shutdown_event = threading.Event()
        self._client: Any = None
        self._redis_client: Any = None
        self._redis_subscriber: Any = None
        self._redis_tried = False
        # REDIS_HOST="" turns Redis off: embedded by choice, not an outage.
        self._redis_disabled = False
        self._redis_lock = threading.RLock()
        self._publish_lock = threading.RLock()
        self._subscriber_connected = False
        self._outage_since: Optional[float] = None
        self._last_error: Optional[str] = None
        self._nobody_since: Optional[float] = None
        # How many subscribers received the last event that anybody received,
        # and since when a flush waits for that many to be back.
        self._receivers_seen = 0
        self._waiting_since: Optional[float] = None
        # Drops of the backlog already logged (see _warn_once_about_drops).
        self._drops_reported = 0
        self._drop_warned = False
        self._origin = uuid.uuid4().hex
        self._handoff: "Optional[LoopHandoff[Tuple[str, Dict[str, Any]]]]" = None
        self.channel = REDIS_CHANNEL
        self.max_retries = settings.redis_max_retries
        self.retry_delay = settings.redis_retry_delay
        self.restart_max_delay = settings.redis_restart_max_delay
        self.subscriber_wait = settings.redis_subscriber_wait
        self.stats: Counter[str] = Counter()
        if connect:
            self._init_redis()

    def _init_redis(self) -> None:
        """Connect to Redis, or fall back to no client (local queue).

        Fixes of the seed: the client becomes visible to other threads only
        after its ping succeeded, and attempts are serialised, so an add_event
        racing the API's start-up attempt cannot publish through a half-made
        client. The client is made once and then only pinged again (its pool
        reconnects), so reconnecting leaks no connection. The pub/sub object
        is replaced only by its owner (see :meth:`_owns_subscriber`).
        """
        with self._redis_lock:
            if self._shutdown_event.is_set():
                return
            self._redis_tried = True
            if not REDIS_AVAILABLE:
                logger.warning(
                    "Redis library not available, using the local event queue"
                )
                return
            settings = get_settings()
            self.channel = settings.redis_channel
            if not settings.redis_host:
                self._redis_disabled = True
                logger.info(
                    "Redis is disabled (REDIS_HOST is empty): events reach only "
                    "this process's WebSocket clients"
                )
                return
            owner = self._owns_subscriber()
            try:
                client = self._client
                if client is None:
                    client = self._make_client(settings)
                client.ping()
            except Exception as e:
                logger.error("Failed to connect to Redis: %s", e)
                self._redis_client = None
                if owner:
                    self._drop_subscriber()
                self._note_outage(e)
                return
            if owner and self._redis_subscriber is None:
                self._redis_subscriber = client.pubsub()
            self._redis_client = client
            if self._outage_since is not None:
                logger.info(
                    "Redis is back after %.1f s", time.time() - self._outage_since
                )
                self._outage_since = None
            logger.info(
                "Connected to Redis at %s:%s/%s",
                settings.redis_host,
                settings.redis_port,
                settings.redis_db,
            )

    def _make_client(self, settings: Any) -> Any:
        client = redis.Redis(
            host=settings.redis_host,
            port=settings.redis_port,
            db=settings.redis_db,
            decode_responses=True,
            socket_connect_timeout=10,
            socket_timeout=None,
            health_check_interval=30,
        )
        # The bridge owns reconnecting. redis-py's own retries (ten, with
        # back-off, in redis-py 8) made one failed attempt take seconds: a
        # slow fallback to the local queue and a shutdown stalled while Redis
        # is down.
        client.set_retry(Retry(NoBackoff(), 0))
        # The seed's socket_timeout=None lets a command to a Redis that
        # stopped answering block for ever; the pool's connections get a
        # bound instead (the seed's constructor arguments stay as they were).
        client.connection_pool.connection_kwargs["socket_timeout"] = (
            settings.redis_socket_timeout
        )
        self._client = client
        return client

    def _owns_subscriber(self) -> bool:
        """True in the subscriber thread, or anywhere while none is running."""
        thread = self._subscriber_thread
        return (
            thread is None
            or thread is threading.current_thread()
            or not thread.is_alive()
        )

    def _drop_subscriber(self) -> None:
        subscriber, self._redis_subscriber = self._redis_subscriber, None
        if subscriber is not None:
            try:
                subscriber.close()
            except Exception as e:
                logger.debug("Closing the Redis subscriber failed: %s", e)

    def _note_outage(self, error: BaseException) -> None:
        self._last_error = str(error) or type(error).__name__
        if self._outage_since is None:
            self._outage_since = time.time()

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
        elif self._redis_wanted() and self._redis_client is None:
            # The seed stayed embedded for good here; the reconnector
            # subscribes once Redis is reachable.
            with self._publish_lock:
                self._ensure_reconnector()

    def add_event(
        self,
        event_type: str,
        payload: Dict[str, Any],
        publisher_id: Optional[str] = None,
    ) -> None:
        """Publish an event on Redis, or keep it until Redis can take it.

        ``publisher_id`` (who sent the notification) travels with the event
        when given. Never raises: what goes wrong is logged and counted.
        """
        try:
            self._ensure_redis_tried()
            event_data: Dict[str, Any] = {"event_type": event_type, "payload": payload}
            if publisher_id is not None:
                event_data["publisher_id"] = publisher_id
            with self._publish_lock:
                if self._redis_client is not None and self._backlog().empty():
                    # Serialised outside the publish retry: a payload that is
                    # not JSON is the caller's error, not a reason to reconnect.
                    message = json.dumps(event_data)
                    receivers = self._publish(event_type, message)
                    if receivers is not None and not self._keeps_unreceived(receivers):
                        return
                self._keep(event_data)
        except queue.Full:
            self.stats["dropped"] += 1
            logger.warning("Local event queue full, dropping event %s", event_type)
        except Exception as e:
            self.stats["dropped"] += 1
            logger.error("Error adding event %s: %s", event_type, e)

    def _publish(self, event_type: str, message: str) -> Optional[int]:
        """Publish once, and once more after reconnecting.

        Returns how many subscribers received the event, or None when it
        could not be published.
        """
        try:
            receivers = int(self._redis_client.publish(self.channel, message))
        except Exception as e:
            logger.error("Failed to publish event %s to Redis: %s", event_type, e)
            self._note_outage(e)
            self._init_redis()
            if self._redis_client is None:
                return None
            try:
                receivers = int(self._redis_client.publish(self.channel, message))
            except Exception as retry_error:
                logger.error(
                    "Failed to publish event %s to Redis after reconnect: %s",
                    event_type,
                    retry_error,
                )
                self._note_outage(retry_error)
                self._redis_client = None
                return None
            self.stats["published"] += 1
            logger.info("Published event %s to Redis after reconnect", event_type)
            return receivers
        self.stats["published"] += 1
        if receivers > 0:
            logger.info(
                "Published event %s to Redis (%d subscribers)", event_type, receivers
            )
        elif self._nobody_since is None:
            logger.warning(
                "No Redis subscribers received event %s (is the API running?)",
                event_type,
            )
        return receivers

    def _keeps_unreceived(self, receivers: int) -> bool:
        """Whether an event no subscriber received is kept to be offered again.

        It is, until nobody has subscribed for ``subscriber_wait`` seconds:
        that covers an API whose subscriber is reconnecting or restarting.
        After that, events go to nobody as in the seed, counted.
        """
        if receivers > 0:
            self._nobody_since = None
            self._receivers_seen = receivers
            return False
        now = time.monotonic()
        if self._nobody_since is None:
            self._nobody_since = now
        if now - self._nobody_since < self.subscriber_wait:
            return True
        self.stats["unreceived"] += 1
        return False

    def _backlog(self) -> "EventBuffer[Dict[str, Any]]":
        """Where events wait for Redis.

        Without a WebSocket manager (the listener) nobody reads the local
        queue, where the seed puts them: it is the backlog. In the API
        process the local queue feeds the local clients, and events wait for
        Redis in a buffer of their own.
        """
        if self._websocket_manager is None:
            return self._event_queue
        return self._pending

    def _keep(self, event_data: Dict[str, Any]) -> None:
        """Keep an event Redis did not deliver; publish it when Redis can.

        In the API process, local clients get it now from the local queue
        (its own subscriber did not receive it either: Redis was down, or
        took it for nobody) and the other API processes once Redis can take
        it; it carries this bridge's origin then, so its own subscriber skips
        it. Delivering locally at once also keeps the local order: nothing
        waits for the own subscriber.
        """
        wanted = self._redis_wanted()
        if wanted and self._websocket_manager is not None:
            self._pending.put_nowait({**event_data, ORIGIN_KEY: self._origin})
            self.stats["kept_for_redis"] += 1
        self._event_queue.put_nowait(event_data)
        self.stats["queued_locally"] += 1
        logger.debug("Queued event %s locally", event_data["event_type"])
        if wanted:
            self._warn_once_about_drops()
            self._ensure_reconnector()

    def _warn_once_about_drops(self) -> None:
        backlog = self._backlog()
        if backlog.dropped > self._drops_reported and not self._drop_warned:
            self._drop_warned = True
            logger.warning(
                "The Redis buffer is full (%d events): dropping the oldest until "
                "Redis takes them (REDIS_BUFFER_SIZE)",
                backlog.maxsize,
            )

    def _redis_wanted(self) -> bool:
        return REDIS_AVAILABLE and not self._redis_disabled

    def _ensure_reconnector(self) -> None:
        """Start the reconnector unless it runs; call with the publish lock."""
        thread = self._reconnector_thread
        if thread is None or not thread.is_alive():
            self._start_reconnector()

    def _start_reconnector(self) -> None:
        self._reconnector_thread = threading.Thread(
            target=self._reconnect_loop,
            name="osism-event-bridge-reconnector",
            daemon=True,
        )
        self._reconnector_thread.start()

    def _reconnect_loop(self) -> None:
        """Reconnect with a capped back-off and publish the kept events.

        Ends when nothing is kept any more (checked under the publish lock,
        so an event kept at that moment starts a new reconnector), or on
        shutdown.
        """
        delay = self.retry_delay
        while not self._shutdown_event.is_set():
            if self._redis_client is None:
                if self._shutdown_event.wait(delay):
                    break
                delay = min(delay * 2, self.restart_max_delay)
                self.stats["reconnects"] += 1
                self._init_redis()
                if self._redis_client is None:
                    continue
                delay = self.retry_delay
                self._subscribe_if_serving()
            if self._flush():
                break
            if self._redis_client is not None:
                self._shutdown_event.wait(SUBSCRIBER_POLL_INTERVAL)
        logger.debug("Reconnector stopped")

    def _subscribe_if_serving(self) -> None:
        """Start the subscriber of an API process that started without Redis."""
        if self._websocket_manager is not None and self._subscriber_thread is None:
            self._start_redis_subscriber()

    def _flush(self) -> bool:
        """Publish kept events in order; True once none is left.

        Stops early (False) when Redis fails, or when an event reaches no
        subscriber and is to be offered again later.
        """
        backlog = self._backlog()
        published = 0
        if not backlog.empty() and not self._subscribers_back():
            return False
        while not self._shutdown_event.is_set():
            with self._publish_lock:
                if backlog.empty():
                    self._reconnector_thread = None
                    if published:
                        logger.info("Published %d kept events to Redis", published)
                    self._report_drops(backlog)
                    return True
                client = self._redis_client
                if client is None:
                    return False
                event_data = backlog.get_nowait()
                backlog.task_done()
                try:
                    receivers = int(
                        client.publish(self.channel, json.dumps(event_data))
                    )
                except Exception as e:
                    backlog.requeue(event_data)
                    logger.error("Failed to publish kept events to Redis: %s", e)
                    self._note_outage(e)
                    self._redis_client = None
                    return False
                if self._keeps_unreceived(receivers):
                    backlog.requeue(event_data)
                    return False
                self.stats["published"] += 1
                published += 1
        return False

    def _subscribers_back(self) -> bool:
        """Whether the subscribers are back to take kept events.

        After an outage the API processes resubscribe one by one; publishing
        kept events as soon as the first is back would lose them for the
        others. When this bridge knows how many received its last event, it
        waits for that many (at most ``subscriber_wait`` seconds); when it
        does not (an API process that had not published), it waits until
        every subscriber has had its chance to reconnect: the longest
        reconnect delay, ``restart_max_delay``, plus one ``retry_delay``.
        """
        client = self._redis_client
        if client is None:
            return True
        expected = self._receivers_seen
        try:
            listening = int(client.pubsub_numsub(self.channel)[0][1])
        except Exception as e:
            logger.debug("Counting the Redis subscribers failed: %s", e)
            return True
        if expected and listening >= expected:
            self._waiting_since = None
            return True
        now = time.monotonic()
        if expected:
            limit = self.subscriber_wait
        else:
            limit = self.restart_max_delay + self.retry_delay
        if self._waiting_since is None:
            self._waiting_since = now
            logger.info(
                "Waiting up to %g s for the Redis subscribers (%d of %s back) "
                "before publishing kept events",
                limit,
                listening,
                expected or "unknown",
            )
        if now - self._waiting_since < limit:
            return False
        self._waiting_since = None
        self._receivers_seen = listening
        return True

    def _report_drops(self, backlog: "EventBuffer[Dict[str, Any]]") -> None:
        dropped = backlog.dropped - self._drops_reported
        if dropped:
            logger.warning(
                "%d events were dropped while Redis could not take them "
                "(the buffer holds %d)",
                dropped,
                backlog.maxsize,
            )
        self._drops_reported = backlog.dropped
        self._drop_warned = False

    def _start_redis_subscriber(self) -> None:
        self._subscriber_thread = threading.Thread(
            target=self._supervise_subscriber,
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

    def _supervise_subscriber(self) -> None:
        """Run the subscriber loop until shutdown, restarting it when it ends.

        The seed's loop gives up after ``max_retries`` failed reconnects; here
        it is started again after a cool-down that doubles from
        ``retry_delay`` up to ``restart_max_delay`` (back to the start once a
        run got subscribed), so an outage of any length ends the same way.
        """
        delay = self.retry_delay
        while not self._shutdown_event.is_set():
            self._subscriber_connected = False
            try:
                self._redis_subscriber_loop()
            except Exception as e:
                self.stats["redis_errors"] += 1
                self._note_outage(e)
                logger.error("Redis subscriber failed: %s", e)
            if self._shutdown_event.is_set():
                break
            if self._subscriber_connected:
                delay = self.retry_delay
            self._subscriber_connected = False
            self.stats["subscriber_restarts"] += 1
            logger.warning("Restarting the Redis subscriber in %g s", delay)
            if self._shutdown_event.wait(delay):
                break
            delay = min(delay * 2, self.restart_max_delay)
            self._init_redis()

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
            self._subscriber_connected = True
            logger.info("Subscribed to Redis channel %s", self.channel)
            while not self._shutdown_event.is_set():
                try:
                    while not self._shutdown_event.is_set():
                        subscriber = self._redis_subscriber
                        if subscriber is None:
                            raise ConnectionError("not connected to Redis")
                        message = subscriber.get_message(timeout=1.0)
                        retry_count = 0
                        self._subscriber_connected = True
                        if message is not None and message["type"] == "message":
                            self._handle_redis_message(message["data"])
                except Exception as e:
                    if self._shutdown_event.is_set():
                        # shutdown() closing the connection under us; not an
                        # outage, so no reconnect.
                        break
                    retry_count += 1
                    self._subscriber_connected = False
                    self._note_outage(e)
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
                    self._resubscribe()
        finally:
            if self._redis_subscriber is not None:
                try:
                    self._redis_subscriber.close()
                except Exception as e:
                    logger.debug("Closing the Redis subscriber failed: %s", e)
            logger.info("Redis subscriber stopped")

    def _resubscribe(self) -> None:
        """Subscribe again after a reconnect; a failure counts as the next error."""
        if self._redis_subscriber is None:
            return
        try:
            self._redis_subscriber.subscribe(self.channel)
        except Exception as e:
            logger.debug("Subscribing again failed: %s", e)
            return
        self._subscriber_connected = True
        logger.info("Subscribed to Redis channel %s again", self.channel)

    def _handle_redis_message(self, data: str) -> None:
        try:
            event_data = json.loads(data)
            reason = _invalid_event_reason(event_data)
            if reason is not None:
                self.stats["invalid"] += 1
                logger.error("Skipping Redis message that is not an event: %s", reason)
            elif event_data.get(ORIGIN_KEY) == self._origin:
                self.stats["own_skipped"] += 1
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
        broadcaster runs on, the event is handed to that loop (in batches, see
        :mod:`osism.services.loop_handoff`) and this thread moves on at once;
        a fresh private loop per event, as the seed did, would touch the
        manager's asyncio queue from this thread while the broadcaster's loop
        uses it. The private loop remains only for a manager that has no loop
        yet.
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
                self._handoff_to(manager, loop).submit((event_type, payload))
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

    def _handoff_to(
        self, manager: Any, loop: asyncio.AbstractEventLoop
    ) -> "LoopHandoff[Tuple[str, Dict[str, Any]]]":
        handoff = self._handoff
        if handoff is None or handoff.loop is not loop or handoff.owner is not manager:
            handoff = self._handoff = LoopHandoff(
                loop, lambda event: manager.enqueue_notification(*event), manager
            )
        return handoff

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
        """What an operator needs to see an outage: state, since when, why."""
        client_ok = self._redis_client is not None
        subscriber = self._subscriber_thread
        subscriber_alive = subscriber is not None and subscriber.is_alive()
        connected = client_ok and (not subscriber_alive or self._subscriber_connected)
        since = self._outage_since
        counters = dict(self.stats)
        dropped = self._event_queue.dropped + self._pending.dropped
        if dropped:
            counters["buffer_dropped"] = dropped
        return {
            "mode": "redis" if client_ok else "embedded",
            "redis_connected": connected,
            "subscriber_alive": subscriber_alive,
            "channel": self.channel,
            "local_queue": self._event_queue.qsize(),
            "buffered": self._backlog().qsize(),
            "outage": (
                None
                if since is None
                else {"since": _utc_text(since), "error": self._last_error}
            ),
            "counters": counters,
        }

    def shutdown(self) -> None:
        """Stop the threads and close the Redis connections.

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
        reconnector = self._reconnector_thread
        if reconnector is not None and reconnector.is_alive():
            reconnector.join(timeout=5.0)
        unpublished = self._backlog().qsize() if self._redis_wanted() else 0
        if unpublished:
            logger.warning(
                "%d kept events were never published to Redis",
                unpublished,
            )
        if self._client is not None:
            try:
                self._client.close()
            except Exception as e:
                logger.debug("Closing the Redis client failed: %s", e)


event_bridge = EventBridge(connect=False)
