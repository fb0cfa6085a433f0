"""Fan-out of OpenStack events to WebSocket clients, each with its own filters.

Everything here lives on one asyncio event loop (uvicorn's in the API). The
only entry point for other threads is :meth:`WebSocketManager.enqueue_notification`
scheduled with ``loop.call_soon_threadsafe`` on :attr:`WebSocketManager.loop`,
which the event bridge does.
"""

import asyncio
import json
import logging
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from starlette.websockets import WebSocket, WebSocketDisconnect

from osism.services.client_sending import CLOSE_DROPPED, ClientSending
from osism.services.event_history import EventHistory, replay
from osism.services.event_message import EventMessage, event_from_notification
from osism.services.fan_out_pass import FanOutPass
from osism.services.filter_groups import ConnectionRegistry
from osism.services.websocket_connection import WebSocketConnection
from osism.settings import Settings

# The seed's names, importable from here as the seed has them.
__all__ = [
    "CLOSE_DROPPED",
    "EventMessage",
    "WebSocketConnection",
    "WebSocketDisconnect",
    "WebSocketManager",
]

logger = logging.getLogger("osism.websocket")

# The settings' defaults, read without looking at the environment: the
# manager's settings are handed to it (see apply_settings).
_DEFAULTS = Settings.model_construct()

# Close code sent to every client when the API stops (RFC 6455: going away).
CLOSE_GOING_AWAY = 1001
# Seconds between looks at what is left to deliver while stopping.
CLOSE_FLUSH_TIMEOUT = 1.0  # seconds a client closed by the server has to read
DRAIN_POLL_INTERVAL = 0.01
# Most events the broadcaster fans out before it lets the senders run.
BATCH_SIZE = 256
# The source of the manager's own events (heartbeats), which are neither kept
# for resuming clients nor replayed.
HEARTBEAT_SOURCE = "osism"


