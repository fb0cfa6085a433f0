"""Clean shutdown: the lifespan stops what it started, in process; SIGTERM
ends the server process after a graceful shutdown."""

import json
import signal

import anyio
import pytest
from websockets.exceptions import ConnectionClosed

from osism.api import create_app
from osism.services.event_bridge import EventBridge
from osism.services.websocket_manager import WebSocketManager
from osism.settings import get_settings
from tests.harness.clients import open_stream, wait_for_health
from tests.harness.in_process import bridge_threads
from tests.harness.notifications import ironic
from tests.harness.ports import LOOPBACK
from tests.harness.processes import STOP_DEADLINE
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.redis]

# uvicorn (0.29 and later) re-raises the SIGTERM it handled once its graceful
# shutdown is done, so the process ends by that signal (-15 for Popen, 143 in
# a shell) rather than with exit code 0.
CLEAN_EXIT_CODES = (0, -signal.SIGTERM)


class TestTheLifespanStartsAndStopsTheBridgeAndTheBroadcaster:
    @pytest.mark.anyio
    async def test_threads_and_broadcaster(self, redis_server, channel, monkeypatch):
        monkeypatch.setenv("REDIS_HOST", LOOPBACK)
        monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
        monkeypatch.setenv("REDIS_CHANNEL", channel)
        monkeypatch.setenv("HEARTBEAT_INTERVAL", "3600")
        manager = WebSocketManager(send_timeout=5.0, max_pending=100)
        bridge = EventBridge(connect=False)
        app = create_app(manager=manager, bridge=bridge, settings=get_settings())
        # Nothing runs before the lifespan starts.
        assert bridge_threads() == []
        assert manager.health()["broadcaster_running"] is False

        async with app.router.lifespan_context(app):
            await wait_until(lambda: len(bridge_threads()) == 2)
            assert bridge_threads() == [
                "osism-event-bridge-processor",
                "osism-event-bridge-subscriber",
            ]
            assert manager.health()["broadcaster_running"] is True
            await wait_until(lambda: redis_server.subscribers(channel) == 1)
            # Wired up: a message on the channel reaches the manager.
            with redis_server.client() as client:
                client.publish(channel, json.dumps(ironic("power_set.end", "node1")))
            await wait_until(lambda: manager.stats["received"] == 1)

        assert bridge_threads() == []
        assert manager.health()["broadcaster_running"] is False
        assert bridge.health()["subscriber_alive"] is False
        assert redis_server.subscribers(channel) == 0


class TestSigtermEndsTheServerAfterAGracefulShutdown:
    def test_idle_server(self, api_server):
        server = api_server("redis")
        assert server.stop() in CLEAN_EXIT_CODES
        output = server.output()
        assert "osism.api: osism events API stopped" in output
        assert "osism.event_bridge: Redis subscriber stopped" in output
        assert "INFO:     Application shutdown complete." in output
        assert "Traceback" not in output

    @pytest.mark.anyio
    async def test_server_with_a_connected_client(self, api_server):
        server = api_server("redis")
        async with open_stream(server.ws_url, node_filters=["node1"]) as stream:
            await wait_for_health(server, lambda h: h["websocket"]["clients"] == 1)
            server.terminate()
            # The client is told the server is going away.
            with pytest.raises(ConnectionClosed) as closed:
                await stream.receive(timeout=STOP_DEADLINE)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001  # going away, after the drain
            code = await anyio.to_thread.run_sync(server.wait_stopped)
        assert code in CLEAN_EXIT_CODES
        output = server.output()
        assert "osism.api: osism events API stopped" in output
        assert "Traceback" not in output
