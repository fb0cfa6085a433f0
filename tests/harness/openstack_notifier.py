"""The OpenStack side of RabbitMQ: notifications published as the services
publish them (oslo.messaging on kombu)."""

import contextlib
import json
import uuid
from typing import Any, Dict, Iterator, List, Optional, Set

from kombu import Connection, Exchange, Producer, Queue

from osism.settings import default_topic


def oslo_envelope(event_type: str, payload: Dict[str, Any], **fields: Any) -> Dict:
    """A notification in the oslo.messaging 2.0 envelope, as the services
    send it."""
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": fields.pop("publisher_id", "test.host1"),
        "event_type": event_type,
        "priority": fields.pop("priority", "INFO"),
        "payload": payload,
        "timestamp": "2026-11-25 09:00:00.000000",
        **fields,
    }
    return {"oslo.version": "2.0", "oslo.message": json.dumps(message)}


class Unrouted(Exception):
    """The broker took a notification but no queue was bound to take it."""


class Notifier:
    """Publishes notifications as an OpenStack service does (oslo.messaging
    on kombu): a topic exchange named after the service, declared before
    publishing and not durable (oslo.messaging's default), persistent JSON
    messages. With publisher confirms and ``mandatory``: ``notify`` returns
    once a queue took the message, and raises Unrouted when none did."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection = Connection(url, transport_options={"confirm_publish": True})
        self._producer: Optional[Producer] = None
        self._returned: List[Any] = []
        # Exchanges declared on the current connection (oslo.messaging, too,
        # declares an exchange once per connection).
        self._declared: Set[str] = set()

    def _channel_producer(self) -> Producer:
        if self._producer is None:
            self.connection.ensure_connection(max_retries=0)
            self._producer = Producer(
                self.connection.channel(),
                on_return=lambda *returned: self._returned.append(returned),
            )
            self._declared = set()
        return self._producer

    def declare(self, service: str) -> None:
        producer = self._channel_producer()
        if service not in self._declared:
            Exchange(service, type="topic", durable=False)(producer.channel).declare()
            self._declared.add(service)

    def notify(
        self,
        service: str,
        event_type: str,
        payload: Dict[str, Any],
        priority: str = "info",
        *,
        exchange: Optional[str] = None,
        topic: Optional[str] = None,
        publisher_id: str = "test.host1",
        message_id: Optional[str] = None,
    ) -> None:
        """Publish as ``service`` does: on ``exchange`` (the service's name
        unless given) with the routing key ``<topic>.<priority>`` (topic
        ``<service>_versioned_notifications`` unless given), under
        ``message_id`` (a new one unless given)."""
        ids = {} if message_id is None else {"message_id": message_id}
        exchange = service if exchange is None else exchange
        topic = default_topic(service) if topic is None else topic
        producer = self._channel_producer()
        self.declare(exchange)
        self._returned.clear()
        producer.publish(
            oslo_envelope(
                event_type,
                payload,
                priority=priority.upper(),
                publisher_id=publisher_id,
                **ids,
            ),
            exchange=exchange,
            routing_key=f"{topic}.{priority}",
            serializer="json",
            delivery_mode="persistent",
            mandatory=True,
        )
        if self._returned:
            raise Unrouted(
                f"{event_type} on {exchange} ({topic}.{priority}): "
                f"{self._returned[0][0]}"
            )

    def publish_raw(self, service: str, body: Any, **options: Any) -> None:
        """Publish any body (a malformed notification) on ``service``."""
        producer = self._channel_producer()
        self.declare(service)
        producer.publish(
            body,
            exchange=service,
            routing_key=f"{service}_versioned_notifications.info",
            mandatory=True,
            **options,
        )

    def queued(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those delivered and not
        yet acknowledged)."""
        producer = self._channel_producer()
        declared = Queue(queue)(producer.channel).queue_declare(passive=True)
        return int(declared.message_count)

    def delete_queues(self, names: List[str]) -> None:
        producer = self._channel_producer()
        for name in names:
            Queue(name)(producer.channel).delete()

    def reset(self) -> None:
        """Forget the connection (after the broker went away)."""
        self._producer = None
        with contextlib.suppress(Exception):
            self.connection.close()
        self.connection = Connection(
            self.url, transport_options={"confirm_publish": True}
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


@contextlib.contextmanager
def closing_notifier(url: str) -> Iterator[Notifier]:
    notifier = Notifier(url)
    try:
        yield notifier
    finally:
        notifier.close()
