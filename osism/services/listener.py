"""The listener: OpenStack notifications from RabbitMQ into the event stream.

An OpenStack service publishes its notifications through oslo.messaging on a
topic exchange, its ``control_exchange`` (``nova``, ``neutron``, ...; cinder
keeps oslo's ``openstack``), with the routing key ``<topic>.<priority>``.
Which exchange and topics the listener consumes per service is a setting
(LISTENER_EXCHANGES, LISTENER_TOPICS; by default the exchange of the
service's name and the topic ``<service>_versioned_notifications``). It
consumes them, one durable queue per service named ``<prefix>-<service>``
bound with the routing key of every topic and priority it carries, and
hands ``event_type``, ``payload`` and ``publisher_id`` of every
notification to :meth:`EventBridge.add_event`, which publishes it on Redis
for the API processes.

Delivery is at least once: a message is acknowledged only after the
hand-over, so a connection lost between the two brings it back (a
duplicate) rather than losing it. The consumer runs on kombu's
:class:`~kombu.mixins.ConsumerMixin`: kombu declares, consumes, drains and
re-establishes the connection (with back-off, trying the brokers of a
cluster in turn); this module decides what to declare, what a message
means, and when to stop.

- The listener never creates an OpenStack exchange. It declares them
  passively (an assertion that they exist): oslo.messaging declares its
  notification exchanges as topic exchanges whose durability follows the
  service's ``amqp_durable_queues`` (False by default), and an exchange the
  listener created with other attributes would make the service's own
  declaration fail. A passive declaration matches either setting.
- Its queues are its own and durable: they are declared at every connect,
  consumed at once (messages kept from before a broker restart are
  delivered even before the services are back), and bound to their exchange
  as soon as it exists. A missing exchange (NOT_FOUND) is tried again every
  LISTENER_EXCHANGE_RETRY_INTERVAL seconds.
- A malformed message is logged once with its exchange, routing key and
  first bytes, counted, and acknowledged: it can never succeed, so it is not
  requeued.
"""

import logging
import signal
import ssl
import threading
import time
from collections import Counter
from contextlib import contextmanager
from types import FrameType
from typing import Any, Dict, Iterator, List, Optional, Set, Union

from kombu import Connection
from kombu.exceptions import OperationalError
from kombu.message import Message
from kombu.mixins import ConsumerMixin
from kombu.utils.url import maybe_sanitize_url

from osism.services.bridge import wire
from osism.services.event_bridge import EventBridge
from osism.services.event_message import new_event_id, utc_now_text
from osism.services.notification_queues import (
    notification_queue,
    notification_sources,
)
from osism.services.oslo_messages import (
    MalformedNotification,
    body_excerpt,
    decode_notification,
)
from osism.services.retry import Backoff
from osism.services.safe_handover import SafeHandover
from osism.settings import Settings

logger = logging.getLogger("osism.listener")

# Unacknowledged messages the broker may send ahead: enough to keep the
# pipe full, few enough that a restart redelivers little.
PREFETCH_COUNT = 100

# Longest the consume loop waits for a message before it looks at a stop
# request and at exchanges still to bind (kombu's safety_interval): a
# signal does not cut the wait short.
DRAIN_TIMEOUT = 0.25

# The first wait before reconnecting; it doubles after each failed attempt,
# up to LISTENER_RECONNECT_MAX_DELAY.
RECONNECT_DELAY = 1.0


class ListenerStopping(Exception):
    """Raised out of the connection retries when a stop was asked for."""


def broker_tls(settings: Settings) -> Union[bool, Dict[str, Any]]:
    """The TLS options of the broker connection: with BROKER_SSL_CA_CERTS the
    brokers' certificates are verified against that CA, and each broker's
    name against its certificate (kombu fills in ``server_hostname`` per
    broker when it is None); otherwise an amqps:// URI uses the system's CAs.
    """
    if settings.broker_ssl_ca_certs is None:
        return False
    return {
        "ca_certs": settings.broker_ssl_ca_certs,
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": None,
    }


def sanitized_uris(broker_uri: str) -> List[str]:
    """The brokers of ``broker_uri`` (separated by ';'), passwords masked."""
    return [maybe_sanitize_url(uri.strip()) for uri in broker_uri.split(";")]


def _close_quietly(channel: Any) -> None:
    try:
        channel.close()
    except Exception as e:
        logger.debug("Closing a channel failed: %s", e)


