"""Nothing lost from RabbitMQ to the screen (issue 14): the listener layer.

The whole stream runs (RabbitMQ -> ``osism service listener`` -> Redis ->
two API processes -> a WebSocket client on each) while numbered
notifications flow, and the listener or the broker is hit with real
signals: ``kill -9`` mid-stream, SIGTERM during a burst, a broker restart.
Each test counts per client what was sent (taken by the broker) and what
arrived: nothing missing, nothing twice, order kept. Delivery from RabbitMQ
is at least once (a notification published on Redis but not acknowledged
comes again); the event's id is the notification's message_id, so such a
redelivery must never reach a client twice.
"""

import contextlib
import re
import signal
import time
from typing import List

import anyio
import pytest

from tests.harness import signals
from tests.harness.fixtures import MEASUREMENTS
from tests.harness.openstack_notifier import Notifier
from tests.harness.pipeline import Pipeline, counters, start_pipeline
from tests.harness.resuming_client import ResumingClient, all_arrived, reading
from tests.harness.tally import figures_line
from tests.harness.waiting import wait_for, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.rabbitmq]

ARRIVAL_DEADLINE = 30.0
STATS = re.compile(
    r"Listener stopped \(received (\d+), handed over (\d+), malformed \d+\)"
)


def check_ids(pipe: Pipeline, clients: List[ResumingClient], sent: List[int]) -> None:
    """Every event's id is its notification's message_id."""
    for client in clients:
        wrong = [n for n in sent if client.tally.ids[n] != pipe.flow.message_id(n)]
        assert not wrong, f"{client.name}: ids not the message ids for {wrong[:10]}"


def redelivered_note(pipe: Pipeline) -> str:
    """How many redelivered notifications the API processes skipped (sent
    already: their ``duplicates`` counter)."""
    skipped = [counters(api)["duplicates"] for api in pipe.apis]
    return f"redelivered and skipped by the APIs {skipped}"


@pytest.fixture
def pipeline(rabbitmq_server, redis_server, api_server, listener):
    pipe = start_pipeline(rabbitmq_server, redis_server, api_server, listener)
    try:
        yield pipe
    finally:
        pipe.close()


class TestTheListenerKilledMidStream:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_kill_9_then_a_new_listener_on_the_same_queue(self, pipeline):
        pipe = pipeline
        clients = [pipe.client("client of A", pipe.apis[0])]
        clients.append(pipe.client("client of B", pipe.apis[1]))
        async with reading(clients):
            pipe.flow.start()
            try:
                await wait_until(lambda: clients[0].tally.received >= 200, 15)
                code = await anyio.to_thread.run_sync(
                    signals.kill, pipe.listener.process
                )
                # Notifications go on coming while no listener runs.
                count = len(pipe.flow.accepted)
                await anyio.to_thread.run_sync(pipe.flow.wait_accepted, count + 200)
                back_at = time.monotonic()
                await anyio.to_thread.run_sync(pipe.new_listener)
                await anyio.to_thread.run_sync(
                    pipe.flow.wait_accepted, len(pipe.flow.accepted) + 200
                )
            finally:
                pipe.flow.stop()
            sent = pipe.flow.sent
            await all_arrived(clients, sent, ARRIVAL_DEADLINE)

        assert code == -signal.SIGKILL
        recovery = pipe.recovery(clients, back_at)
        MEASUREMENTS.append(
            figures_line(
                "listener kill -9 mid-stream",
                sent,
                [c.tally for c in clients],
                recovery,
                f"{len(pipe.flow.accepted_before(back_at)) - count} sent while no "
                "listener ran; " + redelivered_note(pipe),
            )
        )
        for client in clients:
            client.tally.check(sent)
        check_ids(pipe, clients, sent)


class TestSigtermDuringABurst:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_the_listener_stops_cleanly_and_the_next_one_goes_on(self, pipeline):
        pipe = pipeline
        burst = 1500
        clients = [pipe.client("client of A", pipe.apis[0])]
        clients.append(pipe.client("client of B", pipe.apis[1]))
        first = pipe.listener
        async with reading(clients):
            pipe.flow.interval = 0
            pipe.flow.start(limit=burst)
            try:
                await wait_until(lambda: clients[0].tally.received >= 300, 15)
                stopping = time.monotonic()
                code = await anyio.to_thread.run_sync(first.stop)
                stopped_in = time.monotonic() - stopping
                back_at = time.monotonic()
                await anyio.to_thread.run_sync(pipe.new_listener)
                await anyio.to_thread.run_sync(pipe.flow.wait_accepted, burst)
            finally:
                pipe.flow.stop()
            sent = pipe.flow.sent
            await all_arrived(clients, sent, ARRIVAL_DEADLINE)

        assert code == 0
        output = first.output()
        assert "osism.listener: Received SIGTERM, stopping the listener" in output
        stats = STATS.search(output)
        assert stats is not None, output[-3000:]
        recovery = pipe.recovery(clients, back_at)
        MEASUREMENTS.append(
            figures_line(
                "listener SIGTERM during a burst",
                sent,
                [c.tally for c in clients],
                recovery,
                f"the first listener received {stats[1]} and handed over "
                f"{stats[2]}, stopped {stopped_in:.2f} s after SIGTERM; "
                + redelivered_note(pipe),
            )
        )
        assert "Traceback" not in output
        for client in clients:
            client.tally.check(sent)
        check_ids(pipe, clients, sent)


@pytest.fixture
def own_broker_pipeline(own_rabbitmq_server, redis_server, api_server, listener):
    pipe = start_pipeline(own_rabbitmq_server, redis_server, api_server, listener)
    try:
        yield pipe
    finally:
        pipe.close()


