"""The HTTP and WebSocket API of osism events.

:func:`create_app` builds the FastAPI app around one WebSocket manager and
one event bridge; its lifespan wires them together, runs the heartbeat, and on
exit stops the bridge's threads and the manager's tasks.

``app`` is the API as OSISM's containers start it (``uvicorn osism.api:app``),
around the module's singletons and the settings of the environment. Building
it connects to nothing and starts no thread; its lifespan does that once a
server runs it.
"""

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator, Dict, List, Optional

from fastapi import APIRouter, FastAPI, Request, WebSocket
from pydantic import BaseModel, Field

from osism import logs
from osism.services.client_frames import (
    FILTER_KEYS,
    FrameError,
    Resume,
    checked_event_id,
    error_frame,
    filter_update_frame,
    parse_client_frame,
)
from osism.services.event_bridge import EventBridge, event_bridge
from osism.services.websocket_manager import WebSocketManager, websocket_manager
from osism.settings import Settings, get_settings

logger = logging.getLogger("osism.api")

EVENTS_PATH = "/v1/events/openstack"

router = APIRouter()


class Notification(BaseModel):
    """One OpenStack notification, as the ingest endpoint takes it."""

    event_type: str = Field(min_length=1, examples=["baremetal.node.power_set.end"])
    payload: Dict[str, Any] = Field(
        examples=[{"ironic_object.data": {"name": "node1", "uuid": "abc-123"}}]
    )
    publisher_id: Optional[str] = None
    priority: Optional[str] = None
    message_id: Optional[str] = None
    timestamp: Optional[str] = None


@router.get("/")
@router.get("/v1")
def liveness() -> Dict[str, str]:
    return {"status": "ok", "service": "osism events"}


@router.get("/v1/events")
def events_info() -> Dict[str, Any]:
    return {
        "websocket": EVENTS_PATH,
        "frames": "event JSON: id, timestamp, event_type, source, node_name, data",
        "filters": {
            "send": {
                "action": "set_filters",
                "event_filters": ["baremetal.node.power_set.end"],
                "node_filters": ["node1"],
                "service_filters": ["baremetal"],
            },
            "reply": {"type": "filter_update", "status": "success"},
            "semantics": "each non-empty list must contain the event's value; "
            "lists combine with AND; [] clears a list, a missing key keeps it",
        },
        "ingest": "POST /v1/events with event_type and payload",
    }


@router.post("/v1/events", status_code=202)
def ingest(notification: Notification, request: Request) -> Dict[str, Any]:
    # A plain function: FastAPI runs it in its thread pool, so a slow Redis
    # never blocks the event loop that serves the WebSocket clients.
    bridge: EventBridge = request.app.state.event_bridge
    bridge.add_event(
        notification.event_type, notification.payload, notification.publisher_id
    )
    return {
        "status": "accepted",
        "event_type": notification.event_type,
        "message_id": notification.message_id,
    }


@router.get("/v1/events/health")
def health(request: Request) -> Dict[str, Any]:
    bridge: EventBridge = request.app.state.event_bridge
    manager: WebSocketManager = request.app.state.websocket_manager
    bridge_health = bridge.health()
    # "degraded": Redis should be there and is not; events are being kept
    # for it (see bridge.buffered) and only local clients get them now.
    status = "ok" if bridge_health.get("outage") is None else "degraded"
    return {"status": status, "bridge": bridge_health, "websocket": manager.health()}


@router.websocket(EVENTS_PATH)
async def openstack_events(websocket: WebSocket) -> None:
    """The event stream. Query parameters, all optional: ``event_filters``,
    ``node_filters``, ``service_filters`` (repeated: one value each) set
    filters, and ``last_event_id`` resumes after that event, at once on
    connecting, so the replay comes before anything live."""
    manager: WebSocketManager = websocket.app.state.websocket_manager
    settings: Settings = websocket.app.state.settings
    await manager.connect(websocket)
    try:
        for reply in _apply_query(manager, websocket):
            manager.send_to(websocket, reply)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                reply = error_frame("binary frames are not supported; send JSON text")
            else:
                reply = await _apply_client_frame(manager, websocket, text, settings)
            manager.send_to(websocket, reply)
    finally:
        await manager.disconnect(websocket)


def _apply_query(
    manager: WebSocketManager, websocket: WebSocket
) -> List[Dict[str, Any]]:
    """Filters and resume given as query parameters; the replies, if any.

    Runs right after connecting and before any await, so no live event can
    reach the client between its filters, its replay and the live stream.
    """
    query = websocket.query_params
    replies: List[Dict[str, Any]] = []
    filters = {key: query.getlist(key) for key in FILTER_KEYS if key in query}
    connection = manager.connections.get(websocket)
    if filters and connection is not None:
        connection.set_filters(**filters)
        replies.append(
            filter_update_frame(
                connection.event_filters,
                connection.node_filters,
                connection.service_filters,
            )
        )
    if "last_event_id" in query:
        try:
            last_event_id = checked_event_id(query["last_event_id"])
        except FrameError as e:
            replies.append(error_frame(str(e)))
        else:
            replies.append(manager.resume(websocket, last_event_id))
    return replies


async def _apply_client_frame(
    manager: WebSocketManager, websocket: WebSocket, text: str, settings: Settings
) -> Dict[str, Any]:
    try:
        request = parse_client_frame(text, settings.websocket_max_frame_bytes)
    except FrameError as e:
        return error_frame(str(e))
    if isinstance(request, Resume):
        return manager.resume(websocket, request.last_event_id)
    await manager.update_filters(websocket, *request)
    connection = manager.connections.get(websocket)
    if connection is None:
        return error_frame("connection is closing")
    return filter_update_frame(
        connection.event_filters, connection.node_filters, connection.service_filters
    )


async def _send_heartbeats(manager: WebSocketManager, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await manager.send_heartbeat()


def create_app(
    manager: Optional[WebSocketManager] = None,
    bridge: Optional[EventBridge] = None,
    settings: Optional[Settings] = None,
    set_up_logging: bool = False,
) -> FastAPI:
    """The API around ``manager`` and ``bridge`` (the module singletons by default).

    ``set_up_logging``: at start-up, log osism's messages at LOG_LEVEL unless
    logging is already set up (for servers that only set up their own
    loggers, as uvicorn does).
    """
    settings = get_settings() if settings is None else settings
    if manager is None:
        manager = websocket_manager
        manager.apply_settings(settings)
    bridge = event_bridge if bridge is None else bridge

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if set_up_logging:
            logs.configure_unless_configured(settings.log_level)
        await manager.start()
        # Attaching tries Redis, which may take up to its connect timeout:
        # in a thread, so the API serves at once (embedded until it is done).
        attaching = asyncio.create_task(
            asyncio.to_thread(bridge.set_websocket_manager, manager)
        )
        heartbeat = asyncio.create_task(
            _send_heartbeats(manager, settings.heartbeat_interval)
        )
        logger.info("osism events API started")
        try:
            yield
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, attaching, return_exceptions=True)
            await asyncio.to_thread(bridge.shutdown)
            await manager.stop()
            logger.info("osism events API stopped")

    # /docs and /redoc are off: their pages load Swagger UI and ReDoc from a
    # CDN, which an OSISM manager often cannot reach. The schema stays at
    # /openapi.json.
    app = FastAPI(
        title="osism events",
        description="The OpenStack event stream of the OSISM manager",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.websocket_manager = manager
    app.state.event_bridge = bridge
    app.state.settings = settings
    app.include_router(router)
    return app


app = create_app(set_up_logging=True)