class Listener(ConsumerMixin):
    """Consumes the notification queues and hands each event to the bridge.

    ``run()`` consumes until :meth:`stop`, reconnecting after a lost
    connection with ``backoff`` (by default from RECONNECT_DELAY doubling up
    to LISTENER_RECONNECT_MAX_DELAY).
    """

    def __init__(
        self, bridge: Any, settings: Settings, backoff: Optional[Backoff] = None
    ) -> None:
        self.bridge = bridge
        self.backoff = backoff or Backoff(
            RECONNECT_DELAY,
            max(RECONNECT_DELAY, settings.listener_reconnect_max_delay),
        )
        # The heartbeat makes a connection that died without a word (a
        # broker host gone, a connection reset that never arrived) fail
        # after twice its interval; the consume loop checks it whenever it
        # waits for messages.
        self.connection = Connection(
            settings.broker_uri.get_secret_value(),
            heartbeat=settings.listener_heartbeat,
            ssl=broker_tls(settings),
        )
        self.sources = notification_sources(settings)
        self.services = list(self.sources)
        self.queues = {
            service: notification_queue(source, settings.listener_queue_prefix)
            for service, source in self.sources.items()
        }
        self.exchange_retry_interval = settings.listener_exchange_retry_interval
        self.max_event_bytes = settings.max_event_bytes
        self.stats: Counter[str] = Counter()
        self.handover = SafeHandover(
            bridge,
            Backoff(
                settings.redis_retry_delay,
                max(settings.redis_retry_delay, settings.redis_restart_max_delay),
            ),
            self.stats,
        )
        # Services whose exchange the queue is not bound to yet on the
        # current connection, and when to try them again.
        self.unbound: List[str] = []
        self._next_bind_at = 0.0
        self._missing_reported: Set[str] = set()
        self._connection_in_use: Any = None
        self._connecting: Any = None
        self._stopped = threading.Event()

    # ----------------------------------------------------------------------
    # Running and stopping

    def stop(self) -> None:
        """Ask the loop to end; it does within about DRAIN_TIMEOUT seconds."""
        self.should_stop = True
        self._stopped.set()

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        """Consume until :meth:`stop`, reconnecting whenever the connection is lost.

        kombu's ``ConsumerMixin.run`` with two changes: a stop asked for
        while the broker cannot be reached ends the wait
        (``ListenerStopping``), and a lost connection is one log line rather
        than a traceback, since broker restarts are routine.
        """
        errors = self.connection.connection_errors + self.connection.channel_errors
        while not self.should_stop:
            try:
                for _ in self.consume(safety_interval=DRAIN_TIMEOUT, **kwargs):
                    pass
            except ListenerStopping:
                break
            except errors as e:
                if self.should_stop:
                    break
                self.stats["connection_lost"] += 1
                logger.warning(
                    "Lost the connection to the broker (%s: %s); reconnecting",
                    type(e).__name__,
                    e,
                )
                # What was held belongs to the lost channel: the broker
                # delivers it again on the next.
                self.handover.forget()
                # kombu's restart limit: at most one restart a second.
                self._stopped.wait(self.backoff.first)
        logger.info("Stopped consuming")

    def on_consume_end(self, connection: Any, channel: Any) -> None:
        """Stopping: what is held goes back to its queue (not acknowledged)."""
        returned = self.handover.give_back()
        if returned:
            logger.info("Returned %d held notifications to RabbitMQ", returned)

    @contextmanager
    def establish_connection(self) -> Iterator[Any]:
        """kombu's, with our back-off and a way out for :meth:`stop`.

        A connection that failed is dropped without the closing handshake
        (``collect``): kombu's ``release`` waits for the broker's Close-Ok,
        which a broker that stopped answering (the heartbeat's case) never
        sends, and the listener would hang there instead of reconnecting.
        """
        conn = self.create_connection()
        self._connecting = conn
        try:
            self._connect(conn)
            yield conn
        except conn.connection_errors:
            conn.collect()
            raise
        except BaseException:
            conn.release()
            raise
        conn.release()

    def _connect(self, conn: Any) -> None:
        """Try the brokers of the cluster in turn until one answers, waiting
        after each failed attempt as :attr:`backoff` says, or until a stop."""
        delays = self.backoff.delays()
        while True:
            try:
                conn.ensure_connection(max_retries=0)
                return
            except (OperationalError, *conn.recoverable_connection_errors) as exc:
                delay = next(delays)
                self.on_connection_error(exc, delay)
                conn.maybe_switch_next()
                if self._stopped.wait(delay):
                    raise ListenerStopping() from None

    def on_connection_error(self, exc: BaseException, interval: float) -> None:
        self.stats["connect_failed"] += 1
        logger.warning(
            "Cannot connect to the broker at %s (%s); next attempt in %g s",
            self._connecting.as_uri(),
            exc,
            interval,
        )

    # ----------------------------------------------------------------------
    # Queues, bindings, consumers

    def get_consumers(self, Consumer: Any, channel: Any) -> List[Any]:
        """Declare the queues (not the exchanges) and consume all of them.

        Only JSON is accepted: a body of another content type (pickle above
        all) is never deserialised, it counts as malformed.
        """
        for queue in self.queues.values():
            queue(channel).queue_declare()
        return [
            Consumer(
                queues=list(self.queues.values()),
                on_message=self.handle_message,
                accept=["application/json"],
                auto_declare=False,
                prefetch_count=PREFETCH_COUNT,
            )
        ]

    def on_consume_ready(
        self, connection: Any, channel: Any, consumers: Any, **kwargs: Any
    ) -> None:
        logger.info(
            "Connected to the broker at %s; consuming from %s",
            connection.as_uri(),
            ", ".join(queue.name for queue in self.queues.values()),
        )
        self._connection_in_use = connection
        self.unbound = list(self.services)
        self._missing_reported = set()
        self.bind_exchanges()

    def on_iteration(self) -> None:
        if self.unbound and time.monotonic() >= self._next_bind_at:
            self.bind_exchanges()
        self.handover.retry_when_due()

    def bind_exchanges(self) -> None:
        """Bind the queues whose exchange exists; the others are tried later."""
        for service in list(self.unbound):
            if self._bind(service):
                self.unbound.remove(service)
        self._next_bind_at = time.monotonic() + self.exchange_retry_interval

    def _bind(self, service: str) -> bool:
        """Bind ``service``'s queue to its exchange, on a channel of its own:
        a missing exchange closes the channel it was asked on (NOT_FOUND), and
        that must not be the one the consumer reads."""
        connection = self._connection_in_use
        queue = self.queues[service]
        channel = connection.channel()
        try:
            for queue_binding in queue.bindings:
                queue_binding.declare(channel)
                queue_binding.bind(queue, channel=channel)
        except connection.channel_errors as e:
            self.stats["exchange_missing"] += 1
            if service not in self._missing_reported:
                self._missing_reported.add(service)
                logger.warning(
                    "Exchange %s is not there yet (%s); trying again every %g s",
                    self.sources[service].exchange,
                    e,
                    self.exchange_retry_interval,
                )
            return False
        finally:
            _close_quietly(channel)
        self.stats["bound"] += 1
        logger.info(
            "Bound queue %s to exchange %s (routing keys %s)",
            queue.name,
            self.sources[service].exchange,
            ", ".join(self.sources[service].routing_keys),
        )
        return True

    # ----------------------------------------------------------------------
    # Messages

    def handle_message(self, message: Message) -> None:
        """Hand one notification to Redis; it is acknowledged once Redis took
        it (see :mod:`osism.services.safe_handover`). A malformed one is
        logged, counted and acknowledged: it can never succeed."""
        self.stats["received"] += 1
        delivery = message.delivery_info
        try:
            if len(message.body or b"") > self.max_event_bytes:
                raise MalformedNotification(
                    f"larger than MAX_EVENT_BYTES ({self.max_event_bytes} bytes)"
                )
            notification = decode_notification(message)
        except MalformedNotification as e:
            self.stats["malformed"] += 1
            logger.warning(
                "Skipping a malformed notification from exchange %r, routing "
                "key %r: %s; body begins %r",
                delivery.get("exchange"),
                delivery.get("routing_key"),
                e,
                body_excerpt(message),
            )
            message.ack()
            return
        # The event's id where it enters the stream: the notification's own
        # message_id (a redelivered notification keeps it, so no API process
        # sends it twice), else a new one.
        event = wire.make_event(
            notification.event_type,
            notification.payload,
            notification.publisher_id,
            notification.message_id or new_event_id(),
            utc_now_text(),
        )
        self.handover.offer(message, event)


def serve(settings: Settings, bridge: Any = None) -> Listener:
    """Run a listener until SIGTERM or SIGINT, then shut the bridge down.

    Returns the listener (its ``stats``) once it stopped.
    """
    if bridge is None:
        bridge = EventBridge()
    listener = Listener(bridge, settings)

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        logger.info("Received %s, stopping the listener", signal.Signals(signum).name)
        listener.stop()

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    logger.info(
        "Listener starting: broker %s, queues %s-<service>: %s",
        " ; ".join(sanitized_uris(settings.broker_uri.get_secret_value())),
        settings.listener_queue_prefix,
        "; ".join(
            f"{source.service} ({source.describe()})"
            for source in listener.sources.values()
        ),
    )
    try:
        listener.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        bridge.shutdown()
        logger.info(
            "Listener stopped (received %d, handed over %d, malformed %d)",
            listener.stats["received"],
            listener.stats["handed_over"],
            listener.stats["malformed"],
        )
    return listener
