"""The WebSocket route of the API, ``/v1/events/openstack``: who may
connect, the filters and resume given on connecting, and the frames a client
sends, within their bounds."""

import logging
from typing import Any, Dict, List, Optional, Tuple

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse

from osism.access import (
    TOKEN_PARAMETER,
    bearer_token,
    origin_allowed,
    own_origin,
    token_accepted,
)
from osism.frame_rate import FrameRate
from osism.http_routes import EVENTS_PATH
from osism.services.client_frames import (
    FILTER_KEYS,
    FrameError,
    Resume,
    checked_event_id,
    checked_filter_list,
    error_frame,
    filter_update_frame,
    parse_client_frame,
)
from osism.services.resume_wait import history_ready
from osism.services.websocket_manager import WebSocketManager
from osism.settings import Settings

logger = logging.getLogger("osism.api")

# Close codes (RFC 6455): a policy violation (flooding), try again later
# (no room for another client).
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013

router = APIRouter()


def _refusal(websocket: WebSocket, settings: Settings) -> Optional[Tuple[int, str]]:
    """Why the upgrade is refused (HTTP status, detail), or None."""
    origin = websocket.headers.get("origin")
    own = own_origin(websocket.url.scheme, websocket.headers)
    if not origin_allowed(origin, own, settings.allowed_origins):
        return 403, "this origin may not connect (ALLOWED_ORIGINS)"
    token = bearer_token(websocket.headers) or websocket.query_params.get(
        TOKEN_PARAMETER
    )
    if not token_accepted(token, settings.events_read_token):
        return 401, "a valid read token is needed (Authorization: Bearer, or ?token=)"
    return None


async def _deny(websocket: WebSocket, status: int, detail: str) -> None:
    """Answer the upgrade request with ``status``, before any upgrade."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        await websocket.send_denial_response(
            JSONResponse({"detail": detail}, status_code=status, headers=headers)
        )
    else:  # pragma: no cover - every server this runs on has the extension
        await websocket.close(code=CLOSE_POLICY)


@router.websocket(EVENTS_PATH)
async def openstack_events(websocket: WebSocket) -> None:
    """The event stream. Query parameters, all optional: ``event_filters``,
    ``node_filters``, ``service_filters`` (repeated: one value each) set
    filters, and ``last_event_id`` resumes after that event, at once on
    connecting, so the replay comes before anything live; while the Redis
    history is not loaded yet, the connection is accepted once it is (at most
    RESUME_HISTORY_WAIT seconds, see resume_wait)."""
    manager: WebSocketManager = websocket.app.state.websocket_manager
    settings: Settings = websocket.app.state.settings
    refusal = _refusal(websocket, settings)
    if refusal is not None:
        await _deny(websocket, *refusal)
        return
    if len(manager.connections) >= settings.websocket_max_clients:
        await websocket.accept()
        await websocket.close(code=CLOSE_TRY_LATER, reason="too many clients")
        logger.warning(
            "Refused a WebSocket client: %d are connected (WEBSOCKET_MAX_CLIENTS)",
            len(manager.connections),
        )
        return
    if "last_event_id" in websocket.query_params:
        # Before connecting, so the replay still comes before anything live.
        await history_ready(
            manager,
            websocket.query_params["last_event_id"],
            settings.resume_history_wait,
        )
    await manager.connect(websocket)
    budget = FrameRate(settings.websocket_max_frames_per_second)
    try:
        for reply in _apply_query(manager, websocket, settings):
            manager.send_to(websocket, reply)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if not budget.take():
                if budget.flooding:
                    await manager.close(websocket, CLOSE_POLICY, "too many frames")
                    break
                if budget.refused_in_a_row == 1:
                    manager.send_to(
                        websocket,
                        error_frame(
                            "too many frames: at most "
                            f"{settings.websocket_max_frames_per_second:g} a second; "
                            "this one was ignored"
                        ),
                    )
                continue
            text = message.get("text")
            if text is None:
                reply = error_frame("binary frames are not supported; send JSON text")
            else:
                reply = await _apply_client_frame(manager, websocket, text, settings)
            manager.send_to(websocket, reply)
    finally:
        await manager.disconnect(websocket)


def _apply_query(
    manager: WebSocketManager, websocket: WebSocket, settings: Settings
) -> List[Dict[str, Any]]:
    """Filters and resume given as query parameters; the replies, if any.

    Runs right after connecting and before any await, so no live event can
    reach the client between its filters, its replay and the live stream.
    """
    query = websocket.query_params
    replies: List[Dict[str, Any]] = []
    connection = manager.connections.get(websocket)
    try:
        filters = {
            key: checked_filter_list(
                key, query.getlist(key), settings.websocket_max_filter_values
            )
            for key in FILTER_KEYS
            if key in query
        }
    except FrameError as e:
        filters = {}
        replies.append(error_frame(str(e)))
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
        request = parse_client_frame(
            text,
            settings.websocket_max_frame_bytes,
            settings.websocket_max_filter_values,
        )
    except FrameError as e:
        return error_frame(str(e))
    if isinstance(request, Resume):
        await history_ready(
            manager, request.last_event_id, settings.resume_history_wait
        )
        return manager.resume(websocket, request.last_event_id)
    await manager.update_filters(websocket, *request)
    connection = manager.connections.get(websocket)
    if connection is None:
        return error_frame("connection is closing")
    return filter_update_frame(
        connection.event_filters, connection.node_filters, connection.service_filters
    )


class StreamShortcut:
    """ASGI middleware: the event stream's WebSocket goes straight to
    :func:`openstack_events`, past the router and the per-request machinery
    of FastAPI (exit stacks, dependency solving, exception handlers), which
    a connection holds for its whole life: about 12 KiB of every idle client.
    Added last, it runs just inside Starlette's error middleware (which lets
    WebSockets pass); every other request goes on as before."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and _route_path(scope) == EVENTS_PATH:
            await openstack_events(WebSocket(scope, receive, send))
        else:
            await self.app(scope, receive, send)


def _route_path(scope: Any) -> str:
    """The request's path below the app's root path (as Starlette routes)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
