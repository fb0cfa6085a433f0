"""Unit tests of osism.services.websocket_manager."""

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from unittest.mock import MagicMock

import anyio
import pytest
from starlette.websockets import WebSocketDisconnect

from osism.services.websocket_manager import (
    BATCH_SIZE,
    CLOSE_DROPPED,
    EventMessage,
    WebSocketConnection,
    WebSocketManager,
)
from osism.services.frame_writer import DIRECT_WRITE
from osism.settings import Settings
from tests.harness.waiting import wait_until

WS = "osism.websocket"


def queued_events(manager):
    events = []
    while not manager.event_queue.empty():
        events.append(manager.event_queue.get_nowait())
    return events


def connection_with(**filters):
    connection = WebSocketConnection(MagicMock())
    for name, values in filters.items():
        setattr(connection, name, values)
    return connection


def event(event_type="baremetal.node.power_set.end", node_name=None):
    return EventMessage(event_type, "openstack", {}, node_name)


class TestEventMessage:
    def test_constructor_sets_the_given_fields(self):
        message = EventMessage("compute.instance.update", "openstack", {"a": 1}, "n1")

        assert message.event_type == "compute.instance.update"
        assert message.source == "openstack"
        assert message.data == {"a": 1}
        assert message.node_name == "n1"

    def test_node_name_defaults_to_none(self):
        assert EventMessage("x", "osism", {}).node_name is None

    def test_id_is_a_uuid4_string(self):
        message = EventMessage("x", "osism", {})

        assert str(uuid.UUID(message.id, version=4)) == message.id
        assert uuid.UUID(message.id).version == 4

    def test_two_messages_get_different_ids(self):
        assert EventMessage("x", "osism", {}).id != EventMessage("x", "osism", {}).id

    def test_timestamp_is_iso_8601_utc_with_z_suffix(self):
        before = datetime.now(timezone.utc).replace(tzinfo=None)
        message = EventMessage("x", "osism", {})

        assert message.timestamp.endswith("Z")
        stamp = datetime.fromisoformat(message.timestamp[:-1])
        assert stamp.tzinfo is None
        assert before <= stamp <= before + timedelta(minutes=1)

    def test_to_dict_returns_exactly_the_event_keys(self):
        message = EventMessage("x.y", "openstack", {"k": "v"}, "node1")

        assert message.to_dict() == {
            "id": message.id,
            "timestamp": message.timestamp,
            "event_type": "x.y",
            "source": "openstack",
            "node_name": "node1",
            "data": {"k": "v"},
        }

    def test_to_json_round_trips_to_to_dict(self):
        message = EventMessage("x.y", "openstack", {"k": [1, 2]}, None)

        assert json.loads(message.to_json()) == message.to_dict()


class TestMatchesFilters:
    def test_no_filters_match_any_event(self):
        assert connection_with().matches_filters(event("anything", None))

    def test_event_filter_matches_only_listed_event_types(self):
        connection = connection_with(event_filters=["baremetal.node.power_set"])

        assert connection.matches_filters(event("baremetal.node.power_set"))
        assert not connection.matches_filters(event("baremetal.node.create"))

    def test_node_filter_matches_only_listed_nodes(self):
        connection = connection_with(node_filters=["node1"])

        assert connection.matches_filters(event(node_name="node1"))
        assert not connection.matches_filters(event(node_name="other"))

    def test_node_filter_never_matches_an_event_without_node(self):
        assert not connection_with(node_filters=["node1"]).matches_filters(event())

    def test_service_filter_matches_the_first_segment_of_the_event_type(self):
        connection = connection_with(service_filters=["baremetal"])

        assert connection.matches_filters(event("baremetal.node.power_set"))
        assert not connection.matches_filters(event("compute.instance.update"))

    def test_service_filter_uses_the_service_derived_from_the_notification(self):
        # A nova versioned notification: its event type names the object
        # (instance), its publisher the service.
        nova_event = EventMessage(
            "instance.pause.end", "openstack", {"service_type": "compute"}
        )

        assert connection_with(service_filters=["compute"]).matches_filters(nova_event)
        assert not connection_with(service_filters=["instance"]).matches_filters(
            nova_event
        )

    def test_a_service_type_that_is_not_a_string_falls_back_to_the_event_type(self):
        odd = EventMessage("baremetal.node.update", "openstack", {"service_type": 7})

        assert connection_with(service_filters=["baremetal"]).matches_filters(odd)

    def test_empty_event_type_belongs_to_service_unknown(self):
        assert connection_with(service_filters=["unknown"]).matches_filters(event(""))
        assert not connection_with(service_filters=["baremetal"]).matches_filters(
            event("")
        )

    def test_combined_filters_must_all_match(self):
        connection = connection_with(
            event_filters=["baremetal.node.power_set"], node_filters=["node1"]
        )

        assert connection.matches_filters(event("baremetal.node.power_set", "node1"))
        assert not connection.matches_filters(event("baremetal.node.power_set", "n2"))
        assert not connection.matches_filters(event("baremetal.node.create", "node1"))

    def test_service_filter_is_combined_with_node_filter(self):
        connection = connection_with(service_filters=["compute"], node_filters=["n1"])

        assert connection.matches_filters(event("compute.instance.update", "n1"))
        assert not connection.matches_filters(event("baremetal.node.update", "n1"))

    def test_connection_starts_without_filters_outbox_or_sender(self):
        websocket = MagicMock()
        websocket.client.host = "10.0.0.5"
        websocket.client.port = 41000

        connection = WebSocketConnection(websocket)

        assert connection.websocket is websocket
        assert connection.event_filters == []
        assert connection.node_filters == []
        assert connection.service_filters == []
        assert connection.outbox is None
        assert connection.sender is None
        assert connection.label == "10.0.0.5:41000"

    def test_a_websocket_without_client_address_is_labelled_unknown(self):
        assert WebSocketConnection(object()).label == "unknown client"  # type: ignore


class TestManagerSettings:
    def test_the_bounds_default_to_the_settings_defaults_not_the_environment(
        self, monkeypatch
    ):
        monkeypatch.setenv("WEBSOCKET_SEND_TIMEOUT", "2.5")
        monkeypatch.setenv("WEBSOCKET_MAX_PENDING", "42")

        manager = WebSocketManager()

        assert (manager.send_timeout, manager.max_pending) == (5.0, 10_000)

    def test_arguments_set_the_bounds(self):
        manager = WebSocketManager(send_timeout=0.5, max_pending=7)

        assert (manager.send_timeout, manager.max_pending) == (0.5, 7)

    def test_settings_handed_over_set_the_bounds(self):
        manager = WebSocketManager()

        manager.apply_settings(
            Settings(websocket_send_timeout=2.5, websocket_max_pending=42)
        )

        assert (manager.send_timeout, manager.max_pending) == (2.5, 42)


