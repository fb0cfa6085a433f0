"""What a notification message on RabbitMQ says, read the way oslo.messaging
writes it: the event type, the payload and who published it.

A message is the oslo.messaging 2.0 envelope (``{"oslo.version": "2.0",
"oslo.message": "<json>"}``) around the notification, or the notification
itself. Anything else is a :class:`MalformedNotification` with the reason.
"""

import json
from typing import Any, Dict, NamedTuple, Optional

from kombu.message import Message

# Longest publisher id or message id taken (a UUID is 36 characters).
MAX_FIELD_LENGTH = 255

# How much of a malformed message's body is logged.
BODY_EXCERPT_BYTES = 200


class MalformedNotification(ValueError):
    """A message that is not an OpenStack notification; the reason says why."""


class Notification(NamedTuple):
    """What the listener hands to the event bridge of one notification."""

    event_type: str
    payload: Dict[str, Any]
    # Who sent it ("nova-compute:compute1", "network.ctrl1"); None when the
    # message has none or it is not a non-empty string.
    publisher_id: Optional[str] = None
    # oslo.messaging's id of the notification (a UUID), the same when the
    # broker delivers it again; None when it has none usable.
    message_id: Optional[str] = None


def parse_notification(body: Any) -> Notification:
    """``event_type``, ``payload`` and ``publisher_id`` of a decoded message
    body.

    Takes the oslo.messaging envelope (``{"oslo.version": "2.0",
    "oslo.message": "<json>"}``) as well as an unwrapped notification. A
    missing or unusable ``publisher_id`` is no reason to drop the event.
    """
    if not isinstance(body, dict):
        raise MalformedNotification(
            f"expected a JSON object, got {type(body).__name__}"
        )
    if "oslo.message" in body:
        inner = body["oslo.message"]
        if not isinstance(inner, str):
            raise MalformedNotification("'oslo.message' is not a string")
        try:
            body = json.loads(inner)
        except ValueError as e:
            raise MalformedNotification(f"'oslo.message' is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise MalformedNotification(
                f"'oslo.message' is not a JSON object but {type(body).__name__}"
            )
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedNotification("missing or empty 'event_type'")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise MalformedNotification("missing or non-object 'payload'")
    return Notification(
        event_type,
        payload,
        _text(body.get("publisher_id")),
        _text(body.get("message_id")),
    )


def _text(value: Any) -> Optional[str]:
    """A field that is no reason to drop the notification when unusable."""
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD_LENGTH:
        return None
    return value


def decode_notification(message: Message) -> Notification:
    """``event_type``, ``payload`` and ``publisher_id`` of a message from
    RabbitMQ.

    kombu decodes the body by its content type (JSON only, see
    :meth:`Listener.get_consumers`) and undoes compression; a body sent
    without content type arrives as bytes and is read as JSON here.
    """
    try:
        body = message.decode()
        if isinstance(body, (bytes, str)):
            body = json.loads(body)
    except Exception as e:
        raise MalformedNotification(
            f"body is not JSON (content type {message.content_type!r}): {e}"
        ) from None
    return parse_notification(body)


def body_excerpt(message: Message) -> Any:
    """The first bytes of a message's body (bytes, or str as py-amqp decodes
    a UTF-8 body), for a log line."""
    return (message.body or b"")[:BODY_EXCERPT_BYTES]
