"""`osism events publish`: one event into the stream, on Redis as the listener
publishes, or posted to an API.

It ends only once the event is in: on Redis (on the channel and in its
history, where every API process finds it even if none listened at that
moment) or accepted by the API; else it fails with a clear message after
``timeout`` seconds. Never exit 0 with the event lost.
"""

import json
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Optional

import click

from osism.services.bridge import wire
from osism.services.event_message import new_event_id, utc_now_text
from osism.services.retry import Backoff
from osism.settings import Settings


def publish_on_redis(settings: Settings, event: wire.Event, timeout: float) -> str:
    """Publish ``event`` on Redis, trying again until ``timeout``; what to say."""
    from osism.services.event_bridge import EventBridge

    bridge = EventBridge(connect=False, settings=settings)
    deadline = time.monotonic() + timeout
    delays = Backoff(0.1, 1.0).delays()
    try:
        while not bridge.publish_now(event):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise click.ClickException(
                    f"Redis at {settings.redis_host}:{settings.redis_port} did not "
                    f"take the event within {timeout:g} s, so it was not "
                    "published. Start Redis (set REDIS_HOST/REDIS_PORT), or post "
                    "the event to an API (--url)."
                )
            time.sleep(min(next(delays), remaining))
        return f"Published {event['event_type']} on Redis channel {bridge.channel}"
    finally:
        bridge.shutdown()


def post_to_api(
    url: str, token: Optional[str], notification: Dict[str, Any], timeout: float
) -> str:
    """POST ``notification`` to the API at ``url``; what to say."""
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/events",
        data=json.dumps(notification).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as e:
        with e:
            detail = e.read().decode("utf-8", "replace")
        raise click.ClickException(
            f"the API refused the event ({e.code}): {detail}"
        ) from None
    except (OSError, ValueError) as e:
        raise click.ClickException(
            f"the API at {url} did not take the event: {e}"
        ) from None
    return f"Posted {notification['event_type']} to {url} (id {answer.get('id')})"


def publish(
    settings: Settings,
    event_type: str,
    payload: Dict[str, Any],
    publisher_id: Optional[str],
    timeout: float,
    url: Optional[str],
    token: Optional[str],
) -> str:
    """The event into the stream, with an id of its own; what to say."""
    event_id = new_event_id()
    if url is not None:
        notification = {
            "event_type": event_type,
            "payload": payload,
            "message_id": event_id,
        }
        if publisher_id is not None:
            notification["publisher_id"] = publisher_id
        return post_to_api(url, token, notification, timeout)
    event = wire.make_event(event_type, payload, publisher_id, event_id, utc_now_text())
    return publish_on_redis(settings, event, timeout) + f" (id {event_id})"