@pytest.mark.anyio
class TestConnectAndDisconnect:
    @pytest.fixture
    def create_task(self, mocker):
        """asyncio.create_task as the manager sees it; the task never finishes."""
        create_task = mocker.patch(
            "osism.services.websocket_manager.asyncio.create_task"
        )
        create_task.return_value.done.return_value = False

        def close_coroutine(coroutine):
            coroutine.close()
            return create_task.return_value

        create_task.side_effect = close_coroutine
        return create_task

    async def test_connect_accepts_and_registers_the_websocket(
        self, manager, make_websocket, create_task, websocket_logs
    ):
        websocket = make_websocket()
        websocket.client.host = "192.0.2.1"
        websocket.client.port = 5000

        await manager.connect(websocket)

        websocket.accept.assert_awaited_once_with()
        assert isinstance(manager.connections[websocket], WebSocketConnection)
        assert manager.connections[websocket].websocket is websocket
        assert websocket_logs() == [
            (
                WS,
                logging.INFO,
                "WebSocket client 192.0.2.1:5000 connected (1 connected)",
            )
        ]

    async def test_connect_records_the_running_loop(
        self, manager, make_websocket, create_task
    ):
        await manager.connect(make_websocket())

        assert manager.loop is asyncio.get_running_loop()

    async def test_first_connect_starts_the_broadcaster_once(
        self, manager, make_websocket, create_task
    ):
        await manager.connect(make_websocket())
        await manager.connect(make_websocket())

        create_task.assert_called_once()
        assert len(manager.connections) == 2

    async def test_connect_restarts_a_broadcaster_that_finished(
        self, manager, make_websocket, create_task
    ):
        await manager.connect(make_websocket())
        create_task.return_value.done.return_value = True
        await manager.connect(make_websocket())

        assert create_task.call_count == 2

    async def test_disconnect_removes_the_connection(
        self, manager, make_websocket, create_task, websocket_logs
    ):
        first, second = make_websocket(), make_websocket()
        first.client.host, first.client.port = "h", 1
        await manager.connect(first)
        await manager.connect(second)

        await manager.disconnect(first)

        assert list(manager.connections) == [second]
        assert websocket_logs()[-1] == (
            WS,
            logging.INFO,
            "WebSocket client h:1 disconnected (1 connected)",
        )

    async def test_disconnect_cancels_the_clients_sender(
        self, manager, make_websocket, create_task
    ):
        websocket = make_websocket()
        await manager.connect(websocket)
        sender = MagicMock()
        manager.connections[websocket].sender = sender

        await manager.disconnect(websocket)

        sender.cancel.assert_called_once_with()

    async def test_disconnecting_an_unknown_websocket_is_a_no_op(
        self, manager, make_websocket, websocket_logs
    ):
        await manager.disconnect(make_websocket())

        assert manager.connections == {}
        assert websocket_logs() == []


@pytest.mark.anyio
class TestUpdateFilters:
    @pytest.fixture
    def websocket(self, manager, make_websocket):
        websocket = make_websocket()
        websocket.client.host, websocket.client.port = "h", 2
        manager.connections[websocket] = WebSocketConnection(websocket)
        return websocket

    async def test_sets_all_three_filter_lists(
        self, manager, websocket, websocket_logs
    ):
        await manager.update_filters(websocket, ["e.x"], ["n1"], ["compute"])

        connection = manager.connections[websocket]
        assert connection.event_filters == ["e.x"]
        assert connection.node_filters == ["n1"]
        assert connection.service_filters == ["compute"]
        # DEBUG, never a line per frame at INFO.
        assert websocket_logs() == [
            (
                WS,
                logging.DEBUG,
                "WebSocket client h:2 filters: events=['e.x'] nodes=['n1'] "
                "services=['compute']",
            )
        ]

    async def test_arguments_left_as_none_keep_the_existing_lists(
        self, manager, websocket
    ):
        await manager.update_filters(websocket, ["e.x"], ["n1"], ["compute"])

        await manager.update_filters(websocket, node_filters=["n2"])

        connection = manager.connections[websocket]
        assert connection.event_filters == ["e.x"]
        assert connection.node_filters == ["n2"]
        assert connection.service_filters == ["compute"]

    async def test_each_list_can_be_updated_alone(self, manager, websocket):
        await manager.update_filters(websocket, event_filters=["e.x"])
        await manager.update_filters(websocket, service_filters=["image"])

        connection = manager.connections[websocket]
        assert connection.event_filters == ["e.x"]
        assert connection.node_filters == []
        assert connection.service_filters == ["image"]

    async def test_an_empty_list_clears_a_filter(self, manager, websocket):
        await manager.update_filters(websocket, ["e.x"], ["n1"], ["compute"])

        await manager.update_filters(websocket, [], [], [])

        connection = manager.connections[websocket]
        assert connection.event_filters == []
        assert connection.node_filters == []
        assert connection.service_filters == []

    async def test_a_string_filter_is_one_value_and_never_matches_by_substring(
        self, manager, websocket
    ):
        await manager.update_filters(
            websocket, event_filters="a.b", node_filters="node10", service_filters="x"
        )

        connection = manager.connections[websocket]
        assert connection.event_filters == ["a.b"]
        assert connection.service_filters == ["x"]
        assert connection.node_filters == ["node10"]
        assert not connection.matches_filters(event("a.b", "node1"))

    async def test_filters_are_copied_from_the_callers_list(self, manager, websocket):
        nodes = ["n1"]
        await manager.update_filters(websocket, node_filters=nodes)
        nodes.append("n2")

        assert manager.connections[websocket].node_filters == ["n1"]

    async def test_unknown_websocket_is_a_silent_no_op(
        self, manager, make_websocket, websocket_logs
    ):
        await manager.update_filters(make_websocket(), ["e.x"])

        assert manager.connections == {}
        assert websocket_logs() == []


@pytest.mark.anyio
class TestAddEventAndHeartbeat:
    async def test_add_event_puts_the_event_on_the_queue(self, manager):
        message = event()

        await manager.add_event(message)

        assert manager.event_queue.qsize() == 1
        assert manager.event_queue.get_nowait() is message

    async def test_heartbeat_without_connections_queues_nothing(self, manager):
        await manager.send_heartbeat()

        assert manager.event_queue.empty()

    async def test_heartbeat_with_a_connection_queues_a_ping(
        self, manager, make_websocket
    ):
        websocket = make_websocket()
        manager.connections[websocket] = WebSocketConnection(websocket)

        await manager.send_heartbeat()

        [heartbeat] = queued_events(manager)
        assert heartbeat.event_type == "heartbeat"
        assert heartbeat.source == "osism"
        assert heartbeat.data == {"message": "ping"}
        assert heartbeat.node_name is None


