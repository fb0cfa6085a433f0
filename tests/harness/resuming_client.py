"""A WebSocket client that does what a dashboard does when its connection is
lost: it connects again, with its filters and the id of the last event it
got as query parameters (``?node_filters=...&last_event_id=...``), so the
API replays what it missed before the live stream. Every numbered event is
counted in its :class:`~tests.harness.tally.Tally`.

Run it as a task (``await client.run()`` in a task group, cancelled at the
end). Where it connects each time is ``target()``: a test switches it to
the other API process. :meth:`leave` closes the connection and keeps the
client away until :meth:`come_back`.
"""

import contextlib
import json
import time
from typing import Any, AsyncIterator, Callable, Dict, List, Optional
from urllib.parse import urlencode

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.harness.tally import Tally
from tests.harness.waiting import wait_until

# The first wait before connecting again; it doubles up to MAX_DELAY, as the
# events page does (from 0.25 s there).
FIRST_DELAY = 0.1
MAX_DELAY = 1.0
OPEN_DEADLINE = 5.0


class ResumingClient:
    def __init__(
        self,
        name: str,
        target: Callable[[], str],
        node_filters: List[str],
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self.name = name
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.target = target
        self.node_filters = node_filters
        self.tally = Tally(name)
        # One entry per connection that was opened: the URL's last_event_id
        # (None for the first), and the reply that said how it resumed.
        self.connections = 0
        self.resumes: List[Dict[str, Any]] = []
        self.gaps: List[Dict[str, Any]] = []
        self.errors: List[Dict[str, Any]] = []
        # Close codes the server sent (None: the connection just broke).
        self.close_codes: List[Optional[int]] = []
        self.lost_at: List[float] = []
        # When the client was ready on its latest connection: the filter
        # update (first connection) or the resume / gap reply came.
        self.ready_at: List[float] = []
        self._away = False
        self._websocket: Optional[ClientConnection] = None
        self._resuming = False
        self._ready = False
        # The last event id, of any event the server sent (replays included).
        self.last_event_id: Optional[str] = None

    @property
    def ready(self) -> bool:
        """Connected, with filters set (and resumed, after a reconnect)."""
        return self._websocket is not None and self._ready

    def url(self) -> str:
        query: List[Any] = [("node_filters", node) for node in self.node_filters]
        if self.last_event_id is not None:
            query.append(("last_event_id", self.last_event_id))
        return f"{self.target()}?{urlencode(query)}"

    async def run(self) -> None:
        delay = self.first_delay
        while True:
            if self._away:
                await wait_until(lambda: not self._away, timeout=3600)
            try:
                await self._connection()
                delay = self.first_delay
            except (OSError, InvalidHandshake, TimeoutError):
                pass  # nothing answers there (yet)
            if not self._away:
                await anyio.sleep(delay)
                delay = min(2 * delay, self.max_delay)

    async def _connection(self) -> None:
        self._resuming = self.last_event_id is not None
        self._ready = False
        with anyio.fail_after(OPEN_DEADLINE):
            websocket = await connect(
                self.url(), open_timeout=OPEN_DEADLINE, close_timeout=2
            )
        self._websocket = websocket
        self.connections += 1
        try:
            async for text in websocket:
                self._frame(json.loads(text))
        except ConnectionClosed:
            pass
        finally:
            self._websocket = None
            self.lost_at.append(time.monotonic())
            rcvd = websocket.protocol.close_rcvd
            self.close_codes.append(None if rcvd is None else rcvd.code)
            # Closed for sure, also when the client's task is cancelled
            # (the end of a test), which cuts a close handshake short.
            websocket.transport.abort()

    def _frame(self, frame: Dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind in ("filter_update", "resume", "gap"):
            if kind == "resume":
                self.resumes.append(frame)
            elif kind == "gap":
                self.gaps.append(frame)
            if (kind == "filter_update") != self._resuming:
                self._ready = True
                self.ready_at.append(time.monotonic())
            return
        if kind == "error":
            self.errors.append(frame)
            return
        if frame.get("event_type") == "heartbeat":
            return
        if isinstance(frame.get("id"), str):
            self.last_event_id = frame["id"]
        self.tally.add(frame)

    async def leave(self) -> None:
        """Close the connection (a client that goes away for a while)."""
        self._away = True
        websocket = self._websocket
        if websocket is not None:
            with anyio.fail_after(5):
                await websocket.close()
        await wait_until(lambda: self._websocket is None, timeout=5)

    def come_back(self) -> None:
        self._away = False

    async def wait_ready(self, connections: int, timeout: float = 15.0) -> None:
        """Until the client is ready on its ``connections``-th connection."""
        await wait_until(
            lambda: self.connections >= connections and self.ready, timeout
        )


@contextlib.asynccontextmanager
async def reading(clients: List[ResumingClient]) -> AsyncIterator[None]:
    """The clients connected, ready and reading for the block; their tasks
    are cancelled at its end."""
    async with anyio.create_task_group() as tasks:
        for client in clients:
            tasks.start_soon(client.run)
        for client in clients:
            await client.wait_ready(1)
        yield
        tasks.cancel_scope.cancel()


async def all_arrived(
    clients: List[ResumingClient], numbers: List[int], timeout: float
) -> bool:
    """Until every client has every one of ``numbers``; False if they did
    not within ``timeout`` (the tallies then say what is missing)."""
    try:
        await wait_until(lambda: all(c.tally.has(numbers) for c in clients), timeout)
    except TimeoutError:
        return False
    return True
