"""`osism events watch`: print the OpenStack event stream until interrupted.

The watcher subscribes to the API's WebSocket (``/v1/events/openstack``) with
a ``set_filters`` frame, waits for the server's ``filter_update`` reply, and
prints every event that follows, one line each. When the connection cannot be
made or is lost it says so on standard error and reconnects with exponential
backoff. Once it has seen an event it reconnects with its filters and the id
of that event in the URL (``?node_filters=...&last_event_id=...``): the
server replays what matched meanwhile before the live stream, and the
watcher says how many events that was, or that there was a gap. Errors that
a retry cannot fix (an invalid URL, a server that rejects the filters) end
it with a :class:`click.ClickException`.
"""

import asyncio
import contextlib
import json
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
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


Connect = Callable[..., AsyncContextManager[Connection]]
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


def bearer(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def resume_url(url: str, filters: Filters, last_event_id: str) -> str:
    """``url`` with the filters and the last event id as query parameters."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    for key, values in filters._asdict().items():
        query.extend((key, value) for value in values)
    query.append(("last_event_id", last_event_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _event_id(frame: Any) -> Optional[str]:
    """The id of an event frame (not of a heartbeat), or None."""
    if not isinstance(frame, dict) or frame.get("event_type") == "heartbeat":
        return None
    event_id = frame.get("id")
    return event_id if isinstance(event_id, str) else None


async def _replayed(
    connection: Connection, last_event_id: str
) -> AsyncGenerator[str, None]:
    """The frames a resumed connection sends before its resume reply: the
    events replayed, said on standard error with their number, or a gap."""
    while True:
        text = _text(await connection.recv())
        reply = _frame(text)
        if not isinstance(reply, dict):
            yield text
            continue
        kind = reply.get("type")
        if kind == "error":
            raise click.ClickException(
                "the server rejected the filters or the resume: "
                f"{reply.get('message')}"
            )
        if kind == "resume":
            click.echo(
                f"{PROG}: resumed after event {last_event_id}: "
                f"{reply.get('replayed')} events replayed",
                err=True,
            )
            return
        if kind == "gap":
            click.echo(
                f"{PROG}: events after {last_event_id} may be missing (a gap): "
                f"{reply.get('message')}",
                err=True,
            )
            return
        if kind != "filter_update":
            yield text


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
    token: Optional[str],
) -> AsyncGenerator[str, None]:
    # The read token goes in a header, never in the URL (which servers log).
    options = {} if token is None else {"additional_headers": bearer(token)}
    delay = initial_backoff
    last_event_id: Optional[str] = None
    while True:
        subscribed = False
        target = (
            url if last_event_id is None else resume_url(url, filters, last_event_id)
        )
        try:
            async with connect(target, **options) as connection:
                if last_event_id is None:
                    await _subscribe(connection, filters)
                subscribed = True
                delay = initial_backoff
                click.echo(f"{PROG}: connected to {url}", err=True)
                if last_event_id is not None:
                    async for text in _replayed(connection, last_event_id):
                        last_event_id = _event_id(_frame(text)) or last_event_id
                        yield text
                while True:
                    text = _text(await connection.recv())
                    last_event_id = _event_id(_frame(text)) or last_event_id
                    yield text
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
    token: Optional[str] = None,
) -> None:
    """Print the events at ``url`` that match ``filters``; return never.

    ``token`` is the read token (EVENTS_READ_TOKEN), sent as a bearer token.
    """
    out = sys.stdout if out is None else out
    frames = _frames(
        url,
        filters,
        websockets_connect if connect is None else connect,
        sleep,
        initial_backoff,
        max_backoff,
        token,
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
    token: Optional[str] = None,
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
            token=token,
        )
    )
