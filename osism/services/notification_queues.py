"""Where the listener consumes each service's notifications: the exchange,
the topics, and the durable queue bound to every routing key of them.
"""

from typing import Dict, List, NamedTuple, Sequence

from kombu import Exchange, Queue, binding

from osism.settings import Settings

# The notification priorities the listener carries; each is a routing key
# "<topic>.<priority>". oslo.messaging lower-cases the priority into the key,
# and its warn() and warning() both send "warn". Left out: "debug" (below
# the services' default level, chatter), "audit" and "sample" (metering and
# audit records in bulk, not the resource events the stream is for).
PRIORITIES = ("info", "warn", "error", "critical")


class NotificationSource(NamedTuple):
    """Where one service's notifications are consumed from."""

    service: str
    exchange: str
    topics: Sequence[str]

    @property
    def routing_keys(self) -> List[str]:
        return [f"{topic}.{p}" for topic in self.topics for p in PRIORITIES]

    def describe(self) -> str:
        """Exchange and routing keys, short: ``exchange nova, routing keys
        versioned_notifications.{info,warn,error,critical}``."""
        priorities = "{" + ",".join(PRIORITIES) + "}"
        keys = ", ".join(f"{topic}.{priorities}" for topic in self.topics)
        return f"exchange {self.exchange}, routing keys {keys}"


def notification_sources(settings: Settings) -> Dict[str, NotificationSource]:
    """Service -> its exchange and topics, from the settings."""
    return {
        service: NotificationSource(service, exchange, settings.topics_of(service))
        for service, exchange in settings.listener_exchanges.items()
    }


def notification_queue(source: NotificationSource, prefix: str) -> Queue:
    """The listener's durable queue for one service, bound to every routing
    key of its topics on its exchange."""
    exchange = Exchange(source.exchange, type="topic", durable=False, passive=True)
    return Queue(
        f"{prefix}-{source.service}",
        durable=True,
        auto_delete=False,
        bindings=[binding(exchange, routing_key=key) for key in source.routing_keys],
    )
