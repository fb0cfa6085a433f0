"""Unit tests of osism.api, in process, with a stand-in for the event bridge."""

import json
import runpy
import subprocess
import sys
import time
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect
from fastapi.testclient import TestClient

import osism.api
from osism.api import create_app
from osism.services.event_bridge import event_bridge
from osism.services.websocket_manager import WebSocketManager, websocket_manager
from osism.settings import Settings
from tests.event_format import EVENT_KEYS


class FakeBridge:
    """Does what the bridge does in embedded mode, without threads or Redis."""

    def __init__(self):
        self.manager: Any = None
        self.added = []
        self.ids = []
        self.shut_down = False

    def set_websocket_manager(self, manager):
        self.manager = manager

    def loads_history(self):
        return False

    def add_event(
        self, event_type, payload, publisher_id=None, event_id=None, timestamp=None
    ):
        self.added.append((event_type, payload, publisher_id))
        self.ids.append((event_id, timestamp))
        self.manager.loop.call_soon_threadsafe(
            self.manager.enqueue_notification,
            event_type,
            payload,
            publisher_id,
            event_id,
            timestamp,
        )

    outage = None

    def health(self):
        return {"mode": "embedded", "redis_connected": False, "outage": self.outage}

    def shutdown(self):
        self.shut_down = True


@pytest.fixture
def settings():
    return Settings(heartbeat_interval=3600, websocket_max_frame_bytes=256)


@pytest.fixture
def bridge():
    return FakeBridge()


@pytest.fixture
def manager():
    return WebSocketManager(send_timeout=5.0, max_pending=100)


@pytest.fixture
def client(manager, bridge, settings):
    with TestClient(create_app(manager, bridge, settings)) as client:
        yield client


EVENTS = "/v1/events/openstack"


def ironic_event(name="node1", uuid="abc-123"):
    return {
        "event_type": "baremetal.node.power_set.end",
        "payload": {"ironic_object.data": {"name": name, "uuid": uuid}},
    }


class TestHttpRoutes:
    @pytest.mark.parametrize("path", ["/", "/v1"])
    def test_liveness(self, client, path):
        response = client.get(path)

        assert response.status_code == 200
        assert response.json() == {"status": "ok", "service": "osism events"}

    def test_events_info_names_the_websocket_and_the_filter_protocol(self, client):
        info = client.get("/v1/events").json()

        assert info["websocket"] == "/v1/events/openstack"
        assert info["filters"]["send"]["action"] == "set_filters"
        assert info["filters"]["reply"] == {
            "type": "filter_update",
            "status": "success",
        }

    def test_health_is_degraded_while_redis_is_out(self, client, bridge):
        bridge.outage = {"since": "2026-11-25T08:00:00Z", "error": "refused"}

        body = client.get("/v1/events/health").json()

        assert body["status"] == "degraded"
        assert body["bridge"]["outage"] == bridge.outage

    def test_health_combines_bridge_and_manager(self, client):
        body = client.get("/v1/events/health").json()

        assert body == {
            "status": "ok",
            "bridge": {"mode": "embedded", "redis_connected": False, "outage": None},
            "websocket": {
                "clients": 0,
                "queue": 0,
                "broadcaster_running": True,
                "history": 0,
                "counters": {
                    "received": 0,
                    "broadcast": 0,
                    "dropped": 0,
                    "invalid": 0,
                    "duplicates": 0,
                    "replayed": 0,
                    "gaps": 0,
                },
            },
        }


