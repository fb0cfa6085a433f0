"""Nothing lost from RabbitMQ to the screen (issue 14): the API layer.

The whole stream runs (RabbitMQ -> ``osism service listener`` -> Redis ->
two API processes A and B on one channel) while numbered notifications
flow, and the clients (a dashboard's behaviour: reconnect, resume with the
last event id) or the API processes are hit: an API killed (``kill -9``)
and restarted, SIGTERM during a burst, a client away for a few seconds
that comes back to the same or to the other API process, a client whose
last event is older than the history. Each test counts per client what was
sent and what arrived: nothing missing, nothing twice, order kept.
"""

import json
import signal
import time

import anyio
import pytest

from tests.harness import EVENTS_PATH, signals
from tests.harness.clients import wait_for_health
from tests.harness.fast_clients import Connection
from tests.harness.fixtures import MEASUREMENTS
from tests.harness.pipeline import Pipeline, counters, start_pipeline
from tests.harness.processes import STOP_DEADLINE
from tests.harness.resuming_client import ResumingClient, all_arrived, reading
from tests.harness.tally import Tally, figures_line
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.rabbitmq]

ARRIVAL_DEADLINE = 30.0
# RFC 6455: the endpoint is going away (a server shutting down).
GOING_AWAY = 1001


async def flowing_for(pipe: Pipeline, more: int) -> None:
    """Until the broker took ``more`` notifications beyond those it has."""
    await anyio.to_thread.run_sync(
        pipe.flow.wait_accepted, len(pipe.flow.accepted) + more
    )


def resumed(client: ResumingClient) -> str:
    replayed = [r["replayed"] for r in client.resumes]
    return f"{client.name} replayed {replayed}, gaps {len(client.gaps)}"


@pytest.fixture
def pipeline(rabbitmq_server, redis_server, api_server, listener):
    pipe = start_pipeline(rabbitmq_server, redis_server, api_server, listener)
    try:
        yield pipe
    finally:
        pipe.close()


class TestAnApiKilledAndRestartedWhileEventsFlow:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_kill_9_restart_on_the_same_port_and_its_client_resumes(
        self, pipeline
    ):
        """A's client reconnects by itself, every 50 ms (as a client does
        whose back-off starts small), to A once it is back, and resumes;
        the restarted A finds its last event in the Redis history. B's
        client does not notice."""
        pipe = pipeline
        on_a = ResumingClient(
            "client of A",
            lambda: pipe.apis[0].ws_url,
            [pipe.node],
            first_delay=0.05,
            max_delay=0.05,
        )
        clients = [on_a, pipe.client("client of B", pipe.apis[1])]
        async with reading(clients):
            pipe.flow.start()
            try:
                await wait_until(lambda: on_a.tally.received >= 200, 15)
                assert pipe.apis[0].process is not None
                code = await anyio.to_thread.run_sync(
                    signals.kill, pipe.apis[0].process
                )
                killed_at = time.monotonic()
                await flowing_for(pipe, 200)
                await anyio.to_thread.run_sync(pipe.restart_api, 0)
                back_at = time.monotonic()
                await on_a.wait_ready(2)
                await flowing_for(pipe, 200)
            finally:
                pipe.flow.stop()
            sent = pipe.flow.sent
            # After a gap what is missing does not come any more.
            await all_arrived(clients, sent, 5 if on_a.gaps else ARRIVAL_DEADLINE)

        MEASUREMENTS.append(
            figures_line(
                "API kill -9 and restart while events flow",
                sent,
                [c.tally for c in clients],
                pipe.recovery([on_a], back_at) if on_a.tally.has(sent) else None,
                f"A down {back_at - killed_at:.1f} s (restart included); "
                + resumed(on_a),
            )
        )
        assert code == -signal.SIGKILL
        assert on_a.close_codes[0] is None  # the connection just broke
        assert not on_a.gaps, (
            "the restarted API answered the resume with a gap (it accepted the "
            "client before it had loaded the Redis history?): "
            f"{on_a.gaps}; {on_a.tally.figures(sent)}"
        )
        assert len(on_a.resumes) == 1 and on_a.resumes[0]["replayed"] > 0
        for client in clients:
            client.tally.check(sent)
        assert clients[1].connections == 1


