"""RabbitMQ restarts under a running listener while notifications keep
coming: the listener reconnects by itself and every notification a queue
took reaches the WebSocket client.

Delivery is at least once: a notification the listener handed over but
could not acknowledge before the broker went away comes again after the
restart. The test asserts that every accepted notification arrives and that
nothing else does, and reports the duplicates.
"""

import signal
import threading
import uuid
from collections import Counter
from typing import Any, Dict, List

import anyio
import pytest

from tests.harness.clients import open_stream
from tests.harness.fixtures import MEASUREMENTS
from tests.harness.openstack_notifier import Notifier, Unrouted
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.rabbitmq]

EVENT_TYPE = "baremetal.node.power_set.end"
# Notifications accepted before the stop, and after the listener is back.
BEFORE, AFTER = 100, 100
# Pace of the publisher: about 200 notifications a second.
PUBLISH_INTERVAL = 0.005
# Pause of the publisher after a failed attempt.
RETRY_INTERVAL = 0.05
ARRIVAL_DEADLINE = 30.0


def payload(node: str, resource_id: str) -> Dict[str, Any]:
    return {"ironic_object.data": {"name": node, "uuid": resource_id}}


class Publisher:
    """Publishes numbered notifications on a thread of its own until told to
    stop. A notification counts as accepted once the broker confirmed it
    and a queue took it; one that failed (broker away, or no queue bound
    yet) is published again, under the same number, until it is."""

    def __init__(self, url: str, node: str) -> None:
        self.notifier = Notifier(url)
        self.node = node
        self.accepted: List[str] = []
        self.failures: Counter[str] = Counter()
        self._stop = threading.Event()
        # A daemon: a test that failed without stopping it must not keep
        # the test run's interpreter from exiting.
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.notifier.close()

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            resource_id = f"n{number:05d}"
            try:
                self.notifier.notify(
                    "ironic", EVENT_TYPE, payload(self.node, resource_id)
                )
            except Unrouted:
                self.failures["unrouted"] += 1
                self._stop.wait(RETRY_INTERVAL)
                continue
            except Exception as e:
                self.failures[type(e).__name__] += 1
                self.notifier.reset()
                self._stop.wait(RETRY_INTERVAL)
                continue
            self.accepted.append(resource_id)
            number += 1
            self._stop.wait(PUBLISH_INTERVAL)


def ironic_listener(
    listener: Any, rabbitmq: Any, redis_server: Any, server: Any, heartbeat: int
) -> Any:
    """A listener of the ironic exchange (declared first, as the service
    does) whose events reach ``server``'s clients."""
    setup = Notifier(rabbitmq.url)
    setup.declare("ironic")
    setup.close()
    return listener(
        rabbitmq,
        redis_server,
        server.channel,
        bound=["ironic"],
        LISTENER_EXCHANGES="ironic",
        LISTENER_HEARTBEAT=str(heartbeat),
    )


def count_queued(url: str, queue: str) -> int:
    probe = Notifier(url)
    try:
        return probe.queued(queue)
    finally:
        probe.close()


def queued_text(queued: Dict[str, int]) -> str:
    return "".join(f", {count} queued {when}" for when, count in queued.items())


