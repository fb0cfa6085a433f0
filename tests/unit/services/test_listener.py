"""Unit tests of osism.services.listener on kombu's in-memory transport: no
broker, no thread. ``Listener.run`` runs on the test's thread and is ended
through ``stop()`` from its own loop (see ``run_until``)."""

import json
import logging
import os
import signal
import ssl
import time
import uuid
from typing import Any, Callable, Dict, List
from unittest.mock import MagicMock

import pytest
from kombu import Connection
from kombu.exceptions import ConnectionError as AmqpConnectionError
from kombu.message import Message
from kombu.transport import memory

from osism.services import listener as listener_module
from osism.services.listener import (
    PREFETCH_COUNT,
    Listener,
    sanitized_uris,
    serve,
)
from osism.services.notification_queues import NotificationSource
from osism.services.retry import Backoff
from osism.settings import LISTENER_EXCHANGES, Settings
from tests.unit.services.openstack_bus import (
    EVENT_TYPE,
    NOTIFICATION,
    PAYLOAD,
    PUBLISHER,
    Tripwire,
    UNPICKLED,
    oslo,
)

pytestmark = pytest.mark.usefixtures("memory_broker")

LOGGER = "osism.listener"
PREFIX = "test-events"
INFO_KEY = "ironic_versioned_notifications.info"
ERROR_KEY = "ironic_versioned_notifications.error"
IRONIC_KEYS = (
    "ironic_versioned_notifications.info, ironic_versioned_notifications.warn, "
    "ironic_versioned_notifications.error, ironic_versioned_notifications.critical"
)
MISSING = "Channel.exchange_declare: (404) NOT_FOUND - no exchange '{}' in vhost '/'"


def notification(event_type: str = EVENT_TYPE, **payload: Any) -> Dict[str, Any]:
    return {**NOTIFICATION, "event_type": event_type, "payload": payload or PAYLOAD}


def log(level: int, message: str):
    return (LOGGER, level, message)


def settings(**overrides: Any) -> Settings:
    values: Dict[str, Any] = {
        "broker_uri": "memory://",
        "listener_exchanges": ["ironic", "nova"],
        "listener_queue_prefix": PREFIX,
        # Long: a test that wants a retry asks for a short interval.
        "listener_exchange_retry_interval": 60.0,
        "listener_reconnect_max_delay": 3.0,
    }
    values.update(overrides)
    return Settings(**values)


def counted(listener: Listener, name: str, count: int) -> Callable[[], bool]:
    """Whether the listener's counter ``name`` reached ``count``."""
    return lambda: listener.stats[name] == count


def run_until(
    listener: Listener,
    condition: Callable[[], Any],
    timeout: float = 3.0,
    first: Callable[[], Any] = lambda: None,
) -> None:
    """Run the listener on this thread until ``condition()`` holds; fail if it
    does not within ``timeout`` seconds.

    ``first()`` runs once the listener consumes and has bound its queues to
    the exchanges that exist (a message published before that reaches no
    queue, as on RabbitMQ).
    """
    deadline = time.monotonic() + timeout
    on_iteration = listener.on_iteration
    started: List[Any] = []

    def check() -> None:
        on_iteration()
        if not started:
            started.append(first())
        if condition() or time.monotonic() >= deadline:
            listener.stop()

    listener.on_iteration = check  # type: ignore[method-assign]
    listener.run()
    assert condition(), f"not reached within {timeout:g} s: {listener.stats}"


# Reconnecting waits a millisecond, so tests of failing connections run at once.
QUICK = Backoff(0.001, 0.001)


@pytest.fixture(autouse=True)
def quick_loop(monkeypatch):
    """The loop looks at stop requests every 10 ms."""
    monkeypatch.setattr(listener_module, "DRAIN_TIMEOUT", 0.01)


@pytest.fixture
def event_bridge() -> MagicMock:
    """What the listener sees of the event bridge: Redis takes every event."""
    bridge = MagicMock(name="EventBridge", spec=["publish_now", "shutdown"])
    bridge.publish_now.return_value = True
    return bridge


@pytest.fixture
def make_listener(event_bridge) -> Callable[..., Listener]:
    return lambda **overrides: Listener(event_bridge, settings(**overrides), QUICK)


def handed_over(event_bridge: MagicMock) -> List[Any]:
    """The events published, without their timestamps (the time each entered
    the stream)."""
    events = []
    for published in event_bridge.publish_now.call_args_list:
        (event,) = published.args
        assert event.pop("timestamp").endswith("Z")
        events.append(event)
    return events


