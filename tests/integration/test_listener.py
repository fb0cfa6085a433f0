"""The listener end to end: a notification published on a real RabbitMQ the
way an OpenStack service publishes it reaches a WebSocket client of a real
API server, through ``osism service listener`` and Redis."""

import signal
import time
import uuid
from typing import Any, Dict, List, NamedTuple

import anyio
import pytest

from osism.settings import LISTENER_EXCHANGES
from tests.harness.clients import open_stream
from tests.harness.fixtures import MEASUREMENTS
from tests.harness.notifications import expected_data
from tests.harness.ports import closed_port

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.rabbitmq]

# The exchanges the tests publish on; they exist before the listener starts,
# as in a running cloud.
SERVICES = ["ironic", "nova", "neutron"]

BURST = 1000


class Case(NamedTuple):
    service: str
    priority: str
    event_type: str
    service_type: str
    # The publisher id as the service sends it; "{node}" is the node's name.
    publisher: str


def versioned_payload(case: Case, node: str, resource_id: str) -> Dict[str, Any]:
    """A payload of ``case.service`` as the service sends it, concerning
    ``node`` and ``resource_id`` (see osism.services.notifications)."""
    if case.service == "nova":
        data = {"uuid": resource_id, "host": node, "display_name": "vm-1"}
        return {
            "nova_object.name": "InstanceActionPayload",
            "nova_object.namespace": "nova",
            "nova_object.version": "1.8",
            "nova_object.data": {**data, "state": "stopped", "power_state": "shutdown"},
        }
    if case.service == "neutron":
        # Legacy: neutron has no versioned notifications.
        port = {"id": resource_id, "binding:host_id": node, "device_id": "inst-1"}
        return {"port": {**port, "name": "", "status": "ACTIVE"}}
    return {
        "ironic_object.name": "NodeSetPowerStatePayload",
        "ironic_object.namespace": "ironic",
        "ironic_object.version": "1.16",
        "ironic_object.data": {
            "uuid": resource_id,
            "name": node,
            "power_state": "power on",
            "provision_state": "active",
        },
    }


CASES = [
    Case(
        "ironic",
        "info",
        "baremetal.node.power_set.end",
        "baremetal",
        "ironic-conductor.host1",
    ),
    Case(
        "ironic",
        "error",
        "baremetal.node.provision_set.error",
        "baremetal",
        "ironic-conductor.host1",
    ),
    Case("nova", "info", "instance.power_off.end", "compute", "nova-compute:{node}"),
    Case("neutron", "info", "port.update.end", "network", "network.host1"),
]


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def exchanges(notifier) -> None:
    """The services' exchanges exist, as in a running cloud."""
    for service in SERVICES:
        notifier.declare(service)


class TestANotificationReachesAFilteredWebSocketClient:
    @pytest.mark.timeout(30)
    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "case", CASES, ids=[f"{c.service}-{c.priority}" for c in CASES]
    )
    async def test_from_the_service_exchange_to_the_client_filtering_its_node(
        self, case, redis_mode_server, notifier, exchanges, stream_listener
    ):
        server = redis_mode_server
        stream_listener(bound=[case.service])
        node, resource_id = unique("node"), unique("resource")
        payload = versioned_payload(case, node, resource_id)

        publisher = case.publisher.format(node=node)

        async with open_stream(server.ws_url, node_filters=[node]) as stream:
            await anyio.to_thread.run_sync(
                lambda: notifier.notify(
                    case.service,
                    case.event_type,
                    payload,
                    case.priority,
                    publisher_id=publisher,
                )
            )
            frame = await stream.receive()

        assert frame["event_type"] == case.event_type
        assert frame["source"] == "openstack"
        assert frame["node_name"] == node
        assert frame["data"]["resource_id"] == resource_id
        assert frame["data"] == {
            **expected_data(payload, case.service_type, resource_id),
            "publisher_id": publisher,
        }


class TestExchanges:
    @pytest.mark.timeout(30)
    @pytest.mark.anyio
    async def test_an_exchange_created_after_the_start_is_bound_and_consumed(
        self, redis_mode_server, notifier, stream_listener
    ):
        server = redis_mode_server
        late = unique("late")
        process = stream_listener(bound=[], LISTENER_EXCHANGES=f"ironic,{late}")
        process.wait_for_output(f"osism.listener: Exchange {late} is not there yet")
        node = unique("node")
        case = CASES[0]

        await anyio.to_thread.run_sync(lambda: notifier.declare(late))
        process.wait_for_output(process.bound_line(late))
        async with open_stream(server.ws_url, node_filters=[node]) as stream:
            await anyio.to_thread.run_sync(
                lambda: notifier.notify(
                    late, case.event_type, versioned_payload(case, node, "r-1")
                )
            )
            frame = await stream.receive()

        assert (frame["node_name"], frame["data"]["resource_id"]) == (node, "r-1")
        assert process.output().count(f"Exchange {late} is not there yet") == 1