class TestIngest:
    def test_a_notification_is_handed_to_the_bridge(self, client, bridge):
        body = {
            **ironic_event(),
            "publisher_id": "ironic-conductor.host1",
            "message_id": "m1",
        }

        response = client.post("/v1/events", json=body)

        assert response.status_code == 202
        assert response.json() == {
            "status": "accepted",
            "event_type": "baremetal.node.power_set.end",
            "message_id": "m1",
            "id": "m1",
        }
        [(event_id, timestamp)] = bridge.ids
        assert event_id == "m1" and timestamp.endswith("Z")
        assert bridge.added == [
            (body["event_type"], body["payload"], "ironic-conductor.host1")
        ]

    def test_without_a_message_id_the_event_gets_an_id_of_its_own(self, client, bridge):
        first = client.post("/v1/events", json=ironic_event()).json()["id"]
        second = client.post("/v1/events", json=ironic_event()).json()["id"]

        assert first != second
        assert [event_id for event_id, _ in bridge.ids] == [first, second]

    def test_the_streamed_event_has_the_id_it_was_given(self, client):
        with client.websocket_connect(EVENTS) as websocket:
            accepted = client.post("/v1/events", json=ironic_event()).json()
            frame = websocket.receive_json()

        assert frame["id"] == accepted["id"]

    def test_without_a_publisher_id_none_is_handed_over(self, client, bridge):
        client.post("/v1/events", json=ironic_event())

        assert bridge.added == [
            ("baremetal.node.power_set.end", ironic_event()["payload"], None)
        ]

    @pytest.mark.parametrize(
        "body, field, kind",
        [
            ({"payload": {}}, "event_type", "missing"),
            ({"event_type": "", "payload": {}}, "event_type", "string_too_short"),
            ({"event_type": "x", "payload": [1]}, "payload", "dict_type"),
            ({"event_type": "x"}, "payload", "missing"),
        ],
    )
    def test_an_invalid_body_gets_422_naming_the_field(
        self, client, bridge, body, field, kind
    ):
        response = client.post("/v1/events", json=body)

        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert (error["loc"], error["type"]) == (["body", field], kind)
        assert bridge.added == []


class TestLifespan:
    def test_start_attaches_the_bridge_and_exit_shuts_everything_down(
        self, manager, bridge, settings
    ):
        with TestClient(create_app(manager, bridge, settings)):
            assert bridge.manager is manager
            assert manager.loop is not None
            broadcaster = manager._broadcaster_task
            assert not broadcaster.done()

        assert bridge.shut_down
        assert broadcaster.done()

    def test_heartbeats_reach_connected_clients(self, manager, bridge):
        app = create_app(manager, bridge, Settings(heartbeat_interval=0.01))
        with TestClient(app) as client:
            with client.websocket_connect("/v1/events/openstack") as websocket:
                heartbeat = websocket.receive_json()

        assert heartbeat["event_type"] == "heartbeat"
        assert heartbeat["data"] == {"message": "ping"}