def event(event_type: str = EVENT_TYPE, payload: Any = PAYLOAD, **keys: Any) -> Any:
    """How a notification of NOTIFICATION's publisher is handed over: with its
    publisher and its message_id as the event's id."""
    keys = {"publisher_id": PUBLISHER, "id": NOTIFICATION["message_id"], **keys}
    return {
        "event_type": event_type,
        "payload": payload,
        **{key: value for key, value in keys.items() if value is not None},
    }


class TestListenerSettings:
    def test_one_queue_per_configured_exchange(self, make_listener):
        listener = make_listener(listener_exchanges=["ironic", "glance"])

        assert listener.services == ["ironic", "glance"]
        assert [queue.name for queue in listener.queues.values()] == [
            "test-events-ironic",
            "test-events-glance",
        ]
        assert listener.sources["glance"] == NotificationSource(
            "glance", "glance", ["glance_versioned_notifications"]
        )

    def test_defaults_are_the_six_services_and_the_osism_events_prefix(
        self, event_bridge, monkeypatch
    ):
        for name in ("LISTENER_EXCHANGES", "LISTENER_QUEUE_PREFIX", "BROKER_URI"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("LISTENER_HEARTBEAT", raising=False)

        for name in ("LISTENER_TOPICS",):
            monkeypatch.delenv(name, raising=False)

        listener = Listener(event_bridge, Settings())

        assert listener.services == LISTENER_EXCHANGES
        # Today's default: each service's own exchange and versioned topic.
        assert all(
            source == (service, service, [f"{service}_versioned_notifications"])
            for service, source in listener.sources.items()
        )
        assert LISTENER_EXCHANGES == [
            "ironic",
            "nova",
            "neutron",
            "cinder",
            "keystone",
            "glance",
        ]
        assert listener.queues["keystone"].name == "osism-events-keystone"
        assert listener.connection.as_uri() == "amqp://openstack:**@rabbitmq:5672//"
        assert listener.connection.heartbeat == 60.0

    def test_settings_come_from_the_environment(self, event_bridge, monkeypatch):
        monkeypatch.setenv("BROKER_URI", "memory://host-a;memory://host-b")
        monkeypatch.setenv("LISTENER_EXCHANGES", " nova, ironic,,nova ")
        monkeypatch.setenv("LISTENER_QUEUE_PREFIX", "mine")
        monkeypatch.setenv("LISTENER_HEARTBEAT", "10")
        monkeypatch.delenv("LISTENER_TOPICS", raising=False)

        listener = Listener(event_bridge, Settings())

        assert listener.services == ["nova", "ironic"]
        assert listener.queues["nova"].name == "mine-nova"
        assert listener.connection.heartbeat == 10.0
        assert listener.connection.alt == ["memory://host-a", "memory://host-b"]

    def test_an_empty_exchange_list_is_refused(self, monkeypatch):
        monkeypatch.setenv("LISTENER_EXCHANGES", " , ")

        with pytest.raises(ValueError, match="listener_exchanges"):
            Settings()

    def test_passwords_are_masked_in_broker_uris(self):
        assert sanitized_uris("amqp://u:secret@a:5672/;amqp://u:secret@b:5672/") == [
            "amqp://u:**@a:5672/",
            "amqp://u:**@b:5672/",
        ]

    def test_the_broker_connection_uses_tls_as_configured(self, make_listener):
        assert make_listener().connection.ssl is False
        verified = make_listener(broker_ssl_ca_certs="/etc/osism/ca.pem")

        assert verified.connection.ssl == {
            "ca_certs": "/etc/osism/ca.pem",
            "cert_reqs": ssl.CERT_REQUIRED,
            "server_hostname": None,
        }


class TestConsumers:
    def test_every_queue_is_declared_and_consumed_with_a_prefetch_window(
        self, make_listener, openstack
    ):
        listener = make_listener()
        ready: List[Any] = []
        listener.on_consume_ready = (
            lambda connection, channel, consumers, **kwargs: ready.append(consumers)
        )

        run_until(listener, lambda: ready)

        (consumer,) = ready[0]
        assert [queue.name for queue in consumer.queues] == [
            "test-events-ironic",
            "test-events-nova",
        ]
        assert consumer.prefetch_count == PREFETCH_COUNT
        assert consumer.accept == {"application/json"}
        # Declared on the broker: the services' side finds them.
        assert openstack.queued("test-events-ironic") == 0
        assert openstack.queued("test-events-nova") == 0


# --------------------------------------------------------------------------
# --------------------------------------------------------------------------
# Messages


class TestHandingOver:
    def test_notifications_reach_the_bridge_in_order(
        self, make_listener, event_bridge, openstack
    ):
        openstack.start("ironic")
        listener = make_listener()

        def publish() -> None:
            openstack.notify("ironic", oslo(notification("baremetal.node.a")))
            openstack.notify("ironic", notification("baremetal.node.b"))
            openstack.notify(
                "ironic", oslo(notification("baremetal.node.c")), routing_key=ERROR_KEY
            )

        run_until(listener, counted(listener, "handed_over", 3), first=publish)

        assert handed_over(event_bridge) == [
            event("baremetal.node.a"),
            event("baremetal.node.b"),
            event("baremetal.node.c"),
        ]
        assert listener.stats["received"] == 3

    def test_a_message_is_acknowledged_only_after_the_hand_over(
        self, make_listener, event_bridge, openstack
    ):
        openstack.start("ironic")
        listener = make_listener()
        messages: List[Message] = []
        handle = listener.handle_message

        def keep(message: Message) -> None:
            messages.append(message)
            handle(message)

        listener.handle_message = keep
        acknowledged_at_hand_over = []

        def publish_now(event: Any) -> bool:
            acknowledged_at_hand_over.append(messages[-1].acknowledged)
            return True

        event_bridge.publish_now.side_effect = publish_now

        run_until(
            listener,
            counted(listener, "handed_over", 1),
            first=openstack.later("ironic", oslo(NOTIFICATION)),
        )

        assert acknowledged_at_hand_over == [False]
        assert messages[0].acknowledged

    def test_notifications_of_other_routing_keys_and_exchanges_are_not_consumed(
        self, make_listener, event_bridge, openstack
    ):
        openstack.start("ironic")
        listener = make_listener()

        def publish() -> None:
            openstack.notify(
                "ironic", oslo(notification("other.key")), "notifications.info"
            )
            openstack.notify("glance", oslo(notification("image.update")))
            openstack.notify("ironic", oslo(NOTIFICATION))

        run_until(listener, counted(listener, "handed_over", 1), first=publish)

        assert handed_over(event_bridge) == [event()]
        assert listener.stats["received"] == 1

    def test_a_notification_without_publisher_is_handed_over_without_it(
        self, make_listener, event_bridge, openstack
    ):
        anonymous = {k: v for k, v in NOTIFICATION.items() if k != "publisher_id"}
        openstack.queue_message("test-events-ironic", oslo(anonymous))
        openstack.queue_message(
            "test-events-ironic", {**NOTIFICATION, "publisher_id": ""}
        )
        listener = make_listener()

        run_until(listener, counted(listener, "handed_over", 2))

        assert handed_over(event_bridge) == 2 * [event(publisher_id=None)]

    def test_without_a_message_id_the_event_gets_an_id_of_its_own(
        self, make_listener, event_bridge, openstack
    ):
        anonymous = {k: v for k, v in NOTIFICATION.items() if k != "message_id"}
        for _ in range(2):
            openstack.queue_message("test-events-ironic", oslo(anonymous))
        listener = make_listener()

        run_until(listener, counted(listener, "handed_over", 2))

        first, second = [e.pop("id") for e in handed_over(event_bridge)]
        assert str(uuid.UUID(first, version=4)) == first
        assert first != second

    def test_a_notification_over_the_size_bound_is_malformed(
        self, make_listener, event_bridge, openstack, listener_logs
    ):
        openstack.queue_message("test-events-ironic", oslo(NOTIFICATION))
        listener = make_listener(max_event_bytes=100)

        run_until(listener, counted(listener, "malformed", 1))

        event_bridge.publish_now.assert_not_called()
        assert any(
            "larger than MAX_EVENT_BYTES (100 bytes)" in line[2]
            for line in listener_logs()
        )

    def test_a_notification_of_exactly_the_size_bound_is_handed_over(
        self, make_listener, event_bridge, openstack
    ):
        openstack.queue_message("test-events-ironic", oslo(NOTIFICATION))
        message = openstack.receive("test-events-ironic")
        listener = make_listener(max_event_bytes=len(message.body))

        listener.handle_message(message)

        assert listener.stats["malformed"] == 0
        assert handed_over(event_bridge) == [event()]
        assert message.acknowledged


class TestTopics:
    """LISTENER_EXCHANGES and LISTENER_TOPICS on the in-memory broker: each
    service is consumed from its exchange and topics, in one form only."""

    SETTINGS = {
        "listener_exchanges": "ironic,nova,neutron,cinder=openstack",
        "listener_topics": (
            "nova=versioned_notifications;neutron=notifications;" "cinder=notifications"
        ),
    }

    def test_stock_topics_are_consumed_and_nothing_else(
        self, make_listener, event_bridge, openstack
    ):
        for exchange in ("ironic", "nova", "neutron", "openstack", "cinder"):
            openstack.start(exchange)
        listener = make_listener(**self.SETTINGS)

        def publish() -> None:
            # Consumed: each service's configured form, any carried priority.
            openstack.notify(
                "nova",
                oslo(notification("instance.power_off.end")),
                "versioned_notifications.info",
            )
            openstack.notify(
                "neutron", oslo(notification("port.create.end")), "notifications.error"
            )
            openstack.notify(
                "openstack",
                oslo(notification("volume.create.end")),
                "notifications.warn",
            )
            openstack.notify("ironic", oslo(notification("baremetal.node.a")), INFO_KEY)
            # Not consumed: nova's other form, the default topic of a service
            # that has its own, cinder on an exchange that is not its, and
            # priorities the listener leaves out.
            openstack.notify(
                "nova",
                oslo(notification("compute.instance.power_off.end")),
                "notifications.info",
            )
            openstack.notify(
                "nova",
                oslo(notification("nova.x")),
                "nova_versioned_notifications.info",
            )
            openstack.notify(
                "cinder", oslo(notification("volume.x")), "notifications.info"
            )
            for priority in ("debug", "audit", "sample"):
                openstack.notify(
                    "neutron", oslo(notification("x")), f"notifications.{priority}"
                )
            openstack.notify(
                "neutron",
                oslo(notification("network.create.end")),
                "notifications.critical",
            )

        run_until(listener, counted(listener, "handed_over", 5), first=publish)

        assert sorted(e["event_type"] for e in handed_over(event_bridge)) == [
            "baremetal.node.a",
            "instance.power_off.end",
            "network.create.end",
            "port.create.end",
            "volume.create.end",
        ]
        assert listener.stats["received"] == 5

    def test_bound_lines_name_the_exchange_and_every_routing_key(
        self, make_listener, openstack, listener_logs
    ):
        openstack.start("openstack")
        listener = make_listener(**self.SETTINGS)

        run_until(listener, lambda: listener.stats["bound"] == 1)

        bound = [r for r in listener_logs() if r[2].startswith("Bound")]
        assert bound == [
            log(
                logging.INFO,
                "Bound queue test-events-cinder to exchange openstack (routing keys "
                "notifications.info, notifications.warn, notifications.error, "
                "notifications.critical)",
            )
        ]
        missing = [r[2] for r in listener_logs() if "is not there yet" in r[2]]
        assert missing == [
            f"Exchange {name} is not there yet ({MISSING.format(name)}); trying "
            "again every 60 s"
            for name in ("ironic", "nova", "neutron")
        ]


class TestMalformedMessages:
    def test_logged_once_with_exchange_routing_key_and_first_bytes_then_acknowledged(
        self, make_listener, event_bridge, openstack, listener_logs
    ):
        openstack.start("ironic")
        listener = make_listener()
        bad = {"oslo.version": "2.0", "oslo.message": "{bad"}

        def publish() -> None:
            openstack.notify("ironic", bad, routing_key=ERROR_KEY)
            openstack.notify("ironic", oslo(NOTIFICATION))

        run_until(listener, counted(listener, "handed_over", 1), first=publish)

        assert handed_over(event_bridge) == [event()]
        assert listener.stats["malformed"] == 1
        assert listener.stats["received"] == 2
        malformed = [r for r in listener_logs() if "malformed" in r[2]]
        assert malformed == [
            log(
                logging.WARNING,
                "Skipping a malformed notification from exchange 'ironic', routing "
                f"key '{ERROR_KEY}': 'oslo.message' is not JSON: Expecting property "
                "name enclosed in double quotes: line 1 column 2 (char 1); body "
                f"begins {json.dumps(bad).encode()!r}",
            )
        ]

    def test_only_the_first_200_bytes_of_the_body_are_logged(
        self, make_listener, openstack, listener_logs
    ):
        openstack.start("ironic")
        listener = make_listener()

        run_until(
            listener,
            counted(listener, "malformed", 1),
            first=openstack.later("ironic", "x" * 1000, content_type="text/plain"),
        )

        (line,) = [r[2] for r in listener_logs() if "malformed" in r[2]]
        assert line.endswith(f"; body begins {b'x' * 200!r}")

    def test_a_pickled_message_is_never_deserialised(
        self, make_listener, event_bridge, openstack
    ):
        openstack.start("ironic")
        listener = make_listener()
        UNPICKLED.clear()

        run_until(
            listener,
            counted(listener, "malformed", 1),
            first=openstack.later("ironic", Tripwire(), serializer="pickle"),
        )

        assert UNPICKLED == []
        event_bridge.publish_now.assert_not_called()

    def test_every_one_is_counted(self, make_listener, openstack):
        listener = make_listener()
        for body in (["not", "a", "notification"], {"oslo.version": "2.0"}):
            openstack.queue_message("test-events-ironic", body)
            listener.handle_message(openstack.receive("test-events-ironic"))

        assert listener.stats["malformed"] == 2
        assert listener.stats["received"] == 2

    def test_is_acknowledged_and_not_requeued(self, make_listener, openstack):
        listener = make_listener()
        openstack.queue_message("test-events-ironic", ["not", "a", "notification"])
        message = openstack.receive("test-events-ironic")

        listener.handle_message(message)

        assert message.acknowledged
        assert message._state == "ACK"
        assert openstack.queued("test-events-ironic") == 0


class TestRedisCannotTakeEvents:
    """Acknowledged only what Redis took; held, in order, meanwhile."""

    def test_a_notification_redis_refuses_is_held_unacknowledged(
        self, make_listener, event_bridge, openstack, listener_logs
    ):
        event_bridge.publish_now.return_value = False
        openstack.queue_message("test-events-ironic", oslo(NOTIFICATION))
        message = openstack.receive("test-events-ironic")
        listener = make_listener()

        listener.handle_message(message)

        assert not message.acknowledged
        assert listener.handover.held == 1
        assert listener.stats["handed_over"] == 0
        assert listener_logs() == [
            log(
                logging.WARNING,
                "Redis cannot take events: holding 1 notifications "
                "unacknowledged, RabbitMQ keeps the rest until Redis is back",
            )
        ]

    def test_held_notifications_go_out_in_order_once_redis_is_back(
        self, make_listener, event_bridge, openstack, listener_logs
    ):
        openstack.start("ironic")
        refusing = [True]
        event_bridge.publish_now.side_effect = lambda event: not refusing[0]
        listener = make_listener()

        def publish() -> None:
            for name in ("baremetal.node.a", "baremetal.node.b"):
                openstack.notify("ironic", oslo(notification(name)))

        def back_once_both_are_held() -> bool:
            if listener.handover.held == 2:
                refusing[0] = False
            return listener.stats["handed_over"] == 2

        run_until(listener, back_once_both_are_held, first=publish)

        published = [
            c.args[0]["event_type"] for c in event_bridge.publish_now.call_args_list
        ]
        assert published[-2:] == ["baremetal.node.a", "baremetal.node.b"]
        assert openstack.queued("test-events-ironic") == 0
        assert (
            log(
                logging.INFO,
                "Redis takes events again: published 2 held notifications",
            )
            in listener_logs()
        )

    def test_held_notifications_go_back_to_the_broker_at_the_stop(
        self, make_listener, event_bridge, openstack, listener_logs
    ):
        openstack.start("ironic")
        event_bridge.publish_now.return_value = False
        listener = make_listener()

        run_until(
            listener,
            lambda: listener.stats["held"] == 1,
            first=openstack.later("ironic", oslo(NOTIFICATION)),
        )

        assert listener.handover.held == 0
        assert (
            log(logging.INFO, "Returned 1 held notifications to RabbitMQ")
            in listener_logs()
        )
        assert openstack.queued("test-events-ironic") == 1

    def test_a_notification_that_can_never_be_published_is_rejected(
        self, make_listener, event_bridge, openstack, listener_logs
    ):
        event_bridge.publish_now.side_effect = TypeError("not JSON serializable")
        openstack.queue_message("test-events-ironic", oslo(NOTIFICATION))
        message = openstack.receive("test-events-ironic")
        listener = make_listener()

        listener.handle_message(message)

        assert message._state == "REJECTED"
        assert listener.stats["unpublishable"] == 1
        assert listener_logs()[-1] == log(
            logging.ERROR,
            f"Dropping notification {EVENT_TYPE!r}, it cannot be published: "
            "TypeError('not JSON serializable')",
        )


# --------------------------------------------------------------------------
# Exchanges


class TestBindingExchanges:
    def test_queues_of_existing_exchanges_are_bound_at_connect(
        self, make_listener, event_bridge, openstack, listener_logs
    ):
        openstack.start("ironic")
        openstack.start("nova")
        listener = make_listener()

        run_until(
            listener,
            counted(listener, "handed_over", 1),
            first=openstack.later(
                "nova", oslo(notification("compute.instance.update"))
            ),
        )

        assert listener.unbound == []
        assert listener.stats["bound"] == 2
        assert listener.stats["exchange_missing"] == 0
        lines = listener_logs()
        assert lines[:3] == [
            log(
                logging.INFO,
                "Connected to the broker at memory://:**@localhost//; consuming "
                "from test-events-ironic, test-events-nova",
            ),
            log(
                logging.INFO,
                "Bound queue test-events-ironic to exchange ironic (routing keys "
                f"{IRONIC_KEYS})",
            ),
            log(
                logging.INFO,
                "Bound queue test-events-nova to exchange nova (routing keys "
                "nova_versioned_notifications.info, "
                "nova_versioned_notifications.warn, "
                "nova_versioned_notifications.error, "
                "nova_versioned_notifications.critical)",
            ),
        ]

    def test_a_missing_exchange_is_reported_once_and_bound_once_it_appears(
        self, make_listener, event_bridge, openstack, listener_logs
    ):
        listener = make_listener(
            listener_exchanges=["ironic"], listener_exchange_retry_interval=0.01
        )

        published: List[Any] = []

        def service_starts_after_three_attempts() -> bool:
            if listener.stats["exchange_missing"] == 3:
                openstack.start("ironic")
            if not listener.unbound and not published:
                published.append(openstack.notify("ironic", oslo(NOTIFICATION)))
            return listener.stats["handed_over"] == 1

        run_until(listener, service_starts_after_three_attempts)

        assert listener.stats["exchange_missing"] == 3
        assert listener.stats["bound"] == 1
        warnings = [r for r in listener_logs() if r[1] == logging.WARNING]
        assert warnings == [
            log(
                logging.WARNING,
                f"Exchange ironic is not there yet ({MISSING.format('ironic')}); "
                "trying again every 0.01 s",
            )
        ]

    def test_a_missing_exchange_is_not_tried_again_before_the_interval(
        self, make_listener, openstack
    ):
        openstack.start("nova")
        listener = make_listener(listener_exchange_retry_interval=60.0)
        iterations = 0

        def twenty_iterations() -> bool:
            nonlocal iterations
            iterations += 1
            return iterations >= 20

        run_until(listener, twenty_iterations)

        assert listener.unbound == ["ironic"]
        assert listener.stats["exchange_missing"] == 1

    def test_kept_messages_are_consumed_while_the_exchange_is_missing(
        self, make_listener, event_bridge, openstack
    ):
        # Left in the durable queue from before, e.g. a broker restart that
        # the service has not come back from yet.
        openstack.queue_message("test-events-ironic", oslo(NOTIFICATION))
        listener = make_listener()

        run_until(listener, counted(listener, "handed_over", 1))

        assert handed_over(event_bridge) == [event()]
        assert listener.unbound == ["ironic", "nova"]

    def test_a_channel_that_fails_to_close_is_only_logged_at_debug(self, listener_logs):
        channel = MagicMock()
        channel.close.side_effect = OSError("socket closed")

        listener_module._close_quietly(channel)

        assert listener_logs() == [
            log(logging.DEBUG, "Closing a channel failed: socket closed")
        ]


# --------------------------------------------------------------------------
# Connections


@pytest.fixture
def failing_connects(mocker) -> Callable[[int], None]:
    """Make the next ``n`` connection attempts to the in-memory broker fail
    as a refused connection does."""

    def fail(n: int) -> None:
        establish = memory.Transport.establish_connection
        failures = [n]

        def establish_connection(transport: Any) -> Any:
            if failures[0]:
                failures[0] -= 1
                raise AmqpConnectionError("connection refused")
            return establish(transport)

        mocker.patch.object(
            memory.Transport,
            "establish_connection",
            autospec=True,
            side_effect=establish_connection,
        )

    return fail


def lose_connection(mocker, times: int = 1) -> None:
    """The first ``times`` waits for messages find the connection reset."""
    drain = Connection.drain_events
    lost = [True] * times

    def drain_events(connection: Connection, **kwargs: Any) -> Any:
        if lost.pop() if lost else False:
            raise AmqpConnectionError("connection reset by peer")
        return drain(connection, **kwargs)

    mocker.patch.object(
        Connection, "drain_events", autospec=True, side_effect=drain_events
    )


class TestReconnecting:
    def test_a_lost_connection_is_one_warning_and_consuming_resumes(
        self, make_listener, event_bridge, openstack, mocker, listener_logs
    ):
        openstack.start("ironic")
        openstack.start("nova")
        lose_connection(mocker)
        listener = make_listener()

        run_until(
            listener,
            counted(listener, "handed_over", 1),
            first=openstack.later("ironic", oslo(NOTIFICATION)),
        )

        assert listener.stats["connection_lost"] == 1
        # Connected twice, and bound again after the reconnect.
        assert listener.stats["bound"] == 4
        warnings = [r for r in listener_logs() if r[1] == logging.WARNING]
        assert warnings == [
            log(
                logging.WARNING,
                "Lost the connection to the broker (ConnectionError: connection "
                "reset by peer); reconnecting",
            )
        ]
        connected = [r for r in listener_logs() if "Connected to" in r[2]]
        assert len(connected) == 2

    def test_every_lost_connection_is_counted_and_said(
        self, make_listener, openstack, mocker, listener_logs
    ):
        lose_connection(mocker, times=2)
        listener = make_listener()

        run_until(listener, counted(listener, "connection_lost", 2))

        lost = [r for r in listener_logs() if "Lost the connection" in r[2]]
        assert len(lost) == 2

    def test_a_lost_connection_is_dropped_without_the_closing_handshake(
        self, make_listener, openstack, mocker
    ):
        """kombu's release would wait for a Close-Ok that a broker which
        stopped answering never sends."""
        lose_connection(mocker)
        collect = mocker.spy(Connection, "collect")
        release = mocker.spy(Connection, "release")
        listener = make_listener()

        run_until(listener, counted(listener, "connection_lost", 1))

        # The lost connection is collected, the one in use at the stop is
        # closed properly.
        assert collect.call_count == 1
        assert release.call_count == 1
        assert collect.call_args.args[0] is not release.call_args.args[0]

    def test_the_broker_is_tried_again_with_back_off_until_it_answers(
        self, event_bridge, openstack, failing_connects, listener_logs
    ):
        failing_connects(3)
        listener = Listener(event_bridge, settings(), Backoff(0.001, 0.004))

        run_until(listener, lambda: listener.stats["bound"] == 0 and listener.unbound)

        assert listener.stats["connect_failed"] == 3
        failed = [r for r in listener_logs() if "Cannot connect" in r[2]]
        assert failed == [
            log(
                logging.WARNING,
                "Cannot connect to the broker at memory://:**@localhost// "
                f"(connection refused); next attempt in {delay} s",
            )
            for delay in ("0.001", "0.002", "0.004")
        ]

    def test_the_back_off_runs_from_one_second_to_the_settings_cap(self, event_bridge):
        listener = Listener(event_bridge, settings(listener_reconnect_max_delay=7.0))

        assert (listener.backoff.first, listener.backoff.cap) == (1.0, 7.0)

    def test_the_brokers_of_a_cluster_are_tried_in_turn(
        self, make_listener, failing_connects, listener_logs
    ):
        failing_connects(1)
        listener = make_listener(broker_uri="memory://host-a;memory://host-b")

        run_until(listener, lambda: listener.unbound)

        lines = [r[2] for r in listener_logs()]
        assert lines[0] == (
            "Cannot connect to the broker at memory://:**@host-a// "
            "(connection refused); next attempt in 0.001 s"
        )
        assert lines[1].startswith(
            "Connected to the broker at memory://:**@host-b//; consuming from"
        )

    def test_a_stop_while_the_broker_cannot_be_reached_ends_run(
        self, make_listener, failing_connects, listener_logs
    ):
        failing_connects(1000)
        listener = make_listener()
        on_connection_error = listener.on_connection_error

        def stop_after_three(exc: BaseException, interval: float) -> None:
            on_connection_error(exc, interval)
            if listener.stats["connect_failed"] == 3:
                listener.stop()

        listener.on_connection_error = stop_after_three

        listener.run()

        assert listener.stats["connect_failed"] == 3
        assert listener_logs()[-1] == log(logging.INFO, "Stopped consuming")

    def test_a_connection_lost_while_stopping_is_not_reconnected(
        self, make_listener, openstack, mocker, listener_logs
    ):
        listener = make_listener()

        def stop_and_lose_connection(connection: Connection, **kwargs: Any) -> None:
            listener.stop()
            raise AmqpConnectionError("connection closed")

        mocker.patch.object(
            Connection,
            "drain_events",
            autospec=True,
            side_effect=stop_and_lose_connection,
        )

        listener.run()

        assert listener.stats["connection_lost"] == 0
        assert not [r for r in listener_logs() if "Lost the connection" in r[2]]
        assert listener_logs()[-1] == log(logging.INFO, "Stopped consuming")


# --------------------------------------------------------------------------
# Running as a service


@pytest.fixture
def previous_handlers():
    """Handlers of SIGTERM and SIGINT that record signals, so that a listener
    that failed to install its own cannot end the test run; the originals
    come back afterwards."""
    received: List[int] = []

    def record(signum: int, frame: Any) -> None:
        received.append(signum)

    originals = {
        sig: signal.signal(sig, record) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield record, received
    finally:
        for sig, handler in originals.items():
            signal.signal(sig, handler)


class TestServe:
    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_a_signal_stops_the_listener_and_shuts_the_bridge_down(
        self, sig, event_bridge, openstack, mocker, previous_handlers, listener_logs
    ):
        record, received = previous_handlers
        openstack.start("ironic")
        signalled: List[int] = []

        def handed_over_then_signal(listener: Listener) -> None:
            if listener.stats["received"] == 0 and not signalled:
                openstack.notify("ironic", oslo(NOTIFICATION))
            if listener.stats["handed_over"] == 1 and not signalled:
                signalled.append(sig)
                os.kill(os.getpid(), sig)

        mocker.patch.object(
            Listener,
            "on_iteration",
            autospec=True,
            side_effect=handed_over_then_signal,
        )

        listener = serve(settings(), bridge=event_bridge)

        assert received == []
        assert signalled == [sig]
        event_bridge.shutdown.assert_called_once_with()
        assert signal.getsignal(signal.SIGTERM) is record
        assert signal.getsignal(signal.SIGINT) is record
        assert listener.stats["handed_over"] == 1
        lines = listener_logs()
        assert lines[0] == log(
            logging.INFO,
            "Listener starting: broker memory:///, queues test-events-<service>: "
            "ironic (exchange ironic, routing keys "
            "ironic_versioned_notifications.{info,warn,error,critical}); "
            "nova (exchange nova, routing keys "
            "nova_versioned_notifications.{info,warn,error,critical})",
        )
        assert lines[-3:] == [
            log(logging.INFO, f"Received {sig.name}, stopping the listener"),
            log(logging.INFO, "Stopped consuming"),
            log(
                logging.INFO,
                "Listener stopped (received 1, handed over 1, malformed 0)",
            ),
        ]

    def test_the_bridge_is_shut_down_when_consuming_fails(
        self, event_bridge, mocker, previous_handlers
    ):
        record, received = previous_handlers
        mocker.patch.object(Listener, "run", side_effect=RuntimeError("bug"))

        with pytest.raises(RuntimeError, match="bug"):
            serve(settings(), bridge=event_bridge)

        event_bridge.shutdown.assert_called_once_with()
        assert signal.getsignal(signal.SIGTERM) is record

    def test_the_last_line_sums_up_what_was_received(
        self, event_bridge, mocker, previous_handlers, listener_logs
    ):
        def consumed(listener: Listener) -> None:
            listener.stats.update(received=5, handed_over=3, malformed=2)

        mocker.patch.object(Listener, "run", autospec=True, side_effect=consumed)

        serve(settings(), bridge=event_bridge)

        assert listener_logs()[-1] == log(
            logging.INFO, "Listener stopped (received 5, handed over 3, malformed 2)"
        )

    def test_passwords_of_the_brokers_are_not_logged(
        self, event_bridge, mocker, previous_handlers, listener_logs
    ):
        mocker.patch.object(Listener, "run")

        serve(
            settings(broker_uri="amqp://u:secret@a:5672/;amqp://u:secret@b:5672/"),
            bridge=event_bridge,
        )

        assert listener_logs()[0][2].startswith(
            "Listener starting: broker amqp://u:**@a:5672/ ; amqp://u:**@b:5672/, "
        )
        assert not [r for r in listener_logs() if "secret" in r[2]]

    def test_by_default_an_event_bridge_is_made_from_the_settings(
        self, mocker, monkeypatch, previous_handlers
    ):
        monkeypatch.setenv("BROKER_URI", "memory://")
        monkeypatch.setenv("LISTENER_EXCHANGES", "cinder=openstack")
        monkeypatch.setenv("LISTENER_TOPICS", "cinder=notifications,mine")
        bridge_cls = mocker.patch.object(listener_module, "EventBridge")
        mocker.patch.object(Listener, "run")

        listener = serve(Settings())

        bridge_cls.assert_called_once_with()
        assert listener.bridge is bridge_cls.return_value
        assert listener.sources == {
            "cinder": ("cinder", "openstack", ["notifications", "mine"])
        }
        bridge_cls.return_value.shutdown.assert_called_once_with()