@pytest.mark.anyio
class TestBroadcastEventFromNotification:
    async def notify(self, manager, event_type, payload):
        await manager.broadcast_event_from_notification(event_type, payload)
        [queued] = queued_events(manager)
        return queued

    async def test_baremetal_takes_node_name_and_resource_id_from_ironic_object(
        self, manager
    ):
        payload = {"ironic_object.data": {"name": "node1", "uuid": "abc-123"}}

        queued = await self.notify(manager, "baremetal.node.power_set.end", payload)

        assert queued.node_name == "node1"
        assert queued.data["resource_id"] == "abc-123"
        assert queued.data["service_type"] == "baremetal"

    @pytest.mark.parametrize("event_type", ["compute.instance.update", "nova.x"])
    async def test_compute_prefers_host_over_name(self, manager, event_type):
        payload = {"nova_object.data": {"host": "h1", "name": "vm", "uuid": "u1"}}

        queued = await self.notify(manager, event_type, payload)

        assert queued.node_name == "h1"
        assert queued.data["resource_id"] == "u1"

    async def test_compute_falls_back_to_name_without_host(self, manager):
        payload = {"nova_object.data": {"name": "vm", "uuid": "u1"}}

        queued = await self.notify(manager, "compute.instance.update", payload)

        assert queued.node_name == "vm"

    @pytest.mark.parametrize("event_type", ["network.port.create", "neutron.port.x"])
    async def test_network_takes_id_and_name(self, manager, event_type):
        payload = {"neutron_object.data": {"id": "p1", "uuid": "u", "name": "port"}}

        queued = await self.notify(manager, event_type, payload)

        assert queued.data["resource_id"] == "p1"
        assert queued.node_name == "port"

    async def test_network_falls_back_to_uuid_and_device_id(self, manager):
        payload = {"neutron_object.data": {"uuid": "u2", "device_id": "d1"}}

        queued = await self.notify(manager, "network.port.update", payload)

        assert queued.data["resource_id"] == "u2"
        assert queued.node_name == "d1"

    async def test_volume_takes_id_and_name(self, manager):
        payload = {"cinder_object.data": {"id": "v1", "name": "vol", "uuid": "u"}}

        queued = await self.notify(manager, "volume.create.end", payload)

        assert (queued.data["resource_id"], queued.node_name) == ("v1", "vol")

    async def test_volume_falls_back_to_uuid_and_display_name(self, manager):
        payload = {"cinder_object.data": {"uuid": "u3", "display_name": "disp"}}

        queued = await self.notify(manager, "volume.create.end", payload)

        assert (queued.data["resource_id"], queued.node_name) == ("u3", "disp")

    @pytest.mark.parametrize(
        "event_type, key",
        [
            ("image.create", "glance_object.data"),
            ("identity.x", "keystone_object.data"),
        ],
    )
    async def test_image_and_identity_take_id_and_name(self, manager, event_type, key):
        queued = await self.notify(manager, event_type, {key: {"id": "i", "name": "n"}})

        assert (queued.data["resource_id"], queued.node_name) == ("i", "n")

    async def test_known_service_without_its_object_key_still_queues_the_event(
        self, manager
    ):
        queued = await self.notify(manager, "baremetal.node.update", {"other": 1})

        assert queued.node_name is None
        assert queued.data == {
            "other": 1,
            "service_type": "baremetal",
            "resource_id": None,
        }

    async def test_unknown_service_is_queued_without_extraction(self, manager):
        queued = await self.notify(manager, "foo.bar", {"name": "x", "uuid": "y"})

        assert queued.node_name is None
        assert queued.data["service_type"] == "foo"
        assert queued.data["resource_id"] is None

    async def test_empty_event_type_is_service_unknown(self, manager):
        queued = await self.notify(manager, "", {})

        assert queued.data["service_type"] == "unknown"
        assert queued.event_type == ""

    async def test_queued_event_copies_the_payload_and_adds_subject(self, manager):
        payload = {"ironic_object.data": {"name": "n1", "uuid": "u1"}, "extra": 1}

        queued = await self.notify(manager, "baremetal.node.create.end", payload)

        assert queued.source == "openstack"
        assert queued.event_type == "baremetal.node.create.end"
        assert queued.data == {
            "ironic_object.data": {"name": "n1", "uuid": "u1"},
            "extra": 1,
            "service_type": "baremetal",
            "resource_id": "u1",
        }
        assert payload == {
            "ironic_object.data": {"name": "n1", "uuid": "u1"},
            "extra": 1,
        }

    async def test_the_publisher_id_is_kept_in_the_data_and_names_the_service(
        self, manager
    ):
        payload = {"nova_object.data": {"host": "compute1", "uuid": "u1"}}

        await manager.broadcast_event_from_notification(
            "compute.instance.update", payload, "nova-compute:compute1"
        )

        (queued,) = queued_events(manager)
        assert queued.data["publisher_id"] == "nova-compute:compute1"
        assert queued.data["service_type"] == "compute"
        assert "publisher_id" not in payload

    async def test_a_payload_that_is_not_an_object_is_logged_and_not_queued(
        self, manager, websocket_logs
    ):
        await manager.broadcast_event_from_notification("baremetal.x", ["a", "b"])
        await manager.broadcast_event_from_notification("baremetal.x", ["a", "b"])

        assert manager.event_queue.empty()
        assert manager.stats["invalid"] == 2
        assert (
            websocket_logs()
            == [
                (
                    WS,
                    logging.ERROR,
                    "Error processing notification 'baremetal.x': "
                    "payload must be an object, not list",
                )
            ]
            * 2
        )

    async def test_an_event_type_that_is_not_a_string_is_logged_and_not_queued(
        self, manager, websocket_logs
    ):
        await manager.broadcast_event_from_notification(42, {})

        assert manager.event_queue.empty()
        assert websocket_logs() == [
            (
                WS,
                logging.ERROR,
                "Error processing notification 42: "
                "'int' object has no attribute 'split'",
            )
        ]

    def test_enqueue_notification_works_without_a_running_loop(self, manager):
        manager.enqueue_notification("image.update", {"glance_object.data": {}})

        [queued] = queued_events(manager)
        assert queued.data["service_type"] == "image"


@contextlib.asynccontextmanager
async def broadcasting(manager):
    """Run the manager's broadcaster as a task; cancel and await it on exit."""
    task = asyncio.create_task(manager._broadcast_events())
    try:
        yield task
    finally:
        task.cancel()
        with anyio.fail_after(5):
            await task


@pytest.fixture
async def broadcaster(manager):
    async with broadcasting(manager) as task:
        yield task


async def hang_forever(*args, **kwargs):
    await asyncio.Event().wait()


def connect_fake(manager, websocket, **filters):
    connection = WebSocketConnection(websocket)
    for name, values in filters.items():
        setattr(connection, name, values)
    manager.connections[websocket] = connection
    return connection