class TestMalformedNotifications:
    @pytest.mark.timeout(30)
    @pytest.mark.anyio
    async def test_are_logged_once_acknowledged_and_the_stream_goes_on(
        self, redis_mode_server, notifier, exchanges, stream_listener
    ):
        server = redis_mode_server
        process = stream_listener()
        node = unique("node")
        case = CASES[0]

        async with open_stream(server.ws_url, node_filters=[node]) as stream:

            def publish() -> None:
                notifier.publish_raw(
                    "ironic", {"oslo.version": "2.0", "oslo.message": "{broken"}
                )
                notifier.publish_raw("ironic", b"\x00\x01 not json")
                notifier.notify(
                    "ironic", case.event_type, versioned_payload(case, node, "r-2")
                )

            await anyio.to_thread.run_sync(publish)
            frame = await stream.receive()

        assert frame["data"]["resource_id"] == "r-2"
        output = process.output()
        assert output.count("Skipping a malformed notification") == 2
        assert (
            "Skipping a malformed notification from exchange 'ironic', routing key "
            "'ironic_versioned_notifications.info': 'oslo.message' is not JSON"
        ) in output
        assert "body begins b'\\x00\\x01 not json'" in output
        assert notifier.queued(process.queue("ironic")) == 0


class TestStopping:
    @pytest.mark.timeout(30)
    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_a_signal_stops_the_listener_cleanly_with_exit_code_0(
        self, sig, rabbitmq_server, redis_server, channel, exchanges, listener
    ):
        process = listener(rabbitmq_server, redis_server, channel, bound=SERVICES)

        assert process.stop(sig) == 0

        output = process.output()
        for line in [
            "osism.listener: Listener starting: broker "
            f"amqp://guest:**@127.0.0.1:{rabbitmq_server.port}//, queues "
            f"{process.prefix}-<service>: "
            + "; ".join(
                f"{service} (exchange {service}, routing keys "
                f"{service}_versioned_notifications.{{info,warn,error,critical}})"
                for service in LISTENER_EXCHANGES
            ),
            "osism.listener: Connected to the broker at "
            f"amqp://guest:**@127.0.0.1:{rabbitmq_server.port}//; consuming from "
            f"{process.prefix}-ironic, {process.prefix}-nova",
            f"osism.listener: Received {sig.name}, stopping the listener",
            "osism.listener: Stopped consuming",
            "osism.event_bridge: Shutting down the event bridge",
            "osism.listener: Listener stopped (received 0, handed over 0, "
            "malformed 0)",
        ]:
            assert line in output
        assert "guest:guest" not in output
        assert "Traceback" not in output

    @pytest.mark.timeout(30)
    def test_a_listener_waiting_for_an_unreachable_broker_stops_at_once(
        self, rabbitmq_server, redis_server, channel, listener
    ):
        with closed_port() as port:
            process = listener(
                rabbitmq_server,
                redis_server,
                channel,
                BROKER_URI=f"amqp://guest:guest@127.0.0.1:{port}//",
                LISTENER_RECONNECT_MAX_DELAY="30",
            )
            # Waits of 1 s and 2 s, and now one of 4 s.
            process.wait_for_output("next attempt in 4 s")
            stopping = time.monotonic()
            code = process.stop()
            stopped_in = time.monotonic() - stopping

        assert code == 0
        # The wait ends with the stop request (and the process exits).
        assert stopped_in < 2.5
        output = process.output()
        assert (
            output.count(
                f"Cannot connect to the broker at amqp://guest:**@127.0.0.1:{port}//"
            )
            == 3
        )
        assert "osism.listener: Listener stopped" in output


class TestSeveralBrokers:
    @pytest.mark.timeout(30)
    def test_the_next_broker_of_broker_uri_is_used_when_the_first_is_down(
        self, rabbitmq_server, redis_server, channel, exchanges, listener
    ):
        with closed_port() as port:
            down = f"amqp://guest:guest@127.0.0.1:{port}//"
            process = listener(
                rabbitmq_server,
                redis_server,
                channel,
                bound=["ironic"],
                BROKER_URI=f"{down};{rabbitmq_server.url}",
            )

        output = process.output()
        assert (
            f"Cannot connect to the broker at amqp://guest:**@127.0.0.1:{port}//"
        ) in output
        assert (
            "Connected to the broker at "
            f"amqp://guest:**@127.0.0.1:{rabbitmq_server.port}//"
        ) in output


class TestABurst:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_a_thousand_notifications_all_reach_a_connected_client(
        self, redis_mode_server, notifier, exchanges, stream_listener
    ):
        server = redis_mode_server
        stream_listener()
        node = unique("node")
        case = CASES[0]
        sent = [f"n{i:04d}" for i in range(BURST)]
        received: List[str] = []
        timings: Dict[str, float] = {}

        def publish_burst() -> None:
            for resource_id in sent:
                payload = versioned_payload(case, node, resource_id)
                notifier.notify("ironic", case.event_type, payload)
            timings["published"] = time.monotonic()

        async with open_stream(server.ws_url, node_filters=[node]) as stream:

            async def receive_all() -> None:
                while len(received) < BURST:
                    frame = await stream.receive(timeout=30)
                    received.append(frame["data"]["resource_id"])

            started = time.monotonic()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(receive_all)
                await anyio.to_thread.run_sync(publish_burst)
            elapsed = time.monotonic() - started

        assert sorted(received) == sent
        MEASUREMENTS.append(
            f"listener burst: {BURST} notifications from RabbitMQ to a WebSocket "
            f"client in {elapsed:.2f} s (publishing with confirms took "
            f"{timings['published'] - started:.2f} s; "
            f"{BURST / elapsed:.0f} notifications/s end to end)"
        )
