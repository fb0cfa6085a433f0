"""Redis and RabbitMQ as a real deployment runs them: a Redis that asks for
a password or an ACL user, Redis and RabbitMQ over TLS with a CA of the
test's own. Events flow as they do without, a wrong secret is an outage
that health explains, and no secret shows in a log line or in health."""

import json
import uuid
from typing import Any, Dict

import anyio
import pytest

from tests.harness.api_server import ApiServer
from tests.harness.clients import get_health, open_stream, post_event
from tests.harness.notifications import ironic
from tests.harness.openstack_notifier import Notifier
from tests.harness.ports import LOOPBACK

pytestmark = [pytest.mark.integration, pytest.mark.redis]


def secret(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex}"


async def streams_a_posted_event(server: ApiServer) -> None:
    """A client of ``server`` receives an event posted to it, through Redis."""
    node = secret("node")
    async with open_stream(server.ws_url, node_filters=[node]) as stream:
        await post_event(server, **ironic("power_set.end", node))
        frame = await stream.receive()
    assert frame["node_name"] == node


def shows_no(secret_value: str, *texts: str) -> bool:
    return all(secret_value not in text for text in texts)


class TestARedisThatAsksForAPassword:
    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_the_api_streams_through_it(self, api_server, secured_redis):
        password = secret("redis-password")
        redis = secured_redis(password=password)
        server = api_server(redis_server=redis, env={"REDIS_PASSWORD": password})

        await streams_a_posted_event(server)

        health = await get_health(server)
        assert health["status"] == "ok"
        assert shows_no(password, server.output(), json.dumps(health))

    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_an_acl_user_whose_password_is_in_a_file(
        self, api_server, secured_redis, tmp_path
    ):
        password = secret("acl-password")
        redis = secured_redis(username="osism-events", password=password)
        password_file = tmp_path / "redis-password"
        password_file.write_text(password + "\n")
        server = api_server(
            redis_server=redis,
            env={
                "REDIS_USERNAME": "osism-events",
                "REDIS_PASSWORD_FILE": str(password_file),
            },
        )

        await streams_a_posted_event(server)

        assert shows_no(password, server.output())

    @pytest.mark.timeout(60)
    @pytest.mark.anyio
    async def test_a_wrong_password_is_an_outage_that_health_explains(
        self, api_server, secured_redis
    ):
        right, wrong = secret("right"), secret("wrong")
        redis = secured_redis(password=right)
        server = api_server(
            "default",
            env={
                "REDIS_HOST": LOOPBACK,
                "REDIS_PORT": str(redis.port),
                "REDIS_PASSWORD": wrong,
            },
        )

        health = await get_health(server)

        assert health["status"] == "degraded"
        assert health["bridge"]["outage"]["error"] == (
            "invalid username-password pair or user is disabled."
        )
        assert "Failed to connect to Redis: invalid username-password pair" in (
            server.output()
        )
        assert shows_no(wrong, server.output(), json.dumps(health))
        assert "Traceback" not in server.output()


@pytest.mark.rabbitmq
class TestTls:
    @pytest.fixture
    def tls_notifier(self, tls_rabbitmq_server):
        notifier = Notifier(tls_rabbitmq_server.url)
        notifier.declare("ironic")
        try:
            yield notifier
        finally:
            notifier.close()

    @pytest.mark.timeout(90)
    @pytest.mark.anyio
    async def test_a_notification_travels_amqps_and_rediss_to_a_client(
        self,
        api_server,
        secured_redis,
        certificates,
        tls_rabbitmq_server,
        tls_notifier,
        listener,
    ):
        password = secret("redis-password")
        ca = str(certificates.ca)
        redis = secured_redis(password=password, certificates=certificates)
        redis_url = f"rediss://:{password}@{LOOPBACK}:{redis.port}/0"
        server = api_server(
            redis_server=redis,
            env={"REDIS_URL": redis_url, "REDIS_SSL_CA_CERTS": ca},
        )
        process = listener(
            tls_rabbitmq_server,
            redis,
            server.channel,
            bound=["ironic"],
            BROKER_URI=tls_rabbitmq_server.tls_url,
            BROKER_SSL_CA_CERTS=ca,
            REDIS_SSL="true",
            REDIS_PASSWORD=password,
            REDIS_SSL_CA_CERTS=ca,
        )
        node = secret("node")
        notification: Dict[str, Any] = ironic("power_set.end", node)

        async with open_stream(server.ws_url, node_filters=[node]) as stream:
            await anyio.to_thread.run_sync(
                lambda: tls_notifier.notify(
                    "ironic", notification["event_type"], notification["payload"]
                )
            )
            frame = await stream.receive()

        assert frame["node_name"] == node
        assert f"amqps://guest:**@{LOOPBACK}:{tls_rabbitmq_server.tls_port}//" in (
            process.output()
        )
        health = await get_health(server)
        assert shows_no(password, server.output(), process.output(), json.dumps(health))

    @pytest.mark.timeout(60)
    def test_a_broker_certificate_no_trusted_ca_signed_is_refused_with_a_reason(
        self, redis_server, channel, tls_rabbitmq_server, listener
    ):
        # Without BROKER_SSL_CA_CERTS the system's CAs are asked, and none of
        # them signed the test's certificate.
        process = listener(
            tls_rabbitmq_server,
            redis_server,
            channel,
            BROKER_URI=tls_rabbitmq_server.tls_url,
        )

        process.wait_for_output("certificate verify failed", timeout=30)
        assert process.process.poll() is None
        assert "Traceback" not in process.output()
