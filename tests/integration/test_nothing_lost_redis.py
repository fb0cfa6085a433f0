"""Nothing lost from RabbitMQ to the screen (issue 14): the Redis layer.

Each test has a redis-server of its own under the whole stream (RabbitMQ ->
``osism service listener`` -> Redis -> two API processes -> a WebSocket
client on each) and hits it with real signals: ``kill -9`` for longer than
any buffer holds, SIGSTOP and SIGCONT; and ``osism events publish`` runs
while it is out. Each test counts per client what was sent and what
arrived: nothing missing, nothing twice, order kept.
"""

import json
import re
import subprocess
import sys
import time
import uuid
from functools import partial
from typing import Dict, List, Optional

import anyio
import pytest

from osism.services.listener import PREFETCH_COUNT
from tests.harness import signals
from tests.harness.api_server import ApiServer
from tests.harness.clients import get_health, wait_for_health
from tests.harness.fixtures import MEASUREMENTS
from tests.harness.notification_flow import EVENT_TYPE, payload
from tests.harness.pipeline import FAST, counters, start_pipeline, wait_subscribed
from tests.harness.ports import LOOPBACK
from tests.harness.processes import REPO_ROOT, clean_env
from tests.harness.redis_server import unique_channel
from tests.harness.resuming_client import ResumingClient, all_arrived, reading
from tests.harness.tally import figures_line
from tests.harness.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.redis]

ARRIVAL_DEADLINE = 30.0
# What the events kept for Redis may number: far fewer than an outage
# brings, so that nothing but RabbitMQ can keep them.
SMALL_BUFFER = {"REDIS_BUFFER_SIZE": "10"}


def recovered(health: Dict) -> bool:
    bridge = health["bridge"]
    return health["status"] == "ok" and bridge["redis_connected"]


def gave_up(health: Dict) -> bool:
    restarts = health["bridge"]["counters"].get("subscriber_restarts", 0)
    return health["status"] == "degraded" and restarts >= 1


@pytest.fixture
def own_redis_pipeline(rabbitmq_server, own_redis_server, api_server, listener):
    pipe = start_pipeline(
        rabbitmq_server,
        own_redis_server,
        api_server,
        listener,
        api_env=SMALL_BUFFER,
        listener_env=SMALL_BUFFER,
    )
    try:
        yield pipe
    finally:
        pipe.close()


class TestRedisOutLongerThanAnyBufferHolds:
    @pytest.mark.rabbitmq
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_kill_9_the_listener_holds_its_window_rabbitmq_keeps_the_rest(
        self, own_redis_pipeline
    ):
        pipe = own_redis_pipeline
        redis = pipe.redis
        outage = 3 * PREFETCH_COUNT
        clients = [pipe.client("client of A", pipe.apis[0])]
        clients.append(pipe.client("client of B", pipe.apis[1]))
        async with reading(clients):
            await anyio.to_thread.run_sync(pipe.flow.publish, 50)
            await all_arrived(clients, pipe.flow.sent, ARRIVAL_DEADLINE)

            await anyio.to_thread.run_sync(signals.kill, redis.process)
            down_at = time.monotonic()
            await anyio.to_thread.run_sync(pipe.flow.publish, outage)
            holding = "Redis cannot take events: holding"
            await anyio.to_thread.run_sync(
                lambda: pipe.listener.wait_for_output(holding, timeout=10)
            )
            # The listener holds at most its prefetch window; the broker
            # keeps the rest in the durable queue.
            queued = await anyio.to_thread.run_sync(pipe.queued)
            # Longer than the API processes' retry budget: each gave up
            # reading and restarted its subscriber.
            for api in pipe.apis:
                await wait_for_health(api, gave_up, timeout=15)
            await anyio.to_thread.run_sync(redis.start)
            back_at = time.monotonic()
            await anyio.to_thread.run_sync(pipe.flow.publish, 50)
            sent = pipe.flow.sent
            await all_arrived(clients, sent, ARRIVAL_DEADLINE)

        recovery = pipe.recovery(clients, back_at)
        MEASUREMENTS.append(
            figures_line(
                "Redis killed (-9) for longer than any buffer holds",
                sent,
                [c.tally for c in clients],
                recovery,
                f"{outage} sent in {back_at - down_at:.1f} s of outage "
                f"(REDIS_BUFFER_SIZE 10), {queued} of them waited in RabbitMQ"
                f"; caught up by the APIs "
                f"{[counters(a).get('caught_up', 0) for a in pipe.apis]}",
            )
        )
        assert queued >= outage - PREFETCH_COUNT
        assert "Redis takes events again: published" in pipe.listener.output()
        for client in clients:
            client.tally.check(sent)
        for api in pipe.apis:
            assert recovered(await get_health(api))


