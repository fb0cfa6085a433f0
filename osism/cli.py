"""The `osism` command: run the API or the listener, publish an event, watch the
stream."""

import json
import re
from typing import Any, Dict, Optional, Tuple

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from osism import logs
from osism.settings import Settings, describe_invalid_settings, get_settings


def load_settings() -> Settings:
    """The settings of the environment; a bad variable is a clear error.

    The message names each variable and what is wrong with it, never its
    value (a variable may hold a password).
    """
    try:
        return get_settings()
    except ValidationError as e:
        raise click.ClickException(describe_invalid_settings(e)) from None
    except SettingsError as e:
        raise click.ClickException(f"Invalid settings:\n  {e}") from None


def defaults_from(settings: Settings) -> Dict[str, Any]:
    """The options whose defaults are settings, as click's ``default_map``, so
    that help shows the value that will be used."""
    return {
        "service": {"api": {"host": settings.api_host, "port": settings.api_port}},
        "events": {"watch": {"url": settings.events_url}},
    }


LOG_LEVELS = ["debug", "info", "warning", "error"]


@click.group()
@click.version_option(package_name="osism-events", prog_name="osism events")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=None,
    help="Log level of osism's own messages, on standard error "
    "[default: LOG_LEVEL, or info].",
)
@click.pass_context
def main(ctx: click.Context, log_level: Optional[str]) -> None:
    """osism events: the OpenStack event stream of the OSISM manager.

    Settings come from environment variables (see README, "Settings").
    """
    settings = load_settings()
    level = settings.log_level if log_level is None else log_level.lower()
    ctx.obj = {"log_level": level, "settings": settings}
    ctx.default_map = defaults_from(settings)
    logs.configure(level, settings.log_format)


@main.group()
def service() -> None:
    """Run a service."""


@service.command("api")
@click.option("--host", show_default=True, help="Listen address (API_HOST).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    show_default=True,
    help="Port (API_PORT).",
)
@click.pass_obj
def service_api(obj: Dict[str, Any], host: str, port: int) -> None:
    """Serve the HTTP and WebSocket API with uvicorn until interrupted."""
    import uvicorn

    from osism.api import create_app
    from osism.websocket_protocol import websocket_protocol

    settings: Settings = obj["settings"]
    uvicorn.run(
        create_app(settings=settings),
        host=host,
        port=port,
        log_level=obj["log_level"],
        ws_per_message_deflate=settings.websocket_per_message_deflate,
        ws=websocket_protocol(close_timeout=settings.websocket_close_timeout),
    )


@service.command("listener")
@click.pass_obj
def service_listener(obj: Dict[str, Any]) -> None:
    """Carry OpenStack notifications from RabbitMQ into the event stream.

    Consumes the topics (LISTENER_TOPICS) of the services' exchanges
    (LISTENER_EXCHANGES) on BROKER_URI and publishes every notification on
    Redis, until SIGTERM or SIGINT.
    """
    from osism.services.listener import serve

    serve(obj["settings"])


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


def _event_type(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from osism.ingest import EVENT_TYPE_PATTERN, MAX_EVENT_TYPE_LENGTH

    if len(value) > MAX_EVENT_TYPE_LENGTH or not re.fullmatch(
        EVENT_TYPE_PATTERN, value
    ):
        raise click.BadParameter(
            f"must be a dotted name of letters, digits, '_' and '-' of at most "
            f"{MAX_EVENT_TYPE_LENGTH} characters (baremetal.node.power_set.end)"
        )
    return value


@events.command("publish")
@click.argument("event_type", callback=_event_type)
@click.option(
    "--payload",
    default="{}",
    show_default=True,
    callback=_json_object,
    help="The notification payload, a JSON object.",
)
@click.option("--publisher-id", default=None, help="Who sent it (nova-compute:host1).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait for Redis (or the API) to take the event.",
)
@click.option(
    "--url",
    default=None,
    help="Post to the API at this URL (http://host:8000) instead of Redis.",
)
@click.option(
    "--token",
    default=None,
    help="Write token of the API [default: EVENTS_WRITE_TOKEN(_FILE), if set].",
)
@click.pass_obj
def publish(
    obj: Dict[str, Any],
    event_type: str,
    payload: Dict[str, Any],
    publisher_id: Optional[str],
    timeout: float,
    url: Optional[str],
    token: Optional[str],
) -> None:
    """Publish one event on the Redis channel, as the listener does (or post
    it to an API with --url).

    Exits 0 only once the event is in: on Redis, or accepted by the API.
    """
    from osism.publish import publish as publish_event

    settings: Settings = obj["settings"]
    if token is None and settings.events_write_token is not None:
        token = settings.events_write_token.get_secret_value()
    click.echo(
        publish_event(settings, event_type, payload, publisher_id, timeout, url, token)
    )


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
    help="Only this service, by type (compute) or project (nova) (repeatable).",
)
@click.option("--url", show_default=True, help="WebSocket URL (EVENTS_URL).")
@click.option(
    "--token",
    default=None,
    help="Read token of the API [default: EVENTS_READ_TOKEN(_FILE), if set].",
)
@click.option("--json", "as_json", is_flag=True, help="Print each event as raw JSON.")
@click.pass_obj
def watch(
    obj: Dict[str, Any],
    event_filters: Tuple[str, ...],
    node_filters: Tuple[str, ...],
    service_filters: Tuple[str, ...],
    url: str,
    token: Optional[str],
    as_json: bool,
) -> None:
    """Print the events that match the filters until interrupted.

    Reconnects by itself when the server goes away, and resumes after the
    last event it printed.
    """
    from osism.watch import Filters, watch_forever

    if token is None and obj["settings"].events_read_token is not None:
        token = obj["settings"].events_read_token.get_secret_value()
    filters = Filters(list(event_filters), list(node_filters), list(service_filters))
    try:
        watch_forever(url, filters, as_json=as_json, token=token)
    except KeyboardInterrupt:
        pass
