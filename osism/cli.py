"""The `osism` command: run the API or the listener, publish an event, watch the
stream."""

import json
import logging
from typing import Any, Dict, Optional, Tuple

import click

from osism.settings import get_settings

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@click.group()
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Log level of osism's own messages (on standard error).",
)
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """osism events: the OpenStack event stream of the OSISM manager."""
    ctx.obj = {"log_level": log_level.lower()}
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)


@main.group()
def service() -> None:
    """Run a service."""


@service.command("api")
@click.option("--host", default=None, help="Listen address [default: API_HOST].")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port [default: API_PORT].",
)
@click.pass_obj
def service_api(obj: Dict[str, str], host: Optional[str], port: Optional[int]) -> None:
    """Serve the HTTP and WebSocket API with uvicorn until interrupted."""
    import uvicorn

    from osism.api import create_app
    from osism.websocket_protocol import websocket_protocol

    settings = get_settings()
    uvicorn.run(
        create_app(settings=settings),
        host=settings.api_host if host is None else host,
        port=settings.api_port if port is None else port,
        log_level=obj["log_level"],
        ws_per_message_deflate=settings.websocket_per_message_deflate,
        ws=websocket_protocol(close_timeout=settings.websocket_close_timeout),
    )


@service.command("listener")
def service_listener() -> None:
    """Carry OpenStack notifications from RabbitMQ into the event stream.

    Consumes the topics (LISTENER_TOPICS) of the services' exchanges
    (LISTENER_EXCHANGES) on BROKER_URI and publishes every notification on
    Redis, until SIGTERM or SIGINT.
    """
    from pydantic import ValidationError

    from osism.services.listener import serve
    from osism.settings import describe_invalid_settings

    try:
        settings = get_settings()
    except ValidationError as e:
        raise click.ClickException(describe_invalid_settings(e)) from None
    serve(settings)


@main.group()
def events() -> None:
    """Publish events to the stream, or watch it."""


def _json_object(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"must be a JSON object, not {type(data).__name__}")
    return data


@events.command("publish")
@click.argument("event_type")
@click.option(
    "--payload",
    default="{}",
    show_default=True,
    callback=_json_object,
    help="The notification payload, a JSON object.",
)
def publish(event_type: str, payload: Dict[str, Any]) -> None:
    """Publish one event on the Redis channel, as the listener does."""
    from osism.services.event_bridge import EventBridge

    settings = get_settings()
    bridge = EventBridge()
    try:
        if not bridge.health()["redis_connected"]:
            raise click.ClickException(
                f"Redis at {settings.redis_host}:{settings.redis_port} is not "
                "reachable, so the event was not published. Start Redis (set "
                "REDIS_HOST/REDIS_PORT), or POST the event to the API's /v1/events."
            )
        bridge.add_event(event_type, payload)
        if bridge.stats["published"] != 1:
            raise click.ClickException(f"publishing {event_type} failed (see log)")
        click.echo(f"Published {event_type} on Redis channel {bridge.channel}")
    finally:
        bridge.shutdown()


@events.command("watch")
@click.option(
    "--event", "event_filters", multiple=True, help="Only this event type (repeatable)."
)
@click.option(
    "--node", "node_filters", multiple=True, help="Only this node (repeatable)."
)
@click.option(
    "--service",
    "service_filters",
    multiple=True,
    help="Only this service (repeatable).",
)
@click.option("--url", default=None, help="WebSocket URL [default: EVENTS_URL].")
@click.option("--json", "as_json", is_flag=True, help="Print each event as raw JSON.")
def watch(
    event_filters: Tuple[str, ...],
    node_filters: Tuple[str, ...],
    service_filters: Tuple[str, ...],
    url: Optional[str],
    as_json: bool,
) -> None:
    """Print the events that match the filters until interrupted.

    Reconnects by itself when the server goes away.
    """
    from osism.watch import Filters, watch_forever

    filters = Filters(list(event_filters), list(node_filters), list(service_filters))
    try:
        watch_forever(url or get_settings().events_url, filters, as_json=as_json)
    except KeyboardInterrupt:
        pass