@pytest.mark.anyio
class TestBroadcaster:
    async def test_an_event_matching_the_filters_is_sent_once_as_json(
        self, manager, make_websocket, broadcaster
    ):
        websocket = make_websocket()
        connect_fake(manager, websocket)
        message = event()

        with anyio.fail_after(5):
            await manager.add_event(message)
            await wait_until(lambda: websocket.send_text.await_count == 1)

        websocket.send_text.assert_awaited_once_with(message.to_json())

    async def test_events_queued_together_all_go_out_in_order(self, make_websocket):
        """More events than one batch of the broadcaster holds."""
        count = BATCH_SIZE * 2 + 3
        manager = WebSocketManager(send_timeout=5.0, max_pending=count)
        websocket = make_websocket()
        connect_fake(manager, websocket)
        for n in range(count):
            manager.enqueue_notification(f"compute.instance.n{n}", {})

        async with broadcasting(manager):
            with anyio.fail_after(5):
                await wait_until(lambda: websocket.send_text.await_count == count)

        sent = [
            json.loads(c.args[0])["event_type"]
            for c in websocket.send_text.await_args_list
        ]
        assert sent == [f"compute.instance.n{n}" for n in range(count)]
        assert manager.stats["received"] == count

    async def test_a_failing_event_in_a_batch_leaves_the_others_going_out(
        self, manager, make_websocket, broadcaster, websocket_logs, mocker
    ):
        websocket = make_websocket()
        connect_fake(manager, websocket)
        events = [event(f"compute.instance.n{n}") for n in range(3)]
        real_fan_out = manager._fan_out

        def fan_out(message):
            if message is events[1]:
                raise ValueError("boom")
            real_fan_out(message)

        mocker.patch.object(manager, "_fan_out", side_effect=fan_out)
        for message in events:
            manager.event_queue.put_nowait(message)

        with anyio.fail_after(5):
            await wait_until(lambda: websocket.send_text.await_count == 2)

        assert [c.args[0] for c in websocket.send_text.await_args_list] == [
            events[0].to_json(),
            events[2].to_json(),
        ]
        assert (WS, logging.ERROR, "Error in event broadcaster: boom") in (
            websocket_logs()
        )

    async def test_the_broadcaster_records_its_loop(self, manager, broadcaster):
        with anyio.fail_after(5):
            await wait_until(lambda: manager.loop is asyncio.get_running_loop())

    async def test_an_event_not_matching_is_sent_only_to_matching_clients(
        self, manager, make_websocket, broadcaster, websocket_logs
    ):
        other, matching = make_websocket(), make_websocket()
        connect_fake(manager, other, service_filters=["compute"])
        connect_fake(manager, matching, service_filters=["baremetal"])
        message = event("baremetal.node.update")

        with anyio.fail_after(5):
            await manager.add_event(message)
            await wait_until(lambda: matching.send_text.await_count == 1)

        other.send_text.assert_not_awaited()
        assert manager.stats["broadcast"] == 1
        assert (
            WS,
            logging.DEBUG,
            "Event baremetal.node.update sent to 1 of 2 clients",
        ) in websocket_logs()

    async def test_the_log_counts_every_client_an_event_was_sent_to(
        self, manager, make_websocket, broadcaster, websocket_logs
    ):
        clients = [make_websocket() for _ in range(3)]
        # Two groups that both match: one without filters, one by service.
        connect_fake(manager, clients[0])
        connect_fake(manager, clients[1], service_filters=["image"])
        connect_fake(manager, clients[2])

        with anyio.fail_after(5):
            await manager.add_event(event("image.update"))
            await wait_until(lambda: all(c.send_text.await_count for c in clients))

        assert manager.stats["broadcast"] == 3
        assert (
            WS,
            logging.DEBUG,
            "Event image.update sent to 3 of 3 clients",
        ) in websocket_logs()

    async def test_events_reach_each_client_in_order(
        self, manager, make_websocket, broadcaster
    ):
        websocket = make_websocket()
        connect_fake(manager, websocket)
        messages = [event(f"svc.e{i}") for i in range(20)]

        with anyio.fail_after(5):
            for message in messages:
                await manager.add_event(message)
            await wait_until(lambda: websocket.send_text.await_count == 20)

        sent = [call.args[0] for call in websocket.send_text.await_args_list]
        assert sent == [m.to_json() for m in messages]
        assert manager.stats["received"] == 20
        assert manager.stats["broadcast"] == 20

    async def test_a_client_that_disconnected_is_removed(
        self, manager, make_websocket, broadcaster, websocket_logs
    ):
        websocket = make_websocket()
        websocket.client.host, websocket.client.port = "gone", 9
        websocket.send_text.side_effect = WebSocketDisconnect()
        connect_fake(manager, websocket)

        with anyio.fail_after(5):
            await manager.add_event(event())
            await wait_until(lambda: websocket not in manager.connections)

        assert (WS, logging.INFO, "WebSocket client gone:9 went away") in (
            websocket_logs()
        )
        assert manager.stats["dropped"] == 0
        websocket.close.assert_not_awaited()

    async def test_a_client_whose_send_fails_is_logged_closed_and_removed(
        self, manager, make_websocket, broadcaster, websocket_logs
    ):
        failing, healthy = make_websocket(), make_websocket()
        failing.client.host, failing.client.port = "bad", 1
        failing.send_text.side_effect = RuntimeError("broken pipe")
        connect_fake(manager, failing)
        connect_fake(manager, healthy)

        with anyio.fail_after(5):
            await manager.add_event(event())
            await wait_until(lambda: failing.close.await_count == 1)
            await manager.add_event(event())
            await wait_until(lambda: healthy.send_text.await_count == 2)

        assert list(manager.connections) == [healthy]
        failing.close.assert_awaited_once_with(code=CLOSE_DROPPED)
        assert CLOSE_DROPPED == 1011
        assert manager.stats["dropped"] == 1
        assert (
            WS,
            logging.ERROR,
            "Dropped WebSocket client bad:1: error sending to it: "
            "RuntimeError('broken pipe')",
        ) in websocket_logs()

    async def test_a_failing_old_sender_leaves_a_newer_registration_alone(
        self, manager, make_websocket, broadcaster
    ):
        websocket = make_websocket()
        release = asyncio.Event()

        async def fail_when_released(frame):
            await release.wait()
            raise RuntimeError("old socket")

        websocket.send_text.side_effect = fail_when_released
        connect_fake(manager, websocket)
        with anyio.fail_after(5):
            await manager.add_event(event())
            await wait_until(lambda: websocket.send_text.await_count == 1)
            newer = connect_fake(manager, websocket)
            release.set()
            await wait_until(lambda: websocket.close.await_count == 1)

        assert manager.connections[websocket] is newer

    async def test_every_dropped_client_is_counted(
        self, manager, make_websocket, broadcaster
    ):
        clients = [make_websocket(), make_websocket()]
        for websocket in clients:
            websocket.send_text.side_effect = RuntimeError("x")
            connect_fake(manager, websocket)

        with anyio.fail_after(5):
            await manager.add_event(event())
            await wait_until(lambda: not manager.connections)

        assert manager.stats["dropped"] == 2

    async def test_a_close_that_hangs_is_given_up_after_the_send_bound(
        self, make_websocket, websocket_logs
    ):
        manager = WebSocketManager(send_timeout=0.01, max_pending=10)
        websocket = make_websocket()
        websocket.send_text.side_effect = RuntimeError("x")
        websocket.close.side_effect = hang_forever
        connect_fake(manager, websocket)
        async with broadcasting(manager):
            with anyio.fail_after(5):
                await manager.add_event(event())
                await wait_until(
                    lambda: (
                        WS,
                        logging.DEBUG,
                        "Closing a dropped WebSocket client failed: TimeoutError()",
                    )
                    in websocket_logs()
                )

    async def test_a_close_that_fails_is_only_logged_at_debug(
        self, manager, make_websocket, broadcaster, websocket_logs
    ):
        websocket = make_websocket()
        websocket.send_text.side_effect = RuntimeError("x")
        websocket.close.side_effect = RuntimeError("already closed")
        connect_fake(manager, websocket)

        with anyio.fail_after(5):
            await manager.add_event(event())
            await wait_until(lambda: websocket.close.await_count == 1)
            await wait_until(
                lambda: (
                    WS,
                    logging.DEBUG,
                    "Closing a dropped WebSocket client failed: "
                    "RuntimeError('already closed')",
                )
                in websocket_logs()
            )

    async def test_a_client_whose_send_hangs_is_dropped_and_others_go_on(
        self, make_websocket, websocket_logs
    ):
        manager = WebSocketManager(send_timeout=0.05, max_pending=100)
        stuck, healthy = make_websocket(), make_websocket()
        stuck.client.host, stuck.client.port = "slow", 3
        stuck.send_text.side_effect = hang_forever
        connect_fake(manager, stuck)
        connect_fake(manager, healthy)
        async with broadcasting(manager):
            with anyio.fail_after(5):
                for _ in range(3):
                    await manager.add_event(event())
                await wait_until(lambda: healthy.send_text.await_count == 3)
                assert stuck in manager.connections
                await wait_until(lambda: stuck not in manager.connections)

        assert manager.stats["dropped"] == 1
        assert (
            WS,
            logging.WARNING,
            "Dropped WebSocket client slow:3: a send took longer than 0.05 s",
        ) in websocket_logs()
        stuck.close.assert_awaited_once_with(code=CLOSE_DROPPED)

    async def test_a_client_that_falls_behind_the_pending_bound_is_dropped(
        self, make_websocket, websocket_logs
    ):
        manager = WebSocketManager(send_timeout=5.0, max_pending=2)
        lagging = make_websocket()
        lagging.client.host, lagging.client.port = "lag", 4
        release = asyncio.Event()

        async def wait_for_release(frame):
            await release.wait()

        lagging.send_text.side_effect = wait_for_release
        connect_fake(manager, lagging)
        async with broadcasting(manager):
            with anyio.fail_after(5):
                await manager.add_event(event())
                await wait_until(lambda: lagging.send_text.await_count == 1)
                for _ in range(3):
                    await manager.add_event(event())
                await wait_until(lambda: manager.event_queue.empty())
                await wait_until(lambda: manager.stats["received"] == 4)
                release.set()
                await wait_until(lambda: lagging not in manager.connections)

        assert lagging.send_text.await_count == 1
        assert (
            WS,
            logging.WARNING,
            "Dropped WebSocket client lag:4: it fell behind: "
            "more than 2 frames were pending",
        ) in websocket_logs()

    async def test_an_event_without_connections_is_consumed_and_the_loop_goes_on(
        self, manager, make_websocket, broadcaster
    ):
        with anyio.fail_after(5):
            await manager.add_event(event("first"))
            await wait_until(lambda: manager.stats["received"] == 1)
            assert manager.event_queue.empty()
            websocket = make_websocket()
            connect_fake(manager, websocket)
            second = event("second")
            await manager.add_event(second)
            await wait_until(lambda: websocket.send_text.await_count == 1)

        websocket.send_text.assert_awaited_once_with(second.to_json())

    async def test_an_error_in_the_loop_is_logged_and_the_loop_goes_on(
        self, manager, make_websocket, broadcaster, websocket_logs
    ):
        websocket = make_websocket()
        connection = connect_fake(manager, websocket)
        connection.matches_filters = MagicMock(side_effect=[ValueError("bad"), True])

        with anyio.fail_after(5):
            await manager.add_event(event())
            await manager.add_event(event())
            await wait_until(lambda: websocket.send_text.await_count == 1)

        assert (
            WS,
            logging.ERROR,
            "Error in event broadcaster: bad",
        ) in websocket_logs()

    async def test_cancelling_ends_the_loop_without_raising(
        self, manager, websocket_logs
    ):
        task = asyncio.create_task(manager._broadcast_events())
        with anyio.fail_after(5):
            await wait_until(lambda: manager.loop is not None)
            task.cancel()
            await task

        assert task.done() and not task.cancelled()
        assert websocket_logs() == [
            (WS, logging.INFO, "Event broadcaster started"),
            (WS, logging.INFO, "Event broadcaster cancelled"),
        ]

    async def test_cancelling_stops_every_senders_task(self, manager, make_websocket):
        websocket = make_websocket()
        connection = connect_fake(manager, websocket)
        idle = connect_fake(manager, make_websocket(), event_filters=["other"])
        task = asyncio.create_task(manager._broadcast_events())
        with anyio.fail_after(5):
            await manager.add_event(event())
            await wait_until(lambda: websocket.send_text.await_count == 1)
            sender = connection.sender
            task.cancel()
            await task
            await wait_until(lambda: sender.done())

        assert sender.cancelled()
        assert connection.sender is None
        assert connection.outbox is None
        assert idle.sender is None