class TestWebSocket:
    def test_the_stream_skips_fastapis_routing_and_other_sockets_do_not(
        self, client, mocker
    ):
        """StreamShortcut: the stream's endpoint is called straight away."""
        routed = mocker.spy(type(client.app.router), "__call__")
        with client.websocket_connect("/v1/events/openstack") as websocket:
            websocket.send_json({"action": "set_filters"})
            assert websocket.receive_json()["status"] == "success"
        assert routed.call_count == 0
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect("/v1/events/other"):
                pass  # pragma: no cover - the upgrade is refused
        assert routed.call_count == 1

    def test_under_a_root_path_the_stream_is_found_below_it(
        self, manager, bridge, settings
    ):
        app = create_app(manager, bridge, settings)
        with TestClient(app, root_path="/osism") as client:
            with client.websocket_connect("/osism/v1/events/openstack") as websocket:
                websocket.send_json({"action": "set_filters"})
                assert websocket.receive_json()["type"] == "filter_update"

    def test_set_filters_is_answered_with_the_current_filters(self, client):
        with client.websocket_connect("/v1/events/openstack") as websocket:
            websocket.send_json({"action": "set_filters", "node_filters": ["node1"]})
            reply = websocket.receive_json()
            websocket.send_json({"action": "set_filters", "service_filters": ["x"]})
            second = websocket.receive_json()

        assert reply == {
            "type": "filter_update",
            "status": "success",
            "event_filters": [],
            "node_filters": ["node1"],
            "service_filters": [],
        }
        assert second["node_filters"] == ["node1"]
        assert second["service_filters"] == ["x"]

    def test_matching_events_arrive_and_others_do_not(self, client):
        with client.websocket_connect("/v1/events/openstack") as websocket:
            websocket.send_json({"action": "set_filters", "node_filters": ["node1"]})
            websocket.receive_json()
            client.post("/v1/events", json=ironic_event(name="node10"))
            client.post("/v1/events", json=ironic_event(name="node1", uuid="u1"))
            event = websocket.receive_json()

        assert event["event_type"] == "baremetal.node.power_set.end"
        assert event["node_name"] == "node1"
        assert event["source"] == "openstack"
        assert event["data"]["resource_id"] == "u1"

    @pytest.mark.parametrize(
        "send, message",
        [
            (
                lambda ws: ws.send_text("not json"),
                "frame is not valid JSON: Expecting " "value: line 1 column 1 (char 0)",
            ),
            (lambda ws: ws.send_text("[]"), "frame must be a JSON object, not list"),
            (
                lambda ws: ws.send_json({"action": "nope"}),
                "unknown action 'nope'; " "supported: 'set_filters', 'resume'",
            ),
            (
                lambda ws: ws.send_json({"action": "set_filters", "node_filters": "n"}),
                "'node_filters' must be a list of strings",
            ),
            (
                lambda ws: ws.send_text("x" * 300),
                "frame of 300 bytes is larger than " "256 bytes",
            ),
            (
                lambda ws: ws.send_bytes(b"{}"),
                "binary frames are not supported; send " "JSON text",
            ),
        ],
    )
    def test_a_bad_frame_gets_an_error_and_the_connection_stays_open(
        self, client, send, message
    ):
        with client.websocket_connect("/v1/events/openstack") as websocket:
            send(websocket)
            error = websocket.receive_json()
            client.post("/v1/events", json=ironic_event())
            event = websocket.receive_json()

        assert error == {"type": "error", "message": message}
        assert event["node_name"] == "node1"

    def test_a_closed_client_is_disconnected_from_the_manager(self, client, manager):
        with client.websocket_connect("/v1/events/openstack"):
            assert len(manager.connections) == 1

        assert client.get("/v1/events/health").json()["websocket"]["clients"] == 0

    def test_event_frames_are_the_event_json(self, client):
        with client.websocket_connect("/v1/events/openstack") as websocket:
            client.post("/v1/events", json=ironic_event())
            frame = json.loads(websocket.receive_text())

        assert set(frame) == EVENT_KEYS

    def test_filters_for_a_client_dropped_meanwhile_get_an_error(
        self, client, manager, mocker
    ):
        async def drop_instead(websocket, *filters):
            manager.connections.pop(websocket)

        mocker.patch.object(manager, "update_filters", side_effect=drop_instead)
        send_to = mocker.spy(manager, "send_to")
        with client.websocket_connect("/v1/events/openstack") as websocket:
            websocket.send_json({"action": "set_filters"})
            client.get("/v1")

        assert send_to.call_args.args[1] == {
            "type": "error",
            "message": "connection is closing",
        }


def wait_for_received(client, count):
    """Poll health until the broadcaster has fanned out ``count`` events."""
    deadline = time.monotonic() + 5
    while True:
        counters = client.get("/v1/events/health").json()["websocket"]["counters"]
        if counters["received"] >= count:
            return
        assert time.monotonic() < deadline, counters
        time.sleep(0.01)


class LoadingBridge(FakeBridge):
    """A bridge on Redis: the manager's history is loaded when the test says
    so (``load``), as the subscriber does once it subscribed."""

    def loads_history(self):
        return True

    def load(self, *event_ids):
        def load():
            self.manager.remember([("x.y", {}, None, i, None) for i in event_ids])
            self.manager.history.current = True

        self.manager.loop.call_soon_threadsafe(load)


@pytest.fixture
def loading_bridge():
    return LoadingBridge()


