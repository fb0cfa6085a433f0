import asyncio
import logging
from typing import Any, Callable, Iterator, List, Tuple
from unittest.mock import AsyncMock, MagicMock

import anyio
import pytest
from kombu.transport import memory

from osism.services.event_bridge import EventBridge
from osism.services.websocket_manager import WebSocketManager
from osism.settings import Settings
from tests.unit.services.bridge_doubles import FakeThread
from tests.unit.services.fake_redis import FakeRedis
from tests.unit.services.openstack_bus import OpenStack
from tests.unit.services.sending_doubles import Setup

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


REDIS_VARIABLES = (
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_DB",
    "REDIS_CHANNEL",
    "REDIS_SOCKET_TIMEOUT",
    "REDIS_RETRY_DELAY",
    "REDIS_MAX_RETRIES",
    "REDIS_RESTART_MAX_DELAY",
    "REDIS_BUFFER_SIZE",
    "REDIS_SUBSCRIBER_WAIT",
)


@pytest.fixture
def redis_env(monkeypatch) -> None:
    """The settings' defaults for Redis, whatever the environment of the run."""
    for name in REDIS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_redis(mocker, redis_env) -> FakeRedis:
    """A Redis in memory; redis.Redis, as the bridge sees it, connects to it."""
    server = FakeRedis()
    mocker.patch("osism.services.event_bridge.redis.Redis", side_effect=server.client)
    return server


@pytest.fixture
def threads(mocker) -> List[FakeThread]:
    """The bridge's threads, made but not started: a test runs a thread's body
    itself (``FakeThread.run``)."""
    made: List[FakeThread] = []

    def start_daemon(target: Callable[[], None], part: str) -> FakeThread:
        thread = FakeThread(target, part)
        made.append(thread)
        return thread

    mocker.patch("osism.services.bridge.threads.start_daemon", side_effect=start_daemon)
    return made


@pytest.fixture
def make_bridge(fake_redis, threads, bridge_logs) -> Callable[..., EventBridge]:
    """Makes a bridge with settings given as keyword arguments (the rest
    defaults), on the fake Redis, its threads not started; its logs are
    captured from the start."""

    def make(connect: bool = True, **settings: Any) -> EventBridge:
        return EventBridge(connect=connect, settings=Settings(**settings))

    return make


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


@pytest.fixture
async def setup(make_websocket):
    """ClientSending over fake clients (sending_doubles); the sender tasks
    it started are cancelled and awaited afterwards."""
    made = Setup(make_websocket)
    yield made
    for task in made.tasks:
        task.cancel()
    with anyio.fail_after(5):
        await asyncio.gather(*made.tasks, return_exceptions=True)