class TestRedisStoppedAndContinued:
    @pytest.mark.rabbitmq
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_sigstop_sigcont_health_shows_it_and_nothing_is_lost(
        self, own_redis_pipeline
    ):
        """Redis stops answering (SIGSTOP) while no event flows: health
        turns ``degraded`` within REDIS_SOCKET_TIMEOUT and a second or so,
        and ``ok`` again after SIGCONT. What was sent meanwhile arrives once.
        """
        pipe = own_redis_pipeline
        redis = pipe.redis
        socket_timeout = float(FAST["REDIS_SOCKET_TIMEOUT"])
        clients = [pipe.client("client of A", pipe.apis[0])]
        clients.append(pipe.client("client of B", pipe.apis[1]))
        degraded_after: List[Optional[float]] = []
        ok_after: List[Optional[float]] = []
        async with reading(clients):
            await anyio.to_thread.run_sync(pipe.flow.publish, 20)
            await all_arrived(clients, pipe.flow.sent, ARRIVAL_DEADLINE)

            with signals.stopped(redis.process):
                stopped_at = time.monotonic()
                for api in pipe.apis:
                    degraded_after.append(
                        await seconds_until(
                            api, "degraded", stopped_at, socket_timeout + 2
                        )
                    )
                await anyio.to_thread.run_sync(pipe.flow.publish, 100)
                await anyio.to_thread.run_sync(
                    lambda: pipe.listener.wait_for_output(
                        "Redis cannot take events: holding", timeout=10
                    )
                )
            back_at = time.monotonic()
            for api in pipe.apis:
                ok_after.append(await seconds_until(api, "ok", back_at, 10))
            await anyio.to_thread.run_sync(pipe.flow.publish, 20)
            sent = pipe.flow.sent
            await all_arrived(clients, sent, ARRIVAL_DEADLINE)

        recovery = pipe.recovery(clients, back_at)
        MEASUREMENTS.append(
            figures_line(
                "Redis stopped (SIGSTOP) and continued",
                sent,
                [c.tally for c in clients],
                recovery,
                f"health degraded after {seconds(degraded_after)} s "
                f"(REDIS_SOCKET_TIMEOUT {socket_timeout:g} s), ok again "
                f"{seconds(ok_after)} s after SIGCONT; skipped as sent already by "
                f"the APIs {[counters(a)['duplicates'] for a in pipe.apis]}",
            )
        )
        for client in clients:
            client.tally.check(sent)
        assert None not in ok_after, "health did not turn ok after SIGCONT"
        assert None not in degraded_after, (
            f"health did not turn degraded within REDIS_SOCKET_TIMEOUT + 2 s "
            f"of SIGSTOP while no event flowed: {degraded_after}"
        )


async def seconds_until(
    api: ApiServer, status: str, since: float, deadline: float
) -> Optional[float]:
    """Seconds from ``since`` until ``api``'s health says ``status``; None
    if it did not within ``deadline`` seconds."""
    try:
        await wait_until_status(api, status, deadline - (time.monotonic() - since))
    except TimeoutError:
        return None
    return time.monotonic() - since


async def wait_until_status(api: ApiServer, status: str, timeout: float) -> None:
    with anyio.fail_after(max(timeout, 0)):
        while (await get_health(api))["status"] != status:
            await anyio.sleep(0.05)


def seconds(values: List[Optional[float]]) -> str:
    return "[" + ", ".join("-" if v is None else f"{v:.2f}" for v in values) + "]"


# --------------------------------------------------------------------------
# osism events publish while Redis is out


def command_env(redis_port: int, channel: str) -> Dict[str, str]:
    return clean_env(
        REDIS_HOST=LOOPBACK, REDIS_PORT=str(redis_port), REDIS_CHANNEL=channel
    )