@pytest.mark.anyio
class TestStartAndStop:
    async def test_start_records_the_loop_and_runs_the_broadcaster(
        self, manager, make_websocket
    ):
        websocket = make_websocket()
        connect_fake(manager, websocket)

        await manager.start()
        try:
            assert manager.loop is asyncio.get_running_loop()
            with anyio.fail_after(5):
                await manager.add_event(event())
                await wait_until(lambda: websocket.send_text.await_count == 1)
        finally:
            await manager.stop()

    async def test_start_twice_keeps_one_broadcaster(self, manager):
        await manager.start()
        first = manager._broadcaster_task
        await manager.start()
        try:
            assert manager._broadcaster_task is first
        finally:
            await manager.stop()

    async def test_stop_ends_the_broadcaster_and_the_senders(
        self, manager, make_websocket
    ):
        websocket = make_websocket()
        connection = connect_fake(manager, websocket)
        connect_fake(manager, make_websocket(), event_filters=["never"])
        await manager.start()
        with anyio.fail_after(5):
            await manager.add_event(event())
            await wait_until(lambda: websocket.send_text.await_count == 1)
            sender = connection.sender
            broadcaster = manager._broadcaster_task

            await manager.stop()

        assert broadcaster.done()
        assert sender.done()

    async def test_stop_without_start_does_nothing(self, manager):
        await manager.stop()

        assert manager._broadcaster_task is None


@pytest.mark.anyio
class TestSendTo:
    async def test_a_reply_is_queued_behind_the_events_for_that_client_only(
        self, manager, make_websocket, broadcaster
    ):
        websocket, other = make_websocket(), make_websocket()
        connect_fake(manager, websocket)
        connect_fake(manager, other)
        message = event()

        with anyio.fail_after(5):
            await manager.add_event(message)
            await wait_until(lambda: websocket.send_text.await_count == 1)
            manager.send_to(websocket, {"type": "error", "message": "m"})
            await wait_until(lambda: websocket.send_text.await_count == 2)

        sent = [c.args[0] for c in websocket.send_text.await_args_list]
        assert sent == [message.to_json(), '{"type": "error", "message": "m"}']
        assert other.send_text.await_count == 1

    async def test_a_reply_to_an_unknown_websocket_is_dropped(
        self, manager, make_websocket
    ):
        websocket = make_websocket()

        manager.send_to(websocket, {"type": "error", "message": "m"})

        assert manager.connections == {}
        websocket.send_text.assert_not_awaited()


@pytest.mark.anyio
class TestHealth:
    async def test_health_reports_clients_queue_broadcaster_and_counters(
        self, manager, make_websocket
    ):
        connect_fake(manager, make_websocket())
        await manager.add_event(event())
        manager.stats.update(received=3, broadcast=5, dropped=1, invalid=2, gaps=4)

        assert manager.health() == {
            "clients": 1,
            "queue": 1,
            "broadcaster_running": False,
            "history": 0,
            "counters": {
                "received": 3,
                "broadcast": 5,
                "dropped": 1,
                "invalid": 2,
                "duplicates": 0,
                "replayed": 0,
                "gaps": 4,
            },
        }

    async def test_health_shows_a_running_broadcaster(self, manager):
        await manager.start()
        try:
            assert manager.health()["broadcaster_running"] is True
        finally:
            await manager.stop()

    async def test_health_shows_a_finished_broadcaster_as_not_running(self, manager):
        await manager.start()
        await manager.stop()

        assert manager.health()["broadcaster_running"] is False


def sent_ids(websocket):
    """Ids of the event frames sent to a fake websocket, in order."""
    frames = [json.loads(c.args[0]) for c in websocket.send_text.await_args_list]
    return [frame["id"] for frame in frames if "id" in frame]


def ironic_on(manager, event_id, node="node1"):
    manager.enqueue_notification(
        "baremetal.node.power_set.end",
        {"ironic_object.data": {"name": node, "uuid": f"uuid-{event_id}"}},
        event_id=event_id,
    )


@pytest.mark.anyio
class TestResume:
    """A client that lost its connection gets what it missed, from the history."""

    async def fan_out(self, manager, *event_ids, node="node1"):
        """Fan the events out (and take them into the history)."""
        done = manager.stats["received"] + manager.stats["duplicates"] + len(event_ids)
        for event_id in event_ids:
            ironic_on(manager, event_id, node)
        async with broadcasting(manager):
            await wait_until(
                lambda: manager.stats["received"] + manager.stats["duplicates"] == done
            )

    async def test_an_event_keeps_the_id_and_time_it_entered_with(self, manager):
        manager.enqueue_notification(
            "x.y", {}, event_id="e-1", timestamp="2026-12-01T00:00:00Z"
        )

        [queued] = queued_events(manager)
        assert (queued.id, queued.timestamp) == ("e-1", "2026-12-01T00:00:00Z")

    async def test_the_events_after_the_last_one_are_replayed_in_order(
        self, manager, make_websocket
    ):
        await self.fan_out(manager, "e1", "e2", "e3", "e4")
        websocket = make_websocket()
        await manager.connect(websocket)

        reply = manager.resume(websocket, "e2")

        assert reply == {"type": "resume", "status": "success", "replayed": 2}
        async with broadcasting(manager):
            await wait_until(lambda: websocket.send_text.await_count == 2)
        assert sent_ids(websocket) == ["e3", "e4"]
        assert manager.stats["replayed"] == 2

    async def test_only_events_matching_the_filters_are_replayed(
        self, manager, make_websocket
    ):
        await self.fan_out(manager, "a1", node="a")
        await self.fan_out(manager, "b1", node="b")
        await self.fan_out(manager, "a2", node="a")
        websocket = make_websocket()
        await manager.connect(websocket)
        await manager.update_filters(websocket, node_filters=["a"])

        reply = manager.resume(websocket, "a1")

        assert reply["replayed"] == 1
        async with broadcasting(manager):
            await wait_until(lambda: websocket.send_text.await_count == 1)
        assert sent_ids(websocket) == ["a2"]

    async def test_the_replay_comes_before_later_live_events_without_duplicates(
        self, manager, make_websocket
    ):
        await self.fan_out(manager, "e1", "e2")
        websocket = make_websocket()
        await manager.connect(websocket)
        ironic_on(manager, "e3")
        async with broadcasting(manager):
            await wait_until(lambda: websocket.send_text.await_count == 1)
            # e3 went live since it connected: resuming from e1 replays e2
            # only, and a second resume sends nothing twice.
            first = manager.resume(websocket, "e1")
            again = manager.resume(websocket, "e1")
            ironic_on(manager, "e4")
            await wait_until(lambda: websocket.send_text.await_count == 3)

        assert (first["replayed"], again["replayed"]) == (1, 0)
        assert sent_ids(websocket) == ["e3", "e2", "e4"]

    async def test_an_older_id_later_replays_only_what_was_not_sent(
        self, manager, make_websocket
    ):
        await self.fan_out(manager, "e1", "e2", "e3")
        websocket = make_websocket()
        await manager.connect(websocket)

        manager.resume(websocket, "e2")
        reply = manager.resume(websocket, "e1")

        assert reply["replayed"] == 1
        async with broadcasting(manager):
            await wait_until(lambda: websocket.send_text.await_count == 2)
        assert sent_ids(websocket) == ["e3", "e2"]

    async def test_an_unknown_or_forgotten_id_is_a_gap(self, make_websocket):
        manager = WebSocketManager(send_timeout=5.0, max_pending=10, history_size=2)
        await self.fan_out(manager, "e1", "e2", "e3")
        websocket = make_websocket()
        await manager.connect(websocket)

        reply = manager.resume(websocket, "e1")

        assert reply == {
            "type": "gap",
            "last_event_id": "e1",
            "message": "the last 2 events do not include 'e1'; events before "
            "the live stream may be missing",
        }
        assert manager.stats["gaps"] == 1

    async def test_resuming_a_connection_that_is_gone_is_an_error(
        self, manager, make_websocket
    ):
        assert manager.resume(make_websocket(), "e1") == {
            "type": "error",
            "message": "connection is closing",
        }

    async def test_an_event_fanned_out_already_is_not_sent_again(
        self, manager, make_websocket
    ):
        websocket = make_websocket()
        await manager.connect(websocket)

        await self.fan_out(manager, "e1")
        await self.fan_out(manager, "e1", "e2")

        assert sent_ids(websocket) == ["e1", "e2"]
        assert manager.stats["duplicates"] == 1
        assert manager.stats["received"] == 2

    async def test_heartbeats_are_not_kept_for_resuming(self, manager, make_websocket):
        websocket = make_websocket()
        await manager.connect(websocket)

        await manager.send_heartbeat()
        async with broadcasting(manager):
            await wait_until(lambda: websocket.send_text.await_count == 1)

        assert len(manager.history) == 0

    async def test_the_history_bounds_are_settings(self, manager):
        manager.apply_settings(
            Settings(event_history_size=3, event_history_max_bytes=4096)
        )

        assert (manager.history.size, manager.history.max_bytes) == (3, 4096)