class TestResumeAfterARestart:
    """A resume waits for the Redis history (RESUME_HISTORY_WAIT at most)."""

    def test_the_start_marks_the_history_as_to_be_loaded_on_redis_only(
        self, manager, loading_bridge, settings
    ):
        with TestClient(create_app(manager, loading_bridge, settings)):
            assert manager.history.current is False
        embedded = WebSocketManager()
        bridge: Any = FakeBridge()
        with TestClient(create_app(embedded, bridge, settings)):
            assert embedded.history.current is True

    def test_the_resume_action_is_answered_from_the_loaded_history(
        self, manager, loading_bridge, settings
    ):
        with TestClient(create_app(manager, loading_bridge, settings)) as client:
            with client.websocket_connect(EVENTS) as websocket:
                websocket.send_json({"action": "resume", "last_event_id": "e1"})
                loading_bridge.load("e1", "e2")
                replayed, reply = websocket.receive_json(), websocket.receive_json()

        assert replayed["id"] == "e2"
        assert reply == {"type": "resume", "status": "success", "replayed": 1}

    def test_a_resume_in_the_query_is_answered_from_the_loaded_history(
        self, manager, loading_bridge, settings
    ):
        with TestClient(create_app(manager, loading_bridge, settings)) as client:
            loading_bridge.load("e1", "e2")
            url = f"{EVENTS}?last_event_id=e1"
            with client.websocket_connect(url) as websocket:
                replayed, reply = websocket.receive_json(), websocket.receive_json()

        assert replayed["id"] == "e2"
        assert reply == {"type": "resume", "status": "success", "replayed": 1}

    @pytest.mark.parametrize("form", ["query", "action"])
    def test_a_history_not_loaded_in_time_is_a_gap_after_the_wait(
        self, manager, loading_bridge, form
    ):
        settings = Settings(heartbeat_interval=3600, resume_history_wait=0.2)
        with TestClient(create_app(manager, loading_bridge, settings)) as client:
            started = time.monotonic()
            if form == "query":
                with client.websocket_connect(f"{EVENTS}?last_event_id=e1") as ws:
                    reply = ws.receive_json()
            else:
                with client.websocket_connect(EVENTS) as ws:
                    ws.send_json({"action": "resume", "last_event_id": "e1"})
                    reply = ws.receive_json()
            waited = time.monotonic() - started

        assert (reply["type"], reply["last_event_id"]) == ("gap", "e1")
        assert 0.2 <= waited < 5


class TestResume:
    def test_a_client_that_reconnects_with_its_last_id_gets_what_it_missed(
        self, client
    ):
        with client.websocket_connect(EVENTS) as websocket:
            client.post("/v1/events", json=ironic_event(uuid="u1"))
            last = websocket.receive_json()
        for uuid in ("u2", "u3"):
            client.post("/v1/events", json=ironic_event(uuid=uuid))
        wait_for_received(client, 3)

        with client.websocket_connect(f"{EVENTS}?last_event_id={last['id']}") as ws:
            missed = [ws.receive_json(), ws.receive_json()]
            reply = ws.receive_json()

        assert [frame["data"]["resource_id"] for frame in missed] == ["u2", "u3"]
        assert reply == {"type": "resume", "status": "success", "replayed": 2}

    def test_the_resume_action_replays_after_the_filters(self, client):
        for name, uuid in (("node1", "u1"), ("node2", "u2"), ("node1", "u3")):
            client.post("/v1/events", json=ironic_event(name=name, uuid=uuid))
        wait_for_received(client, 3)

        with client.websocket_connect(EVENTS) as websocket:
            websocket.send_json({"action": "set_filters", "node_filters": ["node1"]})
            websocket.receive_json()
            websocket.send_json({"action": "resume", "last_event_id": "unknown"})
            gap = websocket.receive_json()

        assert gap["type"] == "gap"
        assert gap["last_event_id"] == "unknown"

    def test_filters_in_the_query_apply_before_anything_is_sent(self, client):
        url = f"{EVENTS}?node_filters=node1&node_filters=node2&service_filters=ironic"

        with client.websocket_connect(url) as websocket:
            reply = websocket.receive_json()
            client.post("/v1/events", json=ironic_event(name="node3"))
            client.post("/v1/events", json=ironic_event(name="node2"))
            event = websocket.receive_json()

        assert reply == {
            "type": "filter_update",
            "status": "success",
            "event_filters": [],
            "node_filters": ["node1", "node2"],
            "service_filters": ["ironic"],
        }
        assert event["node_name"] == "node2"

    def test_a_bad_last_event_id_in_the_query_is_an_error_frame(self, client):
        with client.websocket_connect(f"{EVENTS}?last_event_id=") as websocket:
            error = websocket.receive_json()

        assert error == {
            "type": "error",
            "message": "'last_event_id' must be a non-empty string",
        }


