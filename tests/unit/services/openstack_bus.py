"""The OpenStack side of kombu's in-memory broker, for the listener's unit
tests: the notification a service sends, and a stand-in that declares the
services' exchanges and publishes on them as oslo.messaging does."""

import json
from typing import Any, Callable, Dict, List

from kombu import Connection, Exchange, Producer, Queue
from kombu.message import Message

EVENT_TYPE = "baremetal.node.power_set.end"
PAYLOAD = {"ironic_object.data": {"name": "node1", "uuid": "abc-123"}}
PUBLISHER = "ironic-conductor.host1"
NOTIFICATION = {
    "message_id": "6b4c6a4e-1",
    "publisher_id": PUBLISHER,
    "event_type": EVENT_TYPE,
    "priority": "INFO",
    "payload": PAYLOAD,
    "timestamp": "2026-11-25 09:00:00.000000",
}


def oslo(notification: Dict[str, Any]) -> Dict[str, Any]:
    """The oslo.messaging 2.0 envelope around a notification."""
    return {"oslo.version": "2.0", "oslo.message": json.dumps(notification)}


class OpenStack:
    """The services' side of the in-memory broker: declares their exchanges
    as oslo.messaging does (topic, not durable) and publishes notifications."""

    def __init__(self) -> None:
        self.connection = Connection("memory://")
        self.channel = self.connection.channel()

    def start(self, service: str) -> None:
        Exchange(service, type="topic", durable=False)(self.channel).declare()

    def notify(
        self, service: str, body: Any, routing_key: str = "", **options: Any
    ) -> None:
        self.start(service)
        Producer(self.channel).publish(
            body,
            exchange=service,
            routing_key=routing_key or f"{service}_versioned_notifications.info",
            **options,
        )

    def later(self, service: str, body: Any, **options: Any) -> Callable[[], None]:
        """``notify`` to be called later (see ``run_until``'s ``first``)."""
        return lambda: self.notify(service, body, **options)

    def queue_message(self, queue: str, body: Any, **options: Any) -> None:
        """Put a message straight into one of the listener's queues."""
        Queue(queue)(self.channel).queue_declare()
        Producer(self.channel).publish(body, routing_key=queue, **options)

    def receive(self, queue: str) -> Message:
        """The next message of ``queue``, as the listener's consumer gets it."""
        message = Queue(queue)(self.channel).get(
            no_ack=False, accept=["application/json"]
        )
        assert message is not None, f"queue {queue} is empty"
        return message

    def queued(self, queue: str) -> int:
        return int(Queue(queue)(self.channel).queue_declare(passive=True).message_count)


# Every Tripwire ever unpickled in this process.
UNPICKLED: List[Any] = []


class Tripwire:
    """An object that says so when it is unpickled."""

    def __getstate__(self) -> Dict[str, Any]:
        return {"armed": True}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        UNPICKLED.append(state)