class TestAClientAwayForAFewSeconds:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    @pytest.mark.parametrize("back_to", ["same", "other"])
    async def test_resumes_with_what_it_missed(self, back_to, pipeline):
        """The client of A goes away while the events flow (2 to 3 s) and
        comes back to A (``same``) or to B (``other``: the id it names came
        to it from A)."""
        pipe = pipeline
        away = pipe.client("client away", pipe.apis[0])
        stays = pipe.client("client that stays", pipe.apis[0])
        clients = [away, stays]
        async with reading(clients):
            pipe.flow.start()
            try:
                await wait_until(lambda: away.tally.received >= 100, 15)
                await away.leave()
                left_at = time.monotonic()
                await flowing_for(pipe, 400)
                if back_to == "other":
                    away.target = lambda: pipe.apis[1].ws_url
                away.come_back()
                back_at = time.monotonic()
                await away.wait_ready(2)
                await flowing_for(pipe, 200)
            finally:
                pipe.flow.stop()
            sent = pipe.flow.sent
            await all_arrived(clients, sent, ARRIVAL_DEADLINE)

        missed = len(pipe.flow.accepted_before(back_at)) - len(
            pipe.flow.accepted_before(left_at)
        )
        MEASUREMENTS.append(
            figures_line(
                f"a client away for {back_at - left_at:.1f} s, back on the "
                f"{back_to} API process",
                sent,
                [c.tally for c in clients],
                pipe.recovery([away], back_at),
                f"{missed} sent while it was away; " + resumed(away),
            )
        )
        assert not away.gaps, away.gaps
        assert len(away.resumes) == 1 and away.resumes[0]["replayed"] > 0
        for client in clients:
            client.tally.check(sent)


class TestATooOldId:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_is_a_gap_and_the_live_stream_follows(
        self, rabbitmq_server, redis_server, api_server, listener
    ):
        """With EVENT_HISTORY_SIZE 50, a client that missed 200 events is
        told that it has a gap, and gets every event from then on."""
        pipe = start_pipeline(
            rabbitmq_server,
            redis_server,
            api_server,
            listener,
            api_env={"EVENT_HISTORY_SIZE": "50"},
        )
        try:
            client = pipe.client("client with a gap", pipe.apis[0])
            # Stays connected: once it has an event, A has fanned it out.
            witness = pipe.client("client that stays", pipe.apis[0])
            async with reading([client, witness]):
                await anyio.to_thread.run_sync(pipe.flow.publish, 20)
                await all_arrived([client], pipe.flow.sent, ARRIVAL_DEADLINE)
                last_id = client.last_event_id
                await client.leave()
                await anyio.to_thread.run_sync(pipe.flow.publish, 200)
                await all_arrived([witness], pipe.flow.sent, ARRIVAL_DEADLINE)
                client.come_back()
                await client.wait_ready(2)
                await anyio.to_thread.run_sync(pipe.flow.publish, 20)
                sent = pipe.flow.sent
                await all_arrived([client, witness], sent[-20:], ARRIVAL_DEADLINE)
            gaps = counters(pipe.apis[0])["gaps"]
        finally:
            pipe.close()

        tally = client.tally
        MEASUREMENTS.append(
            figures_line(
                "a too-old id (EVENT_HISTORY_SIZE 50, 200 missed)",
                sent,
                [tally, witness.tally],
                None,
                f"gap frames {len(client.gaps)}, resumes {len(client.resumes)}",
            )
        )
        assert [g["last_event_id"] for g in client.gaps] == [last_id]
        assert not client.resumes
        assert gaps == 1
        # What was missed is exactly what the gap announced; nothing else.
        assert tally.missing(sent) == list(range(20, 220))
        tally.check(list(range(20)) + list(range(220, 240)))
        witness.tally.check(sent)


