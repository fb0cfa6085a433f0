"""Clients that send what an attacker sends: HTTP requests with any headers
and any body (declared too long, chunked, cut short), WebSocket handshakes
with any headers; and the answer, whatever it is."""

import contextlib
import http.client
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, Iterable, Optional

import anyio
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.harness.api_server import ApiServer
from tests.harness.clients import RECEIVE_DEADLINE, EventStream
from tests.harness.ports import LOOPBACK

HTTP_DEADLINE = 10.0


@dataclass
class Answer:
    """An HTTP response: status, headers (lower-case names), body."""

    status: int
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _answer(response: http.client.HTTPResponse) -> Answer:
    headers = {name.lower(): value for name, value in response.getheaders()}
    return Answer(response.status, headers, response.read())


def request(
    server: ApiServer,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[Dict[str, str]] = None,
) -> Answer:
    """One HTTP request with exactly these headers (and Content-Length)."""
    connection = http.client.HTTPConnection(
        LOOPBACK, server.port, timeout=HTTP_DEADLINE
    )
    with contextlib.closing(connection):
        connection.request(method, path, body=body, headers=headers or {})
        return _answer(connection.getresponse())


def post_json(
    server: ApiServer, body: Any, headers: Optional[Dict[str, str]] = None
) -> Answer:
    """POST ``body`` (bytes as they are, anything else as JSON) to the
    ingest endpoint."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request(
        server,
        "POST",
        "/v1/events",
        data,
        {"Content-Type": "application/json", **(headers or {})},
    )


def post_declaring(server: ApiServer, declared: int, sent: bytes) -> Answer:
    """POST that declares ``declared`` bytes but sends only ``sent``, then
    waits for the answer: one comes only if the server answers without
    reading the body it was promised."""
    connection = http.client.HTTPConnection(
        LOOPBACK, server.port, timeout=HTTP_DEADLINE
    )
    with contextlib.closing(connection):
        connection.putrequest("POST", "/v1/events")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(declared))
        connection.endheaders()
        connection.send(sent)
        return _answer(connection.getresponse())


def post_chunked(server: ApiServer, chunks: Iterable[bytes]) -> Answer:
    """POST ``chunks`` with chunked transfer encoding, without the final
    empty chunk: an answer comes only if the server answers before the body
    ends."""
    connection = http.client.HTTPConnection(
        LOOPBACK, server.port, timeout=HTTP_DEADLINE
    )
    with contextlib.closing(connection):
        connection.putrequest("POST", "/v1/events")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for chunk in chunks:
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        return _answer(connection.getresponse())


@contextlib.asynccontextmanager
async def open_stream_with(
    url: str, headers: Optional[Dict[str, str]] = None
) -> AsyncIterator[EventStream]:
    """Connect to ``url`` with these handshake headers (Authorization,
    Origin, ...); refused, raises websockets' InvalidStatus."""
    with anyio.fail_after(RECEIVE_DEADLINE):
        websocket = await connect(
            url,
            additional_headers=headers or {},
            open_timeout=RECEIVE_DEADLINE,
            close_timeout=2,
        )
    async with websocket:
        yield EventStream(websocket)


async def refused_upgrade(url: str, headers: Optional[Dict[str, str]] = None) -> Answer:
    """The HTTP answer to a WebSocket handshake the server must refuse;
    AssertionError if it accepts it."""
    try:
        async with open_stream_with(url, headers):
            pass
    except InvalidStatus as e:
        response = e.response
        return Answer(
            response.status_code,
            {name.lower(): value for name, value in response.headers.raw_items()},
            bytes(response.body or b""),
        )
    raise AssertionError(f"the upgrade of {url} with {headers} was accepted")
