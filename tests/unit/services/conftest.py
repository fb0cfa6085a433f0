import logging
from typing import Callable, Iterator, List, Tuple
from unittest.mock import AsyncMock, MagicMock

import pytest
from kombu.transport import memory

from osism.services.event_bridge import EventBridge
from osism.services.websocket_manager import WebSocketManager
from tests.unit.services.openstack_bus import OpenStack

LogRecordTuple = Tuple[str, int, str]


@pytest.fixture
def make_websocket() -> Callable[[], MagicMock]:
    """Factory of fake FastAPI WebSockets whose awaited methods are AsyncMocks."""

    def make() -> MagicMock:
        websocket = MagicMock()
        websocket.accept = AsyncMock()
        websocket.send_text = AsyncMock()
        websocket.close = AsyncMock()
        return websocket

    return make


@pytest.fixture
def manager() -> WebSocketManager:
    return WebSocketManager(send_timeout=5.0, max_pending=100)


@pytest.fixture(autouse=True)
def start_reconnector(mocker) -> MagicMock:
    """No real reconnector thread: tests call _reconnect_loop themselves."""
    return mocker.patch.object(EventBridge, "_start_reconnector")


@pytest.fixture
def starters(mocker) -> Tuple[MagicMock, MagicMock]:
    """No subscriber or processor thread: their starters are stand-ins."""
    return (
        mocker.patch.object(EventBridge, "_start_redis_subscriber"),
        mocker.patch.object(EventBridge, "_start_processor_thread"),
    )


@pytest.fixture
def redis_cls(mocker) -> MagicMock:
    """redis.Redis as the event bridge sees it; ping() succeeds."""
    return mocker.patch("osism.services.event_bridge.redis.Redis")


@pytest.fixture
def redis_client(redis_cls) -> MagicMock:
    return redis_cls.return_value


@pytest.fixture
def bridge(redis_cls) -> EventBridge:
    """A fresh bridge connected to a mocked Redis."""
    return EventBridge()


@pytest.fixture
def offline_bridge(redis_cls) -> EventBridge:
    """A fresh bridge whose Redis did not answer: it uses the local queue."""
    redis_cls.return_value.ping.side_effect = ConnectionError("refused")
    return EventBridge()


@pytest.fixture
def bridge_logs(caplog) -> Callable[[], List[LogRecordTuple]]:
    caplog.set_level(logging.DEBUG, logger="osism.event_bridge")
    return lambda: [r for r in caplog.record_tuples if r[0] == "osism.event_bridge"]


@pytest.fixture
def websocket_logs(caplog) -> Callable[[], List[LogRecordTuple]]:
    caplog.set_level(logging.DEBUG, logger="osism.websocket")
    return lambda: [r for r in caplog.record_tuples if r[0] == "osism.websocket"]


@pytest.fixture
def memory_broker() -> Iterator[None]:
    """kombu's in-memory transport, empty before and after the test (its
    exchanges, bindings and queues are process-wide)."""

    def clear() -> None:
        memory.Transport.global_state.clear()
        memory.Channel.queues.clear()
        memory.Channel.events.clear()

    clear()
    yield
    clear()


@pytest.fixture
def listener_logs(caplog) -> Callable[[], List[LogRecordTuple]]:
    caplog.set_level(logging.DEBUG, logger="osism.listener")
    return lambda: [r for r in caplog.record_tuples if r[0] == "osism.listener"]


@pytest.fixture
def openstack() -> OpenStack:
    """The services' side of kombu's in-memory broker (needs memory_broker)."""
    return OpenStack()
