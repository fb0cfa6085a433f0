"""The frames a WebSocket client sends to /v1/events/openstack, checked.

A client sends ``{"action": "set_filters", "event_filters": [...],
"node_filters": [...], "service_filters": [...]}``; each list is optional
(left out or null keeps the current one, ``[]`` clears it). After a
disconnect it sends ``{"action": "resume", "last_event_id": "<id>"}`` to get
what it missed. Anything else gets an error frame naming what is wrong; the
connection stays open.
"""

import json
from typing import Any, Dict, List, NamedTuple, Optional, Union

FILTER_KEYS = ("event_filters", "node_filters", "service_filters")
ACTIONS = ("set_filters", "resume")
# Event ids are UUIDs (36 characters); anything much longer is not one.
MAX_EVENT_ID_LENGTH = 128
# The longest value a filter may hold: longer than any event type, node
# name or service name.
MAX_FILTER_VALUE_LENGTH = 255
# Values one filter list may hold, unless the caller says otherwise
# (WEBSOCKET_MAX_FILTER_VALUES).
DEFAULT_MAX_FILTER_VALUES = 100


class FrameError(ValueError):
    """A client frame that cannot be accepted; the message is for the client."""


class SetFilters(NamedTuple):
    event_filters: Optional[List[str]]
    node_filters: Optional[List[str]]
    service_filters: Optional[List[str]]


class Resume(NamedTuple):
    last_event_id: str


def checked_event_id(value: Any) -> str:
    """``value`` as the id of an event a client names, or FrameError."""
    if not isinstance(value, str) or not value:
        raise FrameError("'last_event_id' must be a non-empty string")
    if len(value) > MAX_EVENT_ID_LENGTH:
        raise FrameError(
            f"'last_event_id' is longer than {MAX_EVENT_ID_LENGTH} characters"
        )
    return value


def checked_filter_list(key: str, value: Any, max_values: int) -> List[str]:
    """``value`` as a filter list: strings, at most ``max_values`` of them, none
    longer than MAX_FILTER_VALUE_LENGTH; or FrameError."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FrameError(f"'{key}' must be a list of strings")
    if len(value) > max_values:
        raise FrameError(f"'{key}' holds {len(value)} values; at most {max_values}")
    if any(len(v) > MAX_FILTER_VALUE_LENGTH for v in value):
        raise FrameError(
            f"a value of '{key}' is longer than {MAX_FILTER_VALUE_LENGTH} characters"
        )
    return value


def parse_client_frame(
    text: str, max_bytes: int, max_filter_values: int = DEFAULT_MAX_FILTER_VALUES
) -> Union[SetFilters, Resume]:
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise FrameError(f"frame of {size} bytes is larger than {max_bytes} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FrameError(f"frame is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise FrameError(f"frame must be a JSON object, not {type(data).__name__}")
    action = data.get("action")
    if action not in ACTIONS:
        raise FrameError(
            f"unknown action {action!r}; supported: 'set_filters', 'resume'"
        )
    keys = FILTER_KEYS if action == "set_filters" else ("last_event_id",)
    unknown = sorted(set(data) - {"action", *keys})
    if unknown:
        raise FrameError(
            f"unknown key(s) {', '.join(unknown)}; {action} takes {', '.join(keys)}"
        )
    if action == "resume":
        return Resume(checked_event_id(data.get("last_event_id")))
    return SetFilters(
        *(
            (
                None
                if data.get(key) is None
                else checked_filter_list(key, data[key], max_filter_values)
            )
            for key in FILTER_KEYS
        )
    )


def error_frame(message: str) -> Dict[str, Any]:
    return {"type": "error", "message": message}


def filter_update_frame(
    event_filters: List[str], node_filters: List[str], service_filters: List[str]
) -> Dict[str, Any]:
    return {
        "type": "filter_update",
        "status": "success",
        "event_filters": event_filters,
        "node_filters": node_filters,
        "service_filters": service_filters,
    }


def resume_frame(replayed: int) -> Dict[str, Any]:
    return {"type": "resume", "status": "success", "replayed": replayed}


def gap_frame(last_event_id: str, message: str) -> Dict[str, Any]:
    return {"type": "gap", "last_event_id": last_event_id, "message": message}
