"""`osism events watch`: print the OpenStack event stream until interrupted.

The watcher subscribes to the API's WebSocket (``/v1/events/openstack``) with
a ``set_filters`` frame, waits for the server's ``filter_update`` reply, and
prints every event that follows, one line each. When the connection cannot be
made or is lost it says so on standard error and reconnects with exponential
backoff, sending the same filters again. Errors that a retry cannot fix (an
invalid URL, a server that rejects the filters) end it with a
:class:`click.ClickException`.
"""

import asyncio
import contextlib
import json
import sys
from typing import (
    Any,
    AsyncContextManager,
    AsyncGenerator,
    Awaitable,
    Callable,
    Dict,
    List,
    NamedTuple,
    Optional,
    Protocol,
    TextIO,
    Union,
)

import click
from websockets.asyncio.client import connect as websockets_connect
from websockets.client import process_exception
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

PROG = "osism events watch"


class Filters(NamedTuple):
    event_filters: List[str]
    node_filters: List[str]
    service_filters: List[str]


class Connection(Protocol):
    """The part of websockets' ``ClientConnection`` that the watcher uses."""

    async def send(self, message: str) -> None: ...

    async def recv(self) -> Union[str, bytes]: ...


Connect = Callable[[str], AsyncContextManager[Connection]]
Sleep = Callable[[float], Awaitable[None]]


def format_event(event: Dict[str, Any]) -> str:
    """One line for ``event``; its JSON when it does not look like an event."""
    if not isinstance(event, dict):
        return json.dumps(event, default=str)
    timestamp, event_type = event.get("timestamp"), event.get("event_type")
    if not isinstance(timestamp, str) or not isinstance(event_type, str):
        return json.dumps(event, default=str)
    data = event.get("data")
    words = [timestamp, event_type]
    for name, value in (
        ("node", event.get("node_name")),
        ("resource", data.get("resource_id") if isinstance(data, dict) else None),
        ("source", event.get("source")),
    ):
        if value is not None:
            words.append(f"{name}={value}")
    return " ".join(words)


def _text(message: Union[str, bytes]) -> str:
    return message if isinstance(message, str) else message.decode("utf-8", "replace")


def _frame(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


async def _subscribe(connection: Connection, filters: Filters) -> None:
    await connection.send(json.dumps({"action": "set_filters", **filters._asdict()}))
    while True:
        reply = _frame(_text(await connection.recv()))
        if not isinstance(reply, dict):
            continue
        if reply.get("type") == "filter_update" and reply.get("status") == "success":
            return
        if reply.get("type") == "error":
            raise click.ClickException(
                f"the server rejected the filters: {reply.get('message')}"
            )


def _line(text: str, as_json: bool) -> Optional[str]:
    if as_json:
        return text
    event = _frame(text)
    if not isinstance(event, dict):
        return text
    if event.get("event_type") == "heartbeat":
        return None
    return format_event(event)


async def _frames(
    url: str,
    filters: Filters,
    connect: Connect,
    sleep: Sleep,
    initial_backoff: float,
    max_backoff: float,
) -> AsyncGenerator[str, None]:
    delay = initial_backoff
    while True:
        subscribed = False
        try:
            async with connect(url) as connection:
                await _subscribe(connection, filters)
                subscribed = True
                delay = initial_backoff
                click.echo(f"{PROG}: connected to {url}", err=True)
                while True:
                    yield _text(await connection.recv())
        except (OSError, WebSocketException) as e:
            if not isinstance(e, ConnectionClosed) and process_exception(e) is not None:
                message = str(e) if isinstance(e, InvalidURI) else f"{url}: {e}"
                raise click.ClickException(f"cannot watch: {message}") from None
            what = "connection to {} lost" if subscribed else "cannot connect to {}"
            click.echo(
                f"{PROG}: {what.format(url)} ({str(e) or type(e).__name__}); "
                f"reconnecting in {delay:.1f} s",
                err=True,
            )
        await sleep(delay)
        delay = min(delay * 2, max_backoff)


async def watch(
    url: str,
    filters: Filters,
    as_json: bool = False,
    out: Optional[TextIO] = None,
    *,
    connect: Optional[Connect] = None,
    sleep: Sleep = asyncio.sleep,
    initial_backoff: float = 0.5,
    max_backoff: float = 10.0,
) -> None:
    """Print the events at ``url`` that match ``filters``; return never."""
    out = sys.stdout if out is None else out
    frames = _frames(
        url,
        filters,
        websockets_connect if connect is None else connect,
        sleep,
        initial_backoff,
        max_backoff,
    )
    # Writing is outside the reconnect loop: a broken stdout (an OSError too)
    # ends the watch instead of passing for a lost connection.
    async with contextlib.aclosing(frames):
        async for text in frames:
            line = _line(text, as_json)
            if line is not None:
                out.write(line + "\n")
                out.flush()


def watch_forever(
    url: str,
    filters: Filters,
    as_json: bool = False,
    out: Optional[TextIO] = None,
    *,
    connect: Optional[Connect] = None,
    initial_backoff: float = 0.5,
    max_backoff: float = 10.0,
) -> None:
    """Run :func:`watch` in a new event loop until interrupted."""
    asyncio.run(
        watch(
            url,
            filters,
            as_json,
            out,
            connect=connect,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
        )
    )
