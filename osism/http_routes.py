"""The HTTP routes of the API: liveness, the stream's description, the ingest
of notifications, health. (``GET /`` is in ui_route: a browser gets the
events page there.)"""

from typing import Any, Dict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from osism.access import bearer_token, token_accepted
from osism.ingest import (
    BodyTooLarge,
    InvalidBody,
    Notification,
    parse_notification,
    read_body,
)
from osism.services.event_bridge import EventBridge
from osism.services.event_message import new_event_id, utc_now_text
from osism.services.websocket_manager import WebSocketManager
from osism.settings import Settings

EVENTS_PATH = "/v1/events/openstack"

router = APIRouter()


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
        "resume": {
            "send": {"action": "resume", "last_event_id": "<id>"},
            "reply": {"type": "resume", "status": "success", "replayed": 0},
            "gap": {"type": "gap", "last_event_id": "<id>", "message": "..."},
            "query": "?last_event_id=<id> (and the filter lists) on connecting",
        },
        "ingest": "POST /v1/events with event_type and payload",
    }


@router.post(
    "/v1/events",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": Notification.model_json_schema()}
            },
        }
    },
    responses={
        401: {"description": "EVENTS_WRITE_TOKEN is set and was not given"},
        413: {"description": "The body is over MAX_EVENT_BYTES"},
        422: {"description": "The body is not an acceptable notification"},
    },
)
async def ingest(request: Request) -> Any:
    """Take one OpenStack notification into the stream."""
    settings: Settings = request.app.state.settings
    if not token_accepted(bearer_token(request.headers), settings.events_write_token):
        return JSONResponse(
            {"detail": "a valid write token is needed (Authorization: Bearer)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        body = await read_body(request, settings.max_event_bytes)
        notification = parse_notification(body, settings.max_json_depth)
    except BodyTooLarge as e:
        return JSONResponse({"detail": str(e)}, status_code=413)
    except InvalidBody as e:
        return JSONResponse({"detail": e.errors}, status_code=422)
    bridge: EventBridge = request.app.state.event_bridge
    # The event's id where it enters the stream: the notification's
    # message_id when it has one (posting it again sends it to nobody twice).
    event_id = notification.message_id or new_event_id()
    # In a worker thread: a slow Redis never blocks the event loop that
    # serves the WebSocket clients.
    await run_in_threadpool(
        bridge.add_event,
        notification.event_type,
        notification.payload,
        notification.publisher_id,
        event_id,
        utc_now_text(),
    )
    return {
        "status": "accepted",
        "event_type": notification.event_type,
        "message_id": notification.message_id,
        "id": event_id,
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