@pytest.mark.anyio
class TestClose:
    async def test_a_client_closed_by_the_server_is_forgotten_and_told_why(
        self, manager, make_websocket, websocket_logs
    ):
        websocket = make_websocket()
        websocket.client.host, websocket.client.port = "h", 1
        await manager.connect(websocket)
        manager.send_to(websocket, {"type": "error", "message": "m"})
        sender = manager.connections[websocket].sender

        await manager.close(websocket, 1008, "too many frames")

        assert manager.connections == {}
        websocket.close.assert_awaited_once_with(code=1008, reason="too many frames")
        assert sender is not None
        with anyio.fail_after(5):
            await asyncio.gather(sender, return_exceptions=True)
        assert sender.cancelled()
        assert (
            WS,
            logging.WARNING,
            "Closed WebSocket client h:1 with 1008: " "too many frames",
        ) in websocket_logs()

    async def test_closing_a_client_without_sender_or_one_that_is_gone(
        self, manager, make_websocket
    ):
        websocket = make_websocket()
        await manager.connect(websocket)

        await manager.close(websocket, 1008, "x")
        await manager.close(websocket, 1008, "x")

        websocket.close.assert_awaited_once_with(code=1008, reason="x")


@pytest.mark.anyio
class TestRemember:
    """The recent events of the Redis history, kept without being sent."""

    async def test_remembered_events_are_resumed_from_not_sent(
        self, manager, make_websocket
    ):
        manager.remember(
            [
                ("x.y", {}, None, "e1", "t1"),
                ("x.y", {}, "nova-compute:c1", "e2", "t2"),
                ("x.y", ["not", "an", "object"], None, "e3", None),
                ("x.y", {}, None, "e1", "t1"),
            ]
        )
        websocket = make_websocket()
        await manager.connect(websocket)

        reply = manager.resume(websocket, "e1")

        # Older than anything fanned out: numbered below it.
        assert [entry.event.id for entry in manager.history.between(-10, 0)] == [
            "e1",
            "e2",
        ]
        assert reply["replayed"] == 1
        assert manager.stats["received"] == 0
        async with broadcasting(manager):
            await wait_until(lambda: websocket.send_text.await_count == 1)
        [frame] = [json.loads(c.args[0]) for c in websocket.send_text.await_args_list]
        assert (frame["id"], frame["timestamp"]) == ("e2", "t2")
        assert frame["data"]["publisher_id"] == "nova-compute:c1"

    async def test_a_client_connected_before_they_were_remembered_gets_them(
        self, manager, make_websocket
    ):
        """A restarted API: the client came back (and got a live event)
        before the Redis history was loaded; its resume replays what it
        missed from the history, not the live event again."""
        websocket = make_websocket()
        await manager.connect(websocket)
        manager.enqueue_notification("x.y", {}, None, "live", "t9")
        async with broadcasting(manager):
            await wait_until(lambda: websocket.send_text.await_count == 1)
            manager.remember(
                [
                    ("x.y", {}, None, "e1", "t1"),
                    ("x.y", {}, None, "e2", "t2"),
                    ("x.y", {}, None, "live", "t9"),
                ]
            )

            reply = manager.resume(websocket, "e1")

            assert reply == {"type": "resume", "status": "success", "replayed": 1}
            await wait_until(lambda: websocket.send_text.await_count == 2)
        sent = [
            json.loads(c.args[0])["id"] for c in websocket.send_text.await_args_list
        ]
        assert sent == ["live", "e2"]


@pytest.mark.anyio
class TestDrain:
    """The stop: what is queued reaches the clients, then 1001."""

    async def test_queued_events_go_out_then_every_client_gets_1001(
        self, manager, make_websocket, websocket_logs
    ):
        websockets = [make_websocket(), make_websocket()]
        for websocket in websockets:
            await manager.connect(websocket)
        for number in range(5):
            ironic_on(manager, f"e{number}")

        async with broadcasting(manager):
            with anyio.fail_after(5):
                await manager.drain(timeout=5)

        for websocket in websockets:
            assert sent_ids(websocket) == [f"e{n}" for n in range(5)]
            websocket.close.assert_awaited_once_with(
                code=1001, reason="server shutting down"
            )
        assert manager.connections == {}
        assert (
            WS,
            logging.INFO,
            "Closed every WebSocket client for the stop (0 frames undelivered)",
        ) in websocket_logs()

    async def test_a_client_that_does_not_take_its_frames_is_closed_at_the_bound(
        self, manager, make_websocket, websocket_logs
    ):
        stuck = make_websocket()
        stuck.send_text.side_effect = hang_forever
        await manager.connect(stuck)
        ironic_on(manager, "e1")
        ironic_on(manager, "e2")

        async with broadcasting(manager):
            with anyio.fail_after(5):
                await manager.drain(timeout=0.1)

        stuck.close.assert_awaited_once_with(code=1001, reason="server shutting down")
        assert (
            WS,
            logging.INFO,
            "Closed every WebSocket client for the stop (2 frames undelivered)",
        ) in websocket_logs()


class DirectClient:
    """A fake websocket whose server offers a FrameWriter (as osism's own
    WebSocket protocol does); what reaches it, directly or through its
    outbox and sender task, goes into one log in order."""

    def __init__(self, make_websocket, host="direct", port=1):
        self.log = []
        self.queued = []
        self.accepting = True
        self.write_calls = 0
        self.websocket = make_websocket()
        self.websocket.client.host, self.websocket.client.port = host, port
        self.websocket.scope = {"extensions": {DIRECT_WRITE: {"writer": self}}}
        self.websocket.send_text.side_effect = self._send_text
        self.gate = asyncio.Event()
        self.gate.set()

    def write_text_now(self, text):
        self.write_calls += 1
        if not self.accepting:
            return False
        self.queued.append(text)
        return True

    def write_frames_now(self, batch):
        self.write_calls += 1
        if not self.accepting:
            return False
        self.queued.extend(batch.texts)
        self.flush()
        return True

    def flush(self):
        self.log.extend(("direct", text) for text in self.queued)
        self.queued.clear()

    async def _send_text(self, text):
        await self.gate.wait()
        self.log.append(("outbox", text))

    def frames(self):
        return [frame for _, frame in self.log]

    def handed(self):
        """Frames written out, then those given to the connection in this
        turn of the loop (written in the next)."""
        return self.frames() + self.queued

    def event_types(self):
        return [json.loads(frame).get("event_type") for frame in self.frames()]


class LightWebSocket:
    client = None
    scope: dict = {}