class WebSocketManager:
    """Registry of WebSocket clients and the broadcaster that feeds them.

    The broadcaster takes events from :attr:`event_queue`, serialises each
    once, and appends the frame to the outbox of every client whose filters
    match. Each client's outbox is drained by a task of its own, so a client
    that stops reading holds up nobody but itself; a send that takes longer
    than ``send_timeout`` seconds drops that client.
    """

    def __init__(
        self,
        send_timeout: float = _DEFAULTS.websocket_send_timeout,
        max_pending: int = _DEFAULTS.websocket_max_pending,
        history_size: int = _DEFAULTS.event_history_size,
    ) -> None:
        # What clients that resume are replayed from (see resume).
        self.history = EventHistory(history_size)
        self.connections = ConnectionRegistry()
        self.event_queue: "asyncio.Queue[EventMessage]" = asyncio.Queue()
        self.send_timeout: float = send_timeout
        self.max_pending: int = max_pending
        # The loop the broadcaster runs on; other threads hand events over
        # to it with call_soon_threadsafe (see the event bridge).
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.stats: Counter[str] = Counter()
        self.sending = ClientSending(self.connections, self.stats, self)
        self.fan_out = FanOutPass(self.sending, self.stats)
        self._broadcaster_task: Optional["asyncio.Task[None]"] = None

    def apply_settings(self, settings: Settings) -> None:
        """Take the bounds of ``settings`` (WEBSOCKET_SEND_TIMEOUT,
        WEBSOCKET_MAX_PENDING) for the clients that connect from now on: how
        the app hands its settings to the module's singleton."""
        self.send_timeout = settings.websocket_send_timeout
        self.max_pending = settings.websocket_max_pending
        self.history.apply_settings(settings)

    async def start(self) -> None:
        """Record the running loop and start the broadcaster if it is not running."""
        self.loop = asyncio.get_running_loop()
        self._ensure_broadcaster()

    async def stop(self) -> None:
        """Cancel the broadcaster and every client's sender, and wait for them."""
        tasks = [c.sender for c in self.connections.values() if c.sender is not None]
        if self._broadcaster_task is not None:
            self._broadcaster_task.cancel()
            tasks.append(self._broadcaster_task)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.loop = asyncio.get_running_loop()
        connection = WebSocketConnection(websocket)
        # Everything fanned out from now on goes to it live.
        connection.replay_through = self.history.next_seq - 1
        self.connections[websocket] = connection
        logger.info(
            "WebSocket client %s connected (%d connected)",
            connection.label,
            len(self.connections),
        )
        self._ensure_broadcaster()

    async def disconnect(self, websocket: WebSocket) -> None:
        connection = self.connections.pop(websocket, None)
        if connection is None:
            return
        if connection.sender is not None:
            connection.sender.cancel()
        logger.info(
            "WebSocket client %s disconnected (%d connected)",
            connection.label,
            len(self.connections),
        )

    async def update_filters(
        self,
        websocket: WebSocket,
        event_filters: Optional[List[str]] = None,
        node_filters: Optional[List[str]] = None,
        service_filters: Optional[List[str]] = None,
    ) -> None:
        """Replace the filter lists that are given; None keeps a list as it is."""
        connection = self.connections.get(websocket)
        if connection is None:
            return
        connection.set_filters(event_filters, node_filters, service_filters)
        # DEBUG: a client may change its filters as often as its frame budget
        # allows; the lists show quoted (repr), so a value cannot forge a line.
        logger.debug(
            "WebSocket client %s filters: events=%r nodes=%r services=%r",
            connection.label,
            connection.event_filters,
            connection.node_filters,
            connection.service_filters,
        )

    async def add_event(self, event: EventMessage) -> None:
        await self.event_queue.put(event)

    async def broadcast_event_from_notification(
        self,
        event_type: str,
        payload: Dict[str, Any],
        publisher_id: Optional[str] = None,
        event_id: Optional[str] = None,
        timestamp: Optional[str] = None,
    ) -> None:
        self.enqueue_notification(
            event_type, payload, publisher_id, event_id, timestamp
        )

    def enqueue_notification(
        self,
        event_type: str,
        payload: Dict[str, Any],
        publisher_id: Optional[str] = None,
        event_id: Optional[str] = None,
        timestamp: Optional[str] = None,
    ) -> None:
        """Turn an OpenStack notification into an event and queue it.

        Runs on the manager's loop (or, before any loop runs, in the caller's
        thread). The event's data is a copy of the payload plus
        ``service_type`` and ``resource_id`` (and ``publisher_id`` when the
        notification named its publisher); the caller's dict is untouched.
        ``event_id`` and ``timestamp`` are the ones the event got where it
        entered the stream, when it has them.
        A notification that cannot be turned into an event is logged and
        counted, never raised.
        """
        self._take_notification(
            self.event_queue.put_nowait,
            (event_type, payload, publisher_id, event_id, timestamp),
        )

    def deliver_notification(self, *notification: Any) -> None:
        """What enqueue_notification does, for the bridge's hand-over on the
        manager's loop: while nothing waits in the queue and the broadcaster
        runs, the event is fanned out at once, in this turn of the loop.

        Each event handed over then costs one wake-up of the loop, not a
        second one for the broadcaster task; order is kept, since an event
        goes behind the queue whenever the queue holds any.
        """
        if self.event_queue.empty() and self._broadcasting():
            self._take_notification(self._fan_out_safely, notification)
        else:
            self._take_notification(self.event_queue.put_nowait, notification)

    def _take_notification(
        self, take: Callable[[EventMessage], None], notification: Tuple[Any, ...]
    ) -> None:
        try:
            event = event_from_notification(*notification)
        except Exception as e:
            self.stats["invalid"] += 1
            logger.error("Error processing notification %r: %s", notification[0], e)
            return
        take(event)

    def remember(self, notifications: Iterable[Tuple[Any, ...]]) -> None:
        """Keep events in the history without sending them, as older than any
        fanned out: the recent events of the Redis history, for clients that
        resume after this process (re)started. Each is what
        enqueue_notification takes; one that cannot be made into an event, or
        is kept already, is left out."""
        events = []
        for notification in notifications:
            try:
                events.append(event_from_notification(*notification))
            except Exception as e:
                logger.debug("Not remembering %r: %s", notification[:1], e)
        self.history.add_older(events)

    def resume(self, websocket: WebSocket, last_event_id: str) -> Dict[str, Any]:
        """Send a client the events after ``last_event_id`` that match its
        filters and that it has not been sent; the reply frame.

        The events come from :attr:`history` and go into the client's outbox
        in order, before anything fanned out later; what was fanned out to
        the client since it connected is not sent again. An id the history
        does not hold (too old, or never seen here) is a gap: the reply says
        so, and the client goes on with the live stream.
        """
        connection = self.connections.get(websocket)
        if connection is None:
            return {"type": "error", "message": "connection is closing"}
        reply = replay(
            self.history,
            connection,
            last_event_id,
            lambda event: self.sending.deliver(connection, event.to_json()),
        )
        self.stats["replayed"] += reply.get("replayed", 0)
        self.stats["gaps"] += reply["type"] == "gap"
        return reply

    async def drain(self, timeout: float) -> None:
        """Deliver what is queued and waiting for the clients (at most
        ``timeout`` seconds), then close every client with 1001."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._undelivered() and loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL_INTERVAL)
        left = self._undelivered()
        for websocket in list(self.connections):
            await self.close(
                websocket, CLOSE_GOING_AWAY, "server shutting down", logging.INFO
            )
        logger.info(
            "Closed every WebSocket client for the stop (%d frames undelivered)",
            left,
        )

    def _undelivered(self) -> int:
        """Events not fanned out yet and frames not sent yet."""
        waiting = sum(
            connection.outbox.pending
            for connection in self.connections.values()
            if connection.outbox is not None
        )
        return self.event_queue.qsize() + self.fan_out.pending + waiting

    async def close(
        self,
        websocket: WebSocket,
        code: int,
        reason: str,
        level: int = logging.WARNING,
    ) -> None:
        """Close a client's connection on the server's initiative (a policy
        violation, the stop): it is forgotten, its sender stops, and it gets
        the close frame with ``code``; logged at ``level``. What is queued
        for it (the replies before a 1008, the error frame) is sent first,
        for at most CLOSE_FLUSH_TIMEOUT seconds."""
        connection = self.connections.get(websocket)
        if connection is None:
            return
        self.sending.forget(connection)
        clock = asyncio.get_running_loop().time
        deadline = clock() + CLOSE_FLUSH_TIMEOUT
        while connection.outbox and connection.outbox.pending and clock() < deadline:
            await asyncio.sleep(DRAIN_POLL_INTERVAL)
        if connection.sender is not None:
            connection.sender.cancel()
        logger.log(
            level,
            "Closed WebSocket client %s with %d: %s",
            connection.label,
            code,
            reason,
        )
        await self.sending.close_quietly(websocket, code, reason)

    def send_to(self, websocket: WebSocket, message: Dict[str, Any]) -> None:
        """Queue a frame for one client, behind the events already queued for it.

        Replies go through the client's outbox too, so only its sender task
        ever writes to the socket.
        """
        connection = self.connections.get(websocket)
        if connection is not None:
            self.sending.deliver(connection, json.dumps(message))

    def health(self) -> Dict[str, Any]:
        return {
            "clients": len(self.connections),
            "queue": self.event_queue.qsize(),
            "broadcaster_running": self._broadcasting(),
            "history": len(self.history),
            "counters": {
                name: self.stats[name]
                for name in (
                    "received",
                    "broadcast",
                    "dropped",
                    "invalid",
                    "duplicates",
                    "replayed",
                    "gaps",
                )
            },
        }

    async def send_heartbeat(self) -> None:
        if not self.connections:
            return
        await self.add_event(
            EventMessage(
                event_type="heartbeat",
                source=HEARTBEAT_SOURCE,
                data={"message": "ping"},
            )
        )

    def _broadcasting(self) -> bool:
        task = self._broadcaster_task
        return task is not None and not task.done()

    def _ensure_broadcaster(self) -> None:
        if self._broadcaster_task is None or self._broadcaster_task.done():
            self._broadcaster_task = asyncio.create_task(self._broadcast_events())

    async def _broadcast_events(self) -> None:
        self.loop = asyncio.get_running_loop()
        logger.info("Event broadcaster started")
        try:
            while True:
                try:
                    event = await self.event_queue.get()
                    self._fan_out_batch(event)
                    # Let the senders write this batch before the next one.
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    # The seed contract: cancelling ends the broadcaster
                    # quietly; the task finishes instead of raising.
                    logger.info("Event broadcaster cancelled")
                    break
        finally:
            self.sending.stop_senders()

    def _fan_out_batch(self, event: EventMessage) -> None:
        """Fan out ``event`` and up to BATCH_SIZE - 1 events queued behind it.

        Events handed over together go out together, so each client's sender
        wakes once per batch instead of once per event. A failing event is
        logged and the others still go out.
        """
        batch = [event]
        while len(batch) < BATCH_SIZE and not self.event_queue.empty():
            batch.append(self.event_queue.get_nowait())
        for event in batch:
            self._fan_out_safely(event)

    def _fan_out_safely(self, event: EventMessage) -> None:
        try:
            self._fan_out(event)
        except Exception as e:
            logger.error("Error in event broadcaster: %s", e)

    def _fan_out(self, event: EventMessage) -> None:
        kept = event.source != HEARTBEAT_SOURCE
        if kept and event.id in self.history:
            # Delivered already: a replay from the Redis history after a
            # broken subscription overlaps what came live.
            self.stats["duplicates"] += 1
            logger.debug("Event %s was sent already, skipping it", event.id)
            return
        frame = event.to_json()
        if kept:
            self.history.add(event, len(frame))
        self.stats["received"] += 1
        clients = 0
        for matcher, members in self.connections.groups():
            if matcher.matches_filters(event):
                self.fan_out.stage(members, frame)
                clients += len(members)
        logger.debug(
            "Event %s sent to %d of %d clients",
            event.event_type,
            clients,
            len(self.connections),
        )


websocket_manager = WebSocketManager()