class TestABrokerRestart:
    @pytest.mark.timeout(90)
    @pytest.mark.anyio
    @pytest.mark.parametrize("stalled", [False, True], ids=["running", "stalled"])
    async def test_while_notifications_flow(self, stalled, own_broker_pipeline):
        """``stalled``: the listener is stopped (SIGSTOP) before the broker
        goes down and continued once it is back: it then hands over what
        the broker had sent it before the restart, cannot acknowledge it on
        the dead connection, and the broker delivers it again."""
        pipe = own_broker_pipeline
        rabbitmq = pipe.rabbitmq
        clients = [pipe.client("client of A", pipe.apis[0])]
        clients.append(pipe.client("client of B", pipe.apis[1]))
        queued_after = None
        async with reading(clients):
            pipe.flow.start()
            try:
                await wait_until(lambda: clients[0].tally.received >= 200, 15)
                if stalled:
                    signals.stop(pipe.listener.process)
                try:
                    if stalled:
                        count = len(pipe.flow.accepted)
                        await anyio.to_thread.run_sync(
                            pipe.flow.wait_accepted, count + 150
                        )
                    down_at = time.monotonic()
                    await anyio.to_thread.run_sync(rabbitmq.stop)
                    await anyio.to_thread.run_sync(rabbitmq.start)
                    back_at = time.monotonic()
                    if stalled:
                        queued_after = await anyio.to_thread.run_sync(queued, pipe)
                finally:
                    signals.cont(pipe.listener.process)
                await anyio.to_thread.run_sync(
                    lambda: pipe.listener.wait_for_output(
                        pipe.listener.bound_line("ironic"), count=2, timeout=30
                    )
                )
                await anyio.to_thread.run_sync(
                    pipe.flow.wait_accepted, len(pipe.flow.accepted) + 200
                )
            finally:
                pipe.flow.stop()
            sent = pipe.flow.sent
            await all_arrived(clients, sent, ARRIVAL_DEADLINE)

        recovery = pipe.recovery(clients, back_at)
        state = "stalled" if stalled else "running"
        held = "" if queued_after is None else f", {queued_after} queued after it"
        MEASUREMENTS.append(
            figures_line(
                f"RabbitMQ restart ({state} listener{held})",
                sent,
                [c.tally for c in clients],
                recovery,
                f"broker down {back_at - down_at:.1f} s; publisher retries "
                f"{dict(pipe.flow.failures)}; " + redelivered_note(pipe),
            )
        )
        output = pipe.listener.output()
        assert "osism.listener: Lost the connection to the broker" in output
        assert pipe.listener.process.poll() is None, "the listener ended"
        for client in clients:
            client.tally.check(sent)
        check_ids(pipe, clients, sent)
        if stalled:
            # Kept in the durable queue across the restart.
            assert queued_after


def queued(pipe: Pipeline) -> int:
    """Notifications ready in the listener's queue, asked on a connection of
    its own (the flow's may be broken)."""
    with contextlib.closing(Notifier(pipe.rabbitmq.url)) as probe:
        return probe.queued(pipe.listener.queue("ironic"))


@pytest.fixture
def own_redis_pipeline(rabbitmq_server, own_redis_server, api_server, listener):
    pipe = start_pipeline(rabbitmq_server, own_redis_server, api_server, listener)
    try:
        yield pipe
    finally:
        pipe.close()


RETURNED = re.compile(r"Returned (\d+) held notifications to RabbitMQ")


class TestSigtermWhileRedisIsOut:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_the_listener_gives_back_what_it_holds_and_the_next_one_sends_it(
        self, own_redis_pipeline
    ):
        """Redis killed, then a burst: the listener holds its window
        unacknowledged. SIGTERM: it returns them to RabbitMQ and exits 0;
        every notification of the burst is in the queue. Redis and a new
        listener back: everything arrives."""
        pipe = own_redis_pipeline
        burst = 500
        clients = [pipe.client("client of A", pipe.apis[0])]
        clients.append(pipe.client("client of B", pipe.apis[1]))
        first = pipe.listener
        async with reading(clients):
            await anyio.to_thread.run_sync(pipe.flow.publish, 50)
            await all_arrived(clients, pipe.flow.sent, ARRIVAL_DEADLINE)
            await anyio.to_thread.run_sync(signals.kill, pipe.redis.process)
            await anyio.to_thread.run_sync(pipe.flow.publish, burst)
            await anyio.to_thread.run_sync(
                lambda: first.wait_for_output("Redis cannot take events: holding")
            )
            code = await anyio.to_thread.run_sync(first.stop)
            # The broker requeues what the listener held once its connection
            # is closed: the whole burst is back in the queue.
            await anyio.to_thread.run_sync(
                lambda: wait_for(
                    lambda: pipe.queued() >= burst, 5, "the burst back in the queue"
                )
            )
            queued = await anyio.to_thread.run_sync(pipe.queued)
            await anyio.to_thread.run_sync(pipe.redis.start)
            back_at = time.monotonic()
            await anyio.to_thread.run_sync(pipe.new_listener)
            await anyio.to_thread.run_sync(pipe.flow.publish, 50)
            sent = pipe.flow.sent
            await all_arrived(clients, sent, ARRIVAL_DEADLINE)

        output = first.output()
        returned = RETURNED.search(output)
        MEASUREMENTS.append(
            figures_line(
                "listener SIGTERM while Redis is out",
                sent,
                [c.tally for c in clients],
                pipe.recovery(clients, back_at),
                f"the listener returned {returned[1] if returned else 'none'} "
                f"held notifications, {queued} of the burst of {burst} were in "
                "its queue after it stopped",
            )
        )
        assert code == 0
        assert returned is not None and int(returned[1]) > 0, output[-3000:]
        assert queued == burst
        for client in clients:
            client.tally.check(sent)
        check_ids(pipe, clients, sent)