def publish_command(node: str, number: int, timeout: float) -> List[str]:
    """``osism events publish`` of numbered event ``number``."""
    return [sys.executable, "-m", "osism", "events", "publish", EVENT_TYPE] + [
        "--payload",
        json.dumps(payload(node, number)),
        "--timeout",
        f"{timeout:g}",
    ]


PUBLISHED = re.compile(r"^Published \S+ on Redis channel \S+ \(id ([^)]+)\)$")


async def publish(
    node: str, number: int, timeout: float, env: Dict[str, str]
) -> "subprocess.CompletedProcess[bytes]":
    with anyio.fail_after(timeout + 15):
        return await anyio.run_process(
            publish_command(node, number, timeout), env=env, cwd=REPO_ROOT, check=False
        )


def published_id(stdout: bytes) -> str:
    match = PUBLISHED.match(stdout.decode().strip())
    assert match is not None, stdout
    return match[1]


class TestOsismEventsPublishWithRedisOut:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_fails_clearly_or_publishes_once_when_redis_is_back_in_time(
        self, own_redis_server, api_server
    ):
        """Event 0 with Redis up; event 1 with Redis killed and a timeout of
        1 s (refused: not in the stream); event 2 started while Redis is out
        with a timeout of 20 s, Redis back after a second; event 3 after."""
        redis = own_redis_server
        channel = unique_channel()
        apis = [
            api_server("redis", channel=channel, redis_server=redis, env=FAST)
            for _ in range(2)
        ]
        wait_subscribed(redis, channel, 2, apis)
        node = f"node-{uuid.uuid4().hex[:8]}"
        clients = [
            ResumingClient(f"client of {name}", partial(getattr, api, "ws_url"), [node])
            for name, api in zip("AB", apis)
        ]
        env = command_env(redis.port, channel)
        ids: Dict[int, str] = {}
        async with reading(clients):
            first = await publish(node, 0, 5, env)
            assert first.returncode == 0, first.stderr.decode()
            ids[0] = published_id(first.stdout)
            await all_arrived(clients, [0], ARRIVAL_DEADLINE)

            await anyio.to_thread.run_sync(signals.kill, redis.process)
            refusing = time.monotonic()
            refused = await publish(node, 1, 1, env)
            refused_in = time.monotonic() - refusing

            waiting = subprocess.Popen(
                publish_command(node, 2, 20),
                env=env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                started = time.monotonic()
                # It keeps trying (it neither gives up nor claims success)
                # for a second while Redis is out.
                await anyio.to_thread.run_sync(
                    lambda: wait_for(
                        lambda: waiting.poll() is not None
                        or time.monotonic() - started >= 1.0,
                        5,
                        "the publish command waiting for Redis",
                    )
                )
                assert waiting.poll() is None, waiting.communicate()
                await anyio.to_thread.run_sync(redis.start)
                back_at = time.monotonic()
                out, err = await anyio.to_thread.run_sync(
                    lambda: waiting.communicate(timeout=25)
                )
                published_in = time.monotonic() - back_at
            finally:
                if waiting.poll() is None:
                    signals.kill(waiting)
            assert waiting.returncode == 0, err.decode()
            ids[2] = published_id(out)

            last = await publish(node, 3, 5, env)
            assert last.returncode == 0, last.stderr.decode()
            ids[3] = published_id(last.stdout)
            sent = [0, 2, 3]
            await all_arrived(clients, sent, ARRIVAL_DEADLINE)

        MEASUREMENTS.append(
            figures_line(
                "osism events publish with Redis out",
                sent,
                [c.tally for c in clients],
                max(c.tally.complete_at([2]) for c in clients) - back_at,
                f"1 refused with exit {refused.returncode} after "
                f"{refused_in:.1f} s (--timeout 1); 1 published "
                f"{published_in:.2f} s after Redis was back (--timeout 20)",
            )
        )
        assert refused.returncode != 0
        assert (
            f"Redis at {LOOPBACK}:{redis.port} did not take the event within 1 s"
        ) in refused.stderr.decode()
        assert refused.stdout == b""
        for client in clients:
            # Event 1 was refused: it must not arrive.
            client.tally.check(sent)
            assert {n: client.tally.ids[n] for n in sent} == ids
