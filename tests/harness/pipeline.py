"""The whole stream as it runs in production, started by a test: RabbitMQ ->
``osism service listener`` -> Redis -> two API processes on one channel ->
WebSocket clients; and the numbered notifications that flow through it.

Everything runs with short retry settings (FAST), so that a fault and the
recovery from it take seconds, not minutes.
"""

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from tests.harness.api_server import ApiServer, ApiServers
from tests.harness.listener_process import ListenerProcess
from tests.harness.notification_flow import NotificationFlow
from tests.harness.rabbitmq_server import RabbitMQServer
from tests.harness.redis_server import RedisServer, unique_channel
from tests.harness.resuming_client import ResumingClient
from tests.harness.waiting import wait_for

# Back-off of every Redis retry from 0.2 s up to 1 s, two failed reads before
# the subscriber loop restarts, a command to a Redis that does not answer
# failing after 1 s; a broker reconnect every second.
FAST: Dict[str, str] = {
    "REDIS_RETRY_DELAY": "0.2",
    "REDIS_MAX_RETRIES": "2",
    "REDIS_RESTART_MAX_DELAY": "1",
    "REDIS_SOCKET_TIMEOUT": "1",
}
LISTENER_FAST: Dict[str, str] = {
    **FAST,
    "LISTENER_EXCHANGES": "ironic",
    "LISTENER_RECONNECT_MAX_DELAY": "1",
    "LISTENER_HEARTBEAT": "5",
}
SUBSCRIBED_DEADLINE = 15.0


@dataclass
class Pipeline:
    """A running stream; ``flow`` feeds it, clients read it."""

    rabbitmq: RabbitMQServer
    redis: RedisServer
    apis: List[ApiServer]
    listener: ListenerProcess
    flow: NotificationFlow
    node: str
    channel: str
    start_api: ApiServers
    start_listener: Callable[..., ListenerProcess]
    api_env: Dict[str, str]
    listener_env: Dict[str, str]
    listeners: List[ListenerProcess] = field(default_factory=list)

    def client(self, name: str, api: ApiServer) -> ResumingClient:
        """A client of ``api`` filtering the flow's node; its target may be
        changed later (``client.target = ...``)."""
        return ResumingClient(name, lambda: api.ws_url, [self.node])

    def new_listener(self, **settings: str) -> ListenerProcess:
        """Another listener on the same queue (after one was killed or
        stopped); returns once its queue is bound."""
        process = self.start_listener(
            self.rabbitmq,
            self.redis,
            self.channel,
            ["ironic"],
            **{
                **self.listener_env,
                "LISTENER_QUEUE_PREFIX": self.listener.prefix,
                **settings,
            },
        )
        self.listeners.append(process)
        self.listener = process
        return process

    def restart_api(self, index: int) -> ApiServer:
        """Start API ``index`` again, on its port and channel (after it was
        killed or stopped), and wait until it is subscribed."""
        old = self.apis[index]
        new = self.start_api(
            "redis",
            port=old.port,
            channel=self.channel,
            redis_server=self.redis,
            env=self.api_env,
        )
        self.apis[index] = new
        wait_subscribed(self.redis, self.channel, len(self.apis), [new])
        return new

    def recovery(self, clients: List[ResumingClient], back_at: float) -> float:
        """Seconds from ``back_at`` (the fault ended) until every client had
        everything sent before it and the first event sent after it."""
        accepted = self.flow.accepted
        wanted = self.flow.accepted_before(back_at)
        if len(accepted) > len(wanted):
            wanted.append(accepted[len(wanted)])
        return max(c.tally.complete_at(wanted) for c in clients) - back_at

    def queued(self) -> int:
        """Notifications ready in the listener's queue (not counting those
        delivered to it and not acknowledged)."""
        return self.flow.notifier.queued(self.listener.queue("ironic"))

    def close(self) -> None:
        self.flow.close()


def wait_subscribed(
    redis: RedisServer, channel: str, count: int, apis: List[ApiServer]
) -> None:
    """Until Redis counts ``count`` subscribers of ``channel`` and each of
    ``apis`` says its subscriber reads it."""

    def subscribed() -> bool:
        if redis.subscribers(channel) < count:
            return False
        for api in apis:
            health = api.try_health()
            if health is None or not health["bridge"]["redis_connected"]:
                return False
        return True

    wait_for(subscribed, SUBSCRIBED_DEADLINE, f"{count} subscribers of {channel}")


def start_pipeline(
    rabbitmq: RabbitMQServer,
    redis: RedisServer,
    start_api: ApiServers,
    start_listener: Callable[..., ListenerProcess],
    api_env: Optional[Dict[str, str]] = None,
    listener_env: Optional[Dict[str, str]] = None,
    interval: float = 0.005,
) -> Pipeline:
    """Two API processes, a listener of the ironic exchange, and a flow of
    notifications (not started yet) on a node of the test's own."""
    api_env = {**FAST, **(api_env or {})}
    listener_env = {**LISTENER_FAST, **(listener_env or {})}
    channel = unique_channel()
    apis = [
        start_api("redis", channel=channel, redis_server=redis, env=api_env)
        for _ in range(2)
    ]
    wait_subscribed(redis, channel, 2, apis)
    node = f"node-{uuid.uuid4().hex[:8]}"
    flow = NotificationFlow(rabbitmq.url, node, interval)
    with contextlib.ExitStack() as on_failure:
        on_failure.callback(flow.close)
        # The service's exchange exists before the listener binds to it.
        flow.notifier.declare("ironic")
        listener = start_listener(rabbitmq, redis, channel, ["ironic"], **listener_env)
        on_failure.pop_all()
    return Pipeline(
        rabbitmq,
        redis,
        apis,
        listener,
        flow,
        node,
        channel,
        start_api,
        start_listener,
        api_env,
        listener_env,
        [listener],
    )


def counters(api: ApiServer) -> Dict[str, Any]:
    """The WebSocket and bridge counters of ``api`` (health)."""
    health = api.health()
    return {**health["bridge"]["counters"], **health["websocket"]["counters"]}


def since(moment: float) -> float:
    return time.monotonic() - moment
