"""Hostile input, generated: property-based tests (hypothesis) of the client
frame protocol and the ingest body, and schemathesis over the OpenAPI schema
of the HTTP routes. Whatever arrives gets a clear answer: an error frame, a
4xx naming the problem, never a 500 or an exception that escapes."""

import json
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osism.api import create_app
from osism.ingest import InvalidBody, parse_notification
from osism.services.client_frames import FrameError, Resume, SetFilters
from osism.services.client_frames import parse_client_frame
from osism.services.websocket_manager import WebSocketManager
from osism.settings import Settings

# JSON values of every shape, strings with any code point (lone surrogates,
# controls, markup) included.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
frame_objects = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["set_filters", "resume", "x"]) | json_values,
        "event_filters": json_values | st.lists(st.text(), max_size=5),
        "node_filters": json_values | st.lists(st.text(), max_size=5),
        "service_filters": json_values | st.lists(st.text(), max_size=5),
        "last_event_id": json_values,
    },
)


# Module-level tests, not methods: hypothesis refuses a test run from
# several instances of its class, which mutmut's repeated runs make.


@given(st.text())
def test_any_text_is_a_client_request_or_a_frame_error(text):
    try:
        request = parse_client_frame(text, 65_536)
    except FrameError as e:
        assert str(e)
    else:
        assert isinstance(request, (SetFilters, Resume))


@given(frame_objects)
def test_any_object_is_a_client_request_or_a_frame_error(frame):
    try:
        request = parse_client_frame(json.dumps(frame), 65_536, 3)
    except FrameError as e:
        assert str(e)
        return
    if isinstance(request, SetFilters):
        for values in request:
            assert values is None or (
                len(values) <= 3 and all(isinstance(v, str) for v in values)
            )
    else:
        assert isinstance(request.last_event_id, str) and request.last_event_id


@given(st.binary(max_size=200))
def test_any_posted_bytes_are_a_notification_or_invalid(body):
    try:
        parse_notification(body, 8)
    except InvalidBody as e:
        assert e.errors and all(error["loc"][0] == "body" for error in e.errors)


@given(json_values, json_values)
def test_any_posted_json_is_a_notification_or_invalid(event_type, payload):
    body = json.dumps(
        {"event_type": event_type, "payload": payload}, ensure_ascii=False
    ).encode("utf-8", "surrogatepass")
    try:
        notification = parse_notification(body, 8)
    except InvalidBody as e:
        assert e.errors
    else:
        # What gets in can be serialised and read back as it was.
        text = json.dumps(notification.model_dump())
        assert json.loads(text)["event_type"] == notification.event_type


class RecordingBridge:
    """An event bridge that takes events and keeps them; nothing is streamed
    (schemathesis runs the app's lifespan once per call, each on a loop of
    its own)."""

    def __init__(self) -> None:
        self.added: list = []

    def add_event(self, *event: Any) -> None:
        self.added.append(event)

    def set_websocket_manager(self, manager: Any) -> None:
        pass

    def loads_history(self) -> bool:
        return False

    def shutdown(self) -> None:
        pass

    def health(self) -> dict:
        return {"mode": "embedded", "outage": None}


def app_under_test() -> Any:
    bridge: Any = RecordingBridge()
    return create_app(
        WebSocketManager(send_timeout=5.0, max_pending=10),
        bridge,
        Settings(heartbeat_interval=3600, max_event_bytes=10_000),
    )


schema = schemathesis.openapi.from_asgi("/openapi.json", app_under_test())


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_the_schema_allows_or_not_gets_a_server_error(case):
    response = case.call()

    assert response.status_code < 500, (case.method, case.path, response.text)