class TestTheListenerSurvivesARabbitMQRestart:
    @pytest.mark.timeout(150)
    @pytest.mark.anyio
    @pytest.mark.parametrize("stalled", [False, True], ids=["running", "stalled"])
    async def test_every_accepted_notification_arrives_after_a_restart(
        self, stalled, own_rabbitmq_server, redis_server, redis_mode_server, listener
    ):
        """``stalled``: the listener is stopped (SIGSTOP) before the broker
        goes down and continued after it is back, so that notifications wait
        in its durable queue across the restart."""
        rabbitmq = own_rabbitmq_server
        server = redis_mode_server
        node = f"node-{uuid.uuid4().hex[:8]}"
        # A connection the restart left silent (no reset reached the stalled
        # listener) is taken for dead after 10 s.
        process = ironic_listener(listener, rabbitmq, redis_server, server, 5)
        received: List[str] = []
        queued: Dict[str, int] = {}
        publisher = Publisher(rabbitmq.url, node)

        async with open_stream(server.ws_url, node_filters=[node]) as stream:

            async def receive_for_ever() -> None:
                while True:
                    frame = await stream.receive(timeout=ARRIVAL_DEADLINE)
                    received.append(frame["data"]["resource_id"])

            def accepted_at_least(count: int) -> bool:
                return len(publisher.accepted) >= count

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(receive_for_ever)
                publisher.start()
                try:
                    await wait_until(lambda: accepted_at_least(BEFORE), 15)
                    if stalled:
                        process.process.send_signal(signal.SIGSTOP)
                        await wait_until(lambda: accepted_at_least(2 * BEFORE), 15)
                    stopped_at = len(publisher.accepted)
                    await anyio.to_thread.run_sync(rabbitmq.stop)
                    await anyio.to_thread.run_sync(rabbitmq.start)
                    if stalled:
                        queued["after the restart"] = await anyio.to_thread.run_sync(
                            lambda: count_queued(rabbitmq.url, process.queue("ironic"))
                        )
                        process.process.send_signal(signal.SIGCONT)
                    # The listener reconnects and binds its queue again by
                    # itself, and the services' notifications get through.
                    await anyio.to_thread.run_sync(
                        lambda: process.wait_for_output(
                            process.bound_line("ironic"), count=2, timeout=30
                        )
                    )
                    back_at = len(publisher.accepted)
                    await wait_until(lambda: accepted_at_least(back_at + AFTER), 30)
                finally:
                    if stalled:
                        process.process.send_signal(signal.SIGCONT)
                    # Shielded: stopped even when the test is cancelled.
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(publisher.stop)
                accepted = set(publisher.accepted)
                await wait_until(lambda: accepted <= set(received), ARRIVAL_DEADLINE)
                tasks.cancel_scope.cancel()

        assert set(received) == accepted
        assert len(accepted) == len(publisher.accepted)
        duplicates = len(received) - len(set(received))
        output = process.output()
        assert process.process.poll() is None, "the listener ended"
        assert "osism.listener: Lost the connection to the broker" in output
        assert output.count("osism.listener: Connected to the broker at") == 2
        if stalled:
            # Kept in the durable queue across the restart (persistent
            # messages): ready ones, and the ones the stalled listener had
            # been sent but had not acknowledged.
            assert queued["after the restart"] > 0
        state = "stalled" if stalled else "running"
        MEASUREMENTS.append(
            f"listener through a RabbitMQ restart ({state} listener"
            f"{queued_text(queued)}): {len(accepted)} notifications "
            f"accepted by the broker ({stopped_at} before the stop, "
            f"{len(accepted) - back_at} after the listener was back), "
            f"{len(set(received))} delivered, {duplicates} duplicates; publisher "
            f"retries {dict(publisher.failures)}; node start "
            f"{rabbitmq.start_seconds[-1]:.1f} s"
        )


class TestABrokerThatStopsAnsweringIsLeft:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_the_heartbeat_notices_and_the_listener_reconnects_when_it_answers(
        self, own_rabbitmq_server, redis_server, redis_mode_server, listener
    ):
        rabbitmq = own_rabbitmq_server
        server = redis_mode_server
        node = f"node-{uuid.uuid4().hex[:8]}"
        process = ironic_listener(listener, rabbitmq, redis_server, server, 2)
        notifier = Notifier(rabbitmq.url)
        frozen = "Lost the connection to the broker (ConnectionForced: Too many "
        try:
            async with open_stream(server.ws_url, node_filters=[node]) as stream:
                rabbitmq.freeze()
                try:
                    # No reset, no close: only the missing heartbeats tell.
                    await anyio.to_thread.run_sync(
                        lambda: process.wait_for_output(frozen, timeout=15)
                    )
                finally:
                    rabbitmq.freeze(False)
                await anyio.to_thread.run_sync(
                    lambda: process.wait_for_output(
                        process.bound_line("ironic"), count=2, timeout=30
                    )
                )
                await anyio.to_thread.run_sync(
                    lambda: notifier.notify("ironic", EVENT_TYPE, payload(node, "r-1"))
                )
                frame = await stream.receive()
        finally:
            notifier.close()

        assert frame["data"]["resource_id"] == "r-1"
        assert process.process.poll() is None, "the listener ended"