class TestModuleEntryPoint:
    def test_python_m_osism_runs_the_cli(self, mocker, capsys):
        mocker.patch("sys.argv", ["osism", "--help"])

        with pytest.raises(SystemExit) as exited:
            runpy.run_module("osism", run_name="__main__")

        assert exited.value.code == 0
        assert "osism events: the OpenStack event stream" in capsys.readouterr().out


# Run in a fresh interpreter: what importing osism.api does, seen from inside.
IMPORT_PROBE = """
import json, socket, sys, threading, time
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("no network in this probe")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
before = threading.active_count()
started = time.perf_counter()
import osism.api
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "new_threads": threading.active_count() - before,
    "attempts": attempts,
    "redis_client_loaded": "redis.client" in sys.modules,
    "app": type(osism.api.app).__name__,
}))
"""


class TestModuleApp:
    """``uvicorn osism.api:app``, the way OSISM's containers start the API."""

    def test_it_is_the_api_around_the_module_singletons(self, bridge):
        app = osism.api.app

        assert app.state.websocket_manager is websocket_manager
        assert app.state.event_bridge is event_bridge
        same_api = create_app(WebSocketManager(), bridge, Settings())
        assert app.openapi()["paths"] == same_api.openapi()["paths"]
        assert {"/v1/events", "/v1/events/health"} <= set(app.openapi()["paths"])

    def test_importing_it_connects_to_nothing_and_starts_no_thread(self):
        # REDIS_HOST names a host that would be tried if anything connected.
        probe = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE],
            capture_output=True,
            text=True,
            timeout=8,
            env={"REDIS_HOST": "redis.invalid", "PATH": ""},
        )

        assert probe.returncode == 0, probe.stderr
        report = json.loads(probe.stdout)
        assert report["attempts"] == []
        assert report["new_threads"] == 0
        assert report["app"] == "FastAPI"
        # redis-py is loaded on first use, not at import.
        assert report["redis_client_loaded"] is False


class TestSettingsHandedDown:
    def test_the_singleton_manager_takes_the_apps_settings(self, bridge, mocker):
        mocker.patch.multiple(websocket_manager, send_timeout=5.0, max_pending=10)

        create_app(
            bridge=bridge,
            settings=Settings(websocket_send_timeout=2.5, websocket_max_pending=42),
        )

        assert (websocket_manager.send_timeout, websocket_manager.max_pending) == (
            2.5,
            42,
        )

    def test_a_manager_of_the_callers_keeps_its_own_bounds(self, bridge):
        manager = WebSocketManager(send_timeout=1.0, max_pending=3)

        create_app(manager, bridge, Settings(websocket_send_timeout=2.5))

        assert (manager.send_timeout, manager.max_pending) == (1.0, 3)


class TestDocs:
    @pytest.mark.parametrize("path", ["/docs", "/redoc"])
    def test_the_cdn_backed_pages_are_off(self, client, path):
        assert client.get(path).status_code == 404

    def test_the_openapi_schema_is_served(self, client):
        schema = client.get("/openapi.json").json()

        assert "/v1/events" in schema["paths"]