class TestSigtermDuringABurst:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_the_api_delivers_what_it_took_closes_with_1001_and_b_resumes(
        self, pipeline
    ):
        """SIGTERM to A while a burst flows: A's client gets what A had
        taken, then a close with 1001 (Going Away), and resumes on B."""
        pipe = pipeline
        burst = 3000
        on_a = pipe.client("client of A", pipe.apis[0])
        on_a.target = lambda: (
            pipe.apis[1].ws_url if on_a.close_codes else pipe.apis[0].ws_url
        )
        clients = [on_a, pipe.client("client of B", pipe.apis[1])]
        a = pipe.apis[0]
        async with reading(clients):
            pipe.flow.interval = 0
            pipe.flow.start(limit=burst)
            try:
                await wait_until(lambda: on_a.tally.received >= 300, 15)
                terminated_at = time.monotonic()
                a.terminate()
                await wait_until(lambda: bool(on_a.close_codes), STOP_DEADLINE)
                closed_in = time.monotonic() - terminated_at
                received_from_a = on_a.tally.received
                code = await anyio.to_thread.run_sync(a.wait_stopped)
                stopped_in = time.monotonic() - terminated_at
                await on_a.wait_ready(2)
                await anyio.to_thread.run_sync(pipe.flow.wait_accepted, burst)
            finally:
                pipe.flow.stop()
            sent = pipe.flow.sent
            await all_arrived(clients, sent, ARRIVAL_DEADLINE)

        MEASUREMENTS.append(
            figures_line(
                "API SIGTERM during a burst, the client resumes on the other",
                sent,
                [c.tally for c in clients],
                pipe.recovery([on_a], terminated_at),
                f"A closed its client {closed_in:.2f} s after SIGTERM with "
                f"{on_a.close_codes[0]} after {received_from_a} events and "
                f"exited ({code}) after {stopped_in:.2f} s; " + resumed(on_a),
            )
        )
        assert code in (0, -signal.SIGTERM)
        assert "Traceback" not in a.output()
        assert not on_a.gaps, on_a.gaps
        for client in clients:
            client.tally.check(sent)
        assert (
            on_a.close_codes[0] == GOING_AWAY
        ), f"A closed its client with {on_a.close_codes[0]}, not 1001 (Going Away)"

    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_a_client_behind_gets_everything_the_api_took_then_1001(
        self, rabbitmq_server, redis_server, api_server, listener
    ):
        """A client that reads nothing while a burst goes through A (its
        events wait in A's outbox and the kernel's buffers) starts reading
        when A gets SIGTERM: it must get every event of the burst, then a
        close with 1001."""
        burst = 2000
        pipe = start_pipeline(
            rabbitmq_server,
            redis_server,
            api_server,
            listener,
            # The client behind is not dropped for its slowness meanwhile.
            api_env={"WEBSOCKET_SEND_TIMEOUT": "30"},
        )
        behind = None
        try:
            a = pipe.apis[0]
            behind = await anyio.to_thread.run_sync(
                lambda: Connection.open(
                    a.port,
                    path=f"{EVENTS_PATH}?node_filters={pipe.node}",
                    rcvbuf=4096,
                )
            )
            witness = pipe.client("client that keeps up", a)
            async with reading([witness]):
                await wait_for_health(a, lambda h: h["websocket"]["clients"] == 2)
                await anyio.to_thread.run_sync(pipe.flow.publish, burst)
                # A has fanned out every event of the burst, also into the
                # outbox of the client behind.
                await all_arrived([witness], pipe.flow.sent, ARRIVAL_DEADLINE)
            terminated_at = time.monotonic()
            a.terminate()
            connection = behind
            found = await anyio.to_thread.run_sync(
                lambda: connection.read_until_closed(quiet_s=10, total_s=30)
            )
            read_in = time.monotonic() - terminated_at
            code = await anyio.to_thread.run_sync(a.wait_stopped)
        finally:
            pipe.close()
            if behind is not None:
                behind.close()

        sent = pipe.flow.sent
        tally = Tally("client behind")
        for text in found.texts:
            tally.add(json.loads(text))
        MEASUREMENTS.append(
            figures_line(
                "API SIGTERM with a client behind by a burst",
                sent,
                [tally, witness.tally],
                None,
                f"the client behind read {len(found.texts)} frames and the close "
                f"{found.close_code} in {read_in:.2f} s after SIGTERM; A exited "
                f"({code})",
            )
        )
        assert code in (0, -signal.SIGTERM)
        witness.tally.check(sent)
        tally.check(sent)
        assert found.close_code == GOING_AWAY
