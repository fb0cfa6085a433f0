"""Unit tests of osism.services.notification_queues: where each service's
notifications are consumed."""

from osism.services.notification_queues import (
    PRIORITIES,
    NotificationSource,
    notification_queue,
)

IRONIC = NotificationSource("ironic", "ironic", ["ironic_versioned_notifications"])


class TestNotificationQueue:
    def test_is_durable_and_named_prefix_dash_service(self):
        queue = notification_queue(IRONIC, "osism-events")

        assert queue.name == "osism-events-ironic"
        assert queue.durable is True
        assert queue.auto_delete is False

    def test_binds_every_priority_of_every_topic_on_the_service_exchange(self):
        cinder = NotificationSource("cinder", "openstack", ["notifications", "mine"])

        queue = notification_queue(cinder, "osism-events")

        assert queue.name == "osism-events-cinder"
        assert {(b.exchange.name, b.routing_key) for b in queue.bindings} == {
            ("openstack", "notifications.info"),
            ("openstack", "notifications.warn"),
            ("openstack", "notifications.error"),
            ("openstack", "notifications.critical"),
            ("openstack", "mine.info"),
            ("openstack", "mine.warn"),
            ("openstack", "mine.error"),
            ("openstack", "mine.critical"),
        }

    def test_the_priorities_are_those_oslo_puts_into_routing_keys_for_events(self):
        # oslo.messaging lower-cases the priority; warn() and warning() both
        # send "warn". debug, audit and sample are left out on purpose.
        assert PRIORITIES == ("info", "warn", "error", "critical")

    def test_asserts_the_topic_exchange_exists_and_never_creates_it(self):
        queue = notification_queue(IRONIC, "osism-events")

        for queue_binding in queue.bindings:
            assert queue_binding.exchange.type == "topic"
            assert queue_binding.exchange.passive is True


class TestDescribe:
    def test_names_the_exchange_and_the_routing_keys_of_every_topic(self):
        cinder = NotificationSource("cinder", "openstack", ["notifications", "mine"])

        assert cinder.describe() == (
            "exchange openstack, routing keys "
            "notifications.{info,warn,error,critical}, "
            "mine.{info,warn,error,critical}"
        )