class LightClient:
    """A client of the direct path only, cheaper than a MagicMock by far:
    a websocket with a scope and nothing to await (a frame that took the
    outbox path would fail its sender)."""

    def __init__(self, manager, **filters):
        self.frames = []
        self.queued = []
        self.websocket = LightWebSocket()
        self.websocket.scope = {"extensions": {DIRECT_WRITE: {"writer": self}}}
        connect_fake(manager, self.websocket, **filters)

    def write_text_now(self, text):
        self.queued.append(text)
        return True

    def write_frames_now(self, batch):
        self.frames.extend(self.queued)
        self.frames.extend(batch.texts)
        self.queued.clear()
        return True

    def flush(self):
        self.frames.extend(self.queued)
        self.queued.clear()


def connect_direct(manager, make_websocket, port=1, **filters):
    client = DirectClient(make_websocket, port=port)
    connect_fake(manager, client.websocket, **filters)
    return client


@pytest.mark.anyio
class TestFanOutByFilterGroups:
    async def test_a_thousand_clients_without_filters_cost_one_match_per_event(
        self, manager, broadcaster, mocker
    ):
        everything = [LightClient(manager) for _ in range(1000)]
        compute = [LightClient(manager, service_filters=["compute"]) for _ in range(10)]
        node1 = [LightClient(manager, node_filters=["node1"]) for _ in range(5)]
        spy = mocker.spy(WebSocketConnection, "matches_filters")
        messages = [event("compute.instance.update"), event("baremetal.x", "node1")]

        for message in messages:
            await manager.add_event(message)
        await wait_until(lambda: manager.stats["received"] == 2)

        # Three groups, two events: six matches for 1015 clients.
        assert spy.call_count == 6
        both = [m.to_json() for m in messages]
        assert all(client.frames == both for client in everything)
        assert all(client.frames == both[:1] for client in compute)
        assert all(client.frames == both[1:] for client in node1)
        assert manager.stats["broadcast"] == 1000 * 2 + 10 + 5
        assert manager.stats["dropped"] == 0
        assert all(c.sender is None for c in manager.connections.values())

    async def test_the_frame_is_serialised_once_for_every_client(
        self, manager, make_websocket, broadcaster
    ):
        clients = [connect_direct(manager, make_websocket, n) for n in range(3)]
        clients.append(
            connect_direct(manager, make_websocket, 3, event_filters=["image.update"])
        )

        await manager.add_event(event("image.update"))
        await wait_until(lambda: manager.stats["broadcast"] == 4)

        frames = [client.frames()[0] for client in clients]
        assert all(frame is frames[0] for frame in frames)

    async def test_a_filter_assigned_as_attribute_regroups_the_client(
        self, manager, make_websocket, broadcaster
    ):
        first = connect_direct(manager, make_websocket, 1)
        second = connect_direct(manager, make_websocket, 2)
        await manager.add_event(event("baremetal.node.update"))
        await wait_until(lambda: manager.stats["received"] == 1)

        manager.connections[second.websocket].event_filters = ["compute.instance.x"]
        await manager.add_event(event("baremetal.node.update"))
        await manager.add_event(event("compute.instance.x"))
        await wait_until(lambda: manager.stats["received"] == 3)

        assert first.event_types() == [
            "baremetal.node.update",
            "baremetal.node.update",
            "compute.instance.x",
        ]
        assert second.event_types() == ["baremetal.node.update", "compute.instance.x"]

    async def test_the_first_of_a_group_changing_its_filters_leaves_the_others(
        self, manager, make_websocket, broadcaster
    ):
        first = connect_direct(manager, make_websocket, 1)
        others = [connect_direct(manager, make_websocket, n) for n in (2, 3)]
        await manager.add_event(event("image.update"))
        await wait_until(lambda: manager.stats["received"] == 1)

        manager.connections[first.websocket].node_filters = ["node9"]
        await manager.add_event(event("image.update"))
        await wait_until(lambda: manager.stats["received"] == 2)

        assert first.event_types() == ["image.update"]
        assert all(c.event_types() == ["image.update"] * 2 for c in others)

    async def test_update_filters_regroups_the_client(
        self, manager, make_websocket, broadcaster
    ):
        watcher = connect_direct(manager, make_websocket, 1, node_filters=["n1"])
        client = connect_direct(manager, make_websocket, 2)

        await manager.update_filters(client.websocket, node_filters=["n1"])
        await manager.add_event(event("x.y", "n2"))
        await manager.add_event(event("x.y", "n1"))
        await wait_until(lambda: manager.stats["received"] == 2)

        assert watcher.frames() == client.frames()
        assert [json.loads(f)["node_name"] for f in client.frames()] == ["n1"]

    async def test_a_client_that_disconnected_leaves_its_group(
        self, manager, make_websocket, broadcaster
    ):
        first = connect_direct(manager, make_websocket, 1)
        second = connect_direct(manager, make_websocket, 2)

        await manager.disconnect(first.websocket)
        await manager.add_event(event("image.update"))
        await wait_until(lambda: manager.stats["received"] == 1)

        assert first.frames() == []
        assert second.event_types() == ["image.update"]
        assert manager.stats["broadcast"] == 1


@pytest.mark.anyio
class TestDirectWrites:
    async def test_a_connected_client_gets_its_frames_without_a_sender(
        self, manager, make_websocket, broadcaster
    ):
        client = DirectClient(make_websocket)
        await manager.connect(client.websocket)
        messages = [event(f"svc.e{n}") for n in range(20)]

        for message in messages:
            await manager.add_event(message)
        await wait_until(lambda: len(client.log) == 20)

        assert client.log == [("direct", m.to_json()) for m in messages]
        connection = manager.connections[client.websocket]
        assert (connection.outbox, connection.sender) == (None, None)
        client.websocket.send_text.assert_not_awaited()

    async def test_replays_replies_and_live_events_come_in_order(
        self, manager, make_websocket
    ):
        for event_id in ("e1", "e2", "e3"):
            ironic_on(manager, event_id)
        async with broadcasting(manager):
            await wait_until(lambda: manager.stats["received"] == 3)
            client = DirectClient(make_websocket)
            await manager.connect(client.websocket)

            reply = manager.resume(client.websocket, "e1")
            manager.send_to(client.websocket, reply)
            ironic_on(manager, "e4")
            await wait_until(lambda: len(client.log) == 4)

        assert reply == {"type": "resume", "status": "success", "replayed": 2}
        frames = [json.loads(frame) for kind, frame in client.log if kind == "direct"]
        assert [f.get("id", f.get("type")) for f in frames] == [
            "e2",
            "e3",
            "resume",
            "e4",
        ]
        client.websocket.send_text.assert_not_awaited()

    async def test_a_reply_goes_behind_the_events_in_the_outbox(
        self, manager, make_websocket, broadcaster
    ):
        client = connect_direct(manager, make_websocket)
        client.accepting = False
        client.gate.clear()
        await manager.add_event(event("svc.e1"))
        await wait_until(lambda: client.websocket.send_text.await_count == 1)

        client.accepting = True
        manager.send_to(client.websocket, {"type": "error", "message": "m"})
        client.gate.set()
        await wait_until(lambda: len(client.log) == 2)

        assert [kind for kind, _ in client.log] == ["outbox", "outbox"]
        assert json.loads(client.log[1][1]) == {"type": "error", "message": "m"}

    async def test_a_refusing_client_is_dropped_past_max_pending(
        self, make_websocket, websocket_logs
    ):
        manager = WebSocketManager(send_timeout=5.0, max_pending=3)
        paused = connect_direct(manager, make_websocket, 1)
        healthy = connect_direct(manager, make_websocket, 2)
        paused.accepting = False
        paused.gate.clear()

        async with broadcasting(manager):
            for n in range(6):
                await manager.add_event(event(f"svc.e{n}"))
            await wait_until(lambda: paused.websocket.close.await_count == 1)

        paused.websocket.close.assert_awaited_once_with(code=CLOSE_DROPPED)
        assert list(manager.connections) == [healthy.websocket]
        assert manager.stats["dropped"] == 1
        assert paused.log == []
        assert healthy.event_types() == [f"svc.e{n}" for n in range(6)]
        assert (
            WS,
            logging.WARNING,
            "Dropped WebSocket client direct:1: it fell behind: "
            "more than 3 frames were pending",
        ) in websocket_logs()

    async def test_after_its_outbox_drained_a_client_is_written_to_directly(
        self, manager, make_websocket, broadcaster
    ):
        client = connect_direct(manager, make_websocket)
        client.accepting = False
        client.gate.clear()
        await manager.add_event(event("svc.e1"))
        await wait_until(lambda: client.websocket.send_text.await_count == 1)
        # Taking frames again while e1 is being sent: e2 waits behind it.
        client.accepting = True
        await manager.add_event(event("svc.e2"))
        await wait_until(lambda: manager.stats["received"] == 2)
        assert client.log == []

        client.gate.set()
        connection = manager.connections[client.websocket]
        await wait_until(lambda: connection.outbox.pending == 0)
        await manager.add_event(event("svc.e3"))
        await wait_until(lambda: len(client.log) == 3)

        assert [kind for kind, _ in client.log] == ["outbox", "outbox", "direct"]
        assert client.event_types() == ["svc.e1", "svc.e2", "svc.e3"]

    async def test_the_drain_at_stop_counts_no_direct_frames_as_undelivered(
        self, manager, make_websocket, broadcaster, websocket_logs
    ):
        client = connect_direct(manager, make_websocket)
        await manager.add_event(event("svc.e1"))
        await wait_until(lambda: len(client.log) == 1)

        with anyio.fail_after(5):
            await manager.drain(timeout=1.0)

        assert (
            WS,
            logging.INFO,
            "Closed every WebSocket client for the stop (0 frames undelivered)",
        ) in websocket_logs()
        client.websocket.close.assert_awaited_once_with(
            code=1001, reason="server shutting down"
        )

    async def test_the_drain_at_stop_writes_what_is_staged_before_closing(
        self, manager, make_websocket, started, websocket_logs
    ):
        client = connect_direct(manager, make_websocket)
        manager.deliver_notification("image.update", {}, None, "e1")
        assert manager.fan_out.pending == 1

        with anyio.fail_after(5):
            await manager.drain(timeout=1.0)

        assert [json.loads(f)["id"] for f in client.frames()] == ["e1"]
        assert (
            WS,
            logging.INFO,
            "Closed every WebSocket client for the stop (0 frames undelivered)",
        ) in websocket_logs()

    async def test_a_drain_with_no_time_left_counts_the_staged_frames(
        self, manager, make_websocket, started, websocket_logs
    ):
        connect_direct(manager, make_websocket)
        connect_direct(manager, make_websocket, port=2)
        manager.deliver_notification("image.update", {}, None, "e1")

        with anyio.fail_after(5):
            await manager.drain(timeout=0)

        assert (
            WS,
            logging.INFO,
            "Closed every WebSocket client for the stop (2 frames undelivered)",
        ) in websocket_logs()


