"""Unit tests of osism.services.frame_writer: finding the FrameWriter a
server offers in a WebSocket's ASGI scope."""

from types import SimpleNamespace
from typing import Any, Dict, List, MutableMapping
from unittest.mock import MagicMock

import pytest
from starlette.websockets import WebSocket

from osism.services.frame_writer import DIRECT_WRITE, FrameBatch, frame_writer_of
from osism.services.websocket_connection import WebSocketConnection


class RecordingWriter:
    def __init__(self) -> None:
        self.frames: List[str] = []

    def write_text_now(self, text: str) -> bool:
        self.frames.append(text)
        return True

    def write_frames_now(self, batch: FrameBatch) -> bool:
        self.frames.extend(batch.texts)
        return True

    def flush(self) -> None:
        pass  # the frames are kept as written


def websocket_scope(extensions: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "type": "websocket",
        "path": "/v1/events/openstack",
        "headers": [],
        "extensions": extensions,
    }


async def no_receive() -> MutableMapping[str, Any]:
    raise AssertionError("the ASGI channel is not used here")


async def no_send(message: MutableMapping[str, Any]) -> None:
    raise AssertionError("the ASGI channel is not used here")


def test_the_extension_name_is_osism_direct_write():
    # Servers other than osism's own may offer it under this name.
    assert DIRECT_WRITE == "osism.direct_write"


def test_the_writer_offered_in_the_scope_is_found():
    writer = RecordingWriter()
    websocket = SimpleNamespace(
        scope={"extensions": {DIRECT_WRITE: {"writer": writer}}}
    )

    assert frame_writer_of(websocket) is writer


def test_a_starlette_websocket_finds_the_writer_of_its_scope():
    writer = RecordingWriter()
    scope = websocket_scope(
        {"websocket.http.response": {}, DIRECT_WRITE: {"writer": writer}}
    )

    websocket = WebSocket(scope, no_receive, no_send)

    assert frame_writer_of(websocket) is writer


@pytest.mark.parametrize(
    "websocket",
    [
        pytest.param(object(), id="no-scope"),
        pytest.param(SimpleNamespace(scope=None), id="scope-none"),
        pytest.param(SimpleNamespace(scope=[("extensions", {})]), id="scope-not-dict"),
        pytest.param(SimpleNamespace(scope={}), id="no-extensions"),
        pytest.param(
            SimpleNamespace(scope={"extensions": {"websocket.http.response": {}}}),
            id="other-extensions-only",
        ),
        pytest.param(
            SimpleNamespace(scope={"extensions": {DIRECT_WRITE: RecordingWriter()}}),
            id="offer-not-a-dict",
        ),
        pytest.param(
            SimpleNamespace(scope={"extensions": {DIRECT_WRITE: None}}),
            id="offer-none",
        ),
        pytest.param(
            SimpleNamespace(scope={"extensions": {DIRECT_WRITE: {}}}),
            id="offer-without-writer",
        ),
    ],
)
def test_without_an_offer_there_is_no_writer(websocket):
    assert frame_writer_of(websocket) is None


def test_a_mock_websocket_has_no_writer():
    # The unit tests' fake websockets (MagicMock) take the outbox path.
    assert frame_writer_of(MagicMock()) is None


def test_a_connection_takes_the_writer_its_websocket_offers():
    writer = RecordingWriter()
    scope = websocket_scope({DIRECT_WRITE: {"writer": writer}})

    connection = WebSocketConnection(WebSocket(scope, no_receive, no_send))

    assert connection.writer is writer


def test_a_connection_without_an_offer_has_no_writer():
    scope = websocket_scope({"websocket.http.response": {}})

    connection = WebSocketConnection(WebSocket(scope, no_receive, no_send))

    assert connection.writer is None
