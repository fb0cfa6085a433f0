"""Async clients of a running API server: the WebSocket event stream (the
`websockets` library's asyncio client), ingest and health over HTTP."""

import contextlib
import json
from typing import Any, AsyncIterator, Callable, Dict, List

import anyio
from websockets.asyncio.client import ClientConnection, connect

from tests.harness.api_server import ApiServer
from tests.harness import HarnessError

RECEIVE_DEADLINE = 5.0


class EventStream:
    """A WebSocket client of /v1/events/openstack."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket

    async def send_json(self, frame: Any) -> None:
        await self.websocket.send(json.dumps(frame))

    async def receive(self, timeout: float = RECEIVE_DEADLINE) -> Dict[str, Any]:
        """The next frame from the server, decoded; fails after ``timeout``."""
        with anyio.fail_after(timeout):
            text = await self.websocket.recv()
        assert isinstance(text, str), f"expected a text frame, got {text!r}"
        frame: Dict[str, Any] = json.loads(text)
        return frame

    async def set_filters(self, **filters: List[str]) -> Dict[str, Any]:
        """Send set_filters with the given lists; the filter_update reply."""
        await self.send_json({"action": "set_filters", **filters})
        reply = await self.receive()
        assert reply["type"] == "filter_update", reply
        assert reply["status"] == "success", reply
        return reply

    async def receive_until(
        self, last: Callable[[Dict[str, Any]], bool], timeout: float = RECEIVE_DEADLINE
    ) -> List[Dict[str, Any]]:
        """Frames up to and including the first one for which ``last`` is true."""
        frames: List[Dict[str, Any]] = []
        with anyio.fail_after(timeout):
            while not frames or not last(frames[-1]):
                frames.append(await self.receive(timeout))
        return frames


@contextlib.asynccontextmanager
async def open_stream(url: str, **filters: List[str]) -> AsyncIterator[EventStream]:
    """Connect to ``url``; if filters are given, set them and await the reply."""
    with anyio.fail_after(RECEIVE_DEADLINE):
        websocket = await connect(url, open_timeout=RECEIVE_DEADLINE, close_timeout=2)
    async with websocket:
        stream = EventStream(websocket)
        if filters:
            await stream.set_filters(**filters)
        yield stream


async def post_event(
    server: ApiServer, event_type: str, payload: Dict[str, Any], **fields: Any
) -> Dict[str, Any]:
    """POST an event to the server's ingest endpoint; the 202 reply."""
    status, body = await anyio.to_thread.run_sync(
        lambda: server.post_event(event_type, payload, **fields)
    )
    assert status == 202, body
    assert isinstance(body, dict)
    return body


async def get_health(server: ApiServer) -> Dict[str, Any]:
    return await anyio.to_thread.run_sync(server.health)


async def wait_for_health(
    server: ApiServer,
    condition: Callable[[Dict[str, Any]], Any],
    timeout: float = 5.0,
) -> Dict[str, Any]:
    """Poll the server's health until ``condition(health)`` holds; that health."""
    health: Dict[str, Any] = {}
    try:
        with anyio.fail_after(timeout):
            while True:
                health = await get_health(server)
                if condition(health):
                    return health
                await anyio.sleep(0.01)
    except TimeoutError:
        raise HarnessError(
            f"health did not reach the expected state within {timeout:g} s; "
            f"last: {health}"
        )