@pytest.fixture
async def started(manager):
    """The manager's own broadcaster, started as the API starts it."""
    await manager.start()
    yield manager
    with anyio.fail_after(5):
        await manager.stop()


@pytest.mark.anyio
class TestDeliverNotification:
    async def test_with_the_broadcaster_running_it_is_fanned_out_at_once(
        self, manager, make_websocket, started
    ):
        client = connect_direct(manager, make_websocket)

        manager.deliver_notification("image.update", {}, None, "e1")

        # Fanned out in this turn of the loop (nothing awaited in between),
        # written to the clients at its end.
        assert manager.event_queue.empty()
        assert manager.stats["received"] == 1
        assert "e1" in manager.history
        assert manager.fan_out.pending == 1
        assert client.handed() == []
        await asyncio.sleep(0)
        assert [json.loads(f)["id"] for f in client.handed()] == ["e1"]
        assert manager.fan_out.pending == 0

    async def test_a_client_that_connects_and_resumes_within_the_turn_gets_each_once(
        self, manager, make_websocket, started
    ):
        early = connect_direct(manager, make_websocket)
        manager.deliver_notification("image.update", {}, None, "e0")
        await asyncio.sleep(0)

        manager.deliver_notification("image.update", {}, None, "e1")
        late = DirectClient(make_websocket, port=2)
        await manager.connect(late.websocket)
        reply = manager.resume(late.websocket, "e0")
        manager.deliver_notification("image.update", {}, None, "e2")
        # Nothing was written meanwhile: e1 was staged before the late
        # client connected, e2 after.
        assert early.handed() == [early.frames()[0]]

        await asyncio.sleep(0)
        ids = [json.loads(f)["id"] for f in early.handed()]
        assert ids == ["e0", "e1", "e2"]
        assert reply["replayed"] == 1
        assert [json.loads(f)["id"] for f in late.handed()] == ["e1", "e2"]

    async def test_without_a_broadcaster_it_is_queued(self, manager, make_websocket):
        client = connect_direct(manager, make_websocket)

        manager.deliver_notification("image.update", {}, None, "e1")

        assert [e.id for e in queued_events(manager)] == ["e1"]
        assert client.log == []

    async def test_after_the_broadcaster_ended_it_is_queued(
        self, manager, make_websocket
    ):
        client = connect_direct(manager, make_websocket)
        await manager.start()
        with anyio.fail_after(5):
            await manager.stop()

        manager.deliver_notification("image.update", {}, None, "e1")

        assert [e.id for e in queued_events(manager)] == ["e1"]
        assert client.log == []

    async def test_it_goes_behind_the_events_that_are_queued(
        self, manager, make_websocket, started
    ):
        client = connect_direct(manager, make_websocket)

        manager.enqueue_notification("image.update", {}, None, "e1")
        manager.deliver_notification("image.update", {}, None, "e2")
        manager.deliver_notification("image.update", {}, None, "e3")

        assert manager.event_queue.qsize() == 3
        await wait_until(lambda: len(client.log) == 3)
        assert [json.loads(f)["id"] for f in client.handed()] == ["e1", "e2", "e3"]

    async def test_a_notification_that_is_no_event_is_counted_and_logged(
        self, manager, started, websocket_logs
    ):
        manager.deliver_notification("baremetal.x", ["a", "b"])

        assert manager.stats["invalid"] == 1
        assert manager.stats["received"] == 0
        assert (
            WS,
            logging.ERROR,
            "Error processing notification 'baremetal.x': "
            "payload must be an object, not list",
        ) in websocket_logs()

    async def test_an_event_sent_already_is_not_sent_again(
        self, manager, make_websocket, started
    ):
        client = connect_direct(manager, make_websocket)

        manager.deliver_notification("image.update", {}, None, "e1")
        manager.deliver_notification("image.update", {}, None, "e1")
        await asyncio.sleep(0)

        assert len(client.handed()) == 1
        assert manager.stats["duplicates"] == 1

    async def test_a_failing_fan_out_is_logged_and_the_next_goes_out(
        self, manager, make_websocket, started, websocket_logs, mocker
    ):
        client = connect_direct(manager, make_websocket)
        real_fan_out = manager._fan_out
        failing = mocker.patch.object(manager, "_fan_out", side_effect=ValueError("x"))

        manager.deliver_notification("image.update", {}, None, "e1")
        failing.side_effect = real_fan_out
        manager.deliver_notification("image.update", {}, None, "e2")
        await asyncio.sleep(0)

        assert [json.loads(f)["id"] for f in client.handed()] == ["e2"]
        assert (WS, logging.ERROR, "Error in event broadcaster: x") in (
            websocket_logs()
        )


@pytest.mark.anyio
class TestHistoryBytes:
    async def test_the_history_counts_the_length_of_each_frame(
        self, manager, make_websocket, started
    ):
        client = connect_direct(manager, make_websocket)

        manager.deliver_notification("image.update", {"x": "é" * 10}, None, "e1")
        manager.deliver_notification("image.update", {}, None, "e2")
        await asyncio.sleep(0)

        assert manager.history.nbytes == sum(len(f) for f in client.handed())

    async def test_a_heartbeat_is_sent_but_not_kept(
        self, manager, make_websocket, started
    ):
        client = connect_direct(manager, make_websocket)

        await manager.send_heartbeat()
        await wait_until(lambda: len(client.log) == 1)

        assert client.event_types() == ["heartbeat"]
        assert (len(manager.history), manager.history.nbytes) == (0, 0)
