"""The harness's pytest plugin (registered in tests/conftest.py): fixtures
for real servers and the processes around them, and the reports.

Isolation: one redis-server serves the whole session, and every API server
and every in-process event bridge gets a Redis channel of its own
(``REDIS_CHANNEL=osism:events:it:<random>``). Nothing is flushed between
tests; a test sees only the messages of its own channel.

A missing redis-server or rabbitmq-server skips the tests that need it,
unless OSISM_REQUIRE_REDIS=1 or OSISM_REQUIRE_RABBITMQ=1 (CI) makes that a
failure. A failing test shows the output of the API servers, listeners and
RabbitMQ nodes it used; a HarnessError (a deadline passed, a server did not
start) is reported by its message, without a traceback. Figures tests put
in MEASUREMENTS are printed at the end of the run.
"""

import contextlib
import os
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, NoReturn, Sequence

import pytest

from osism.settings import LISTENER_EXCHANGES, parse_listener_exchanges
from tests.harness.api_server import SERVERS, ApiServer, ApiServers
from tests.harness.certificates import Certificates, make_certificates
from tests.harness.listener_process import ListenerProcess
from tests.harness.openstack_notifier import Notifier
from tests.harness.processes import REPO_ROOT, clean_env
from tests.harness.publisher import PublisherProcess, publisher_env
from tests.harness.rabbitmq_server import (
    RabbitMQServer,
    rabbitmq_binaries,
    start_rabbitmq,
)
from tests.harness.redis_server import (
    RedisServer,
    RestartableRedis,
    redis_binary,
    start_redis,
    unique_channel,
)
from tests.harness import HarnessError

# Figures measured by tests (e.g. the listener burst), shown at the end of
# the run.
MEASUREMENTS: List[str] = []


def missing_server(reason: str, required_by: str) -> NoReturn:
    """Skip the test, or fail it when the environment variable
    ``required_by`` is 1 (in CI a missing server must not pass for a skip)."""
    if os.environ.get(required_by) == "1":
        raise pytest.fail.Exception(f"{required_by}=1 but {reason}", pytrace=False)
    raise pytest.skip.Exception(reason)


# --------------------------------------------------------------------------
# Reports


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Report a HarnessError by its message; attach the output of the API
    servers, listeners and RabbitMQ nodes a failed test used."""
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, HarnessError):
        report.longrepr = f"HarnessError: {call.excinfo.value}"
    if report.failed:
        started = getattr(item, "_integration_started", 0.0)
        for server in SERVERS:
            if server.stopped_at is None or server.stopped_at >= started:
                report.sections.append(
                    (
                        f"API server on port {server.port} ({server.mode})",
                        server.output(),
                    )
                )
        for listener in getattr(item, "_listeners", []):
            report.sections.append(("listener", listener.output()[-20000:]))
        nodes = [v for v in item.funcargs.values() if isinstance(v, RabbitMQServer)]
        for rabbitmq in nodes:
            report.sections.append(
                (f"RabbitMQ on port {rabbitmq.port}", rabbitmq.output())
            )
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._integration_started = time.monotonic()


def pytest_terminal_summary(terminalreporter) -> None:
    if MEASUREMENTS:
        terminalreporter.section("measurements")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)


# --------------------------------------------------------------------------
# redis-server


def _redis_binary() -> str:
    binary = redis_binary()
    if binary is None:
        missing_server(
            "redis-server is not on PATH; install it (Debian: apt-get install "
            "redis-server) to run the Redis integration tests",
            "OSISM_REQUIRE_REDIS",
        )
    return binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """One real redis-server for the session, on a free loopback port."""
    server = start_redis(_redis_binary(), tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis_server(tmp_path) -> Iterator[RestartableRedis]:
    """A redis-server for this test only (stop/start it at will)."""
    server = RestartableRedis(_redis_binary(), tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def channel() -> str:
    """A Redis channel no other test uses."""
    return unique_channel()


# --------------------------------------------------------------------------
# API servers


def _api_servers(request, workdir) -> ApiServers:
    return ApiServers(workdir, lambda: request.getfixturevalue("redis_server"))


@pytest.fixture
def api_server(request, tmp_path) -> Iterator[ApiServers]:
    """Factory of API servers that live until the end of the test."""
    servers = _api_servers(request, tmp_path)
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="module")
def module_api_server(request, tmp_path_factory) -> Iterator[ApiServers]:
    """Factory of API servers that live until the end of the module."""
    servers = _api_servers(request, tmp_path_factory.mktemp("api"))
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="session")
def redis_mode_server(redis_server, request, tmp_path_factory) -> Iterator[ApiServer]:
    """A server in Redis mode shared by the session: tests that use it work
    with their own clients and filters and compare counters before and after,
    never with absolute values. (It depends on redis_server directly so that
    Redis outlives it: stopped the other way round, the server's subscriber
    would spend its shutdown reconnecting.)"""
    servers = _api_servers(request, tmp_path_factory.mktemp("api"))
    try:
        yield servers("redis")
    finally:
        servers.stop_all()


@pytest.fixture(scope="session")
def embedded_mode_server(request, tmp_path_factory) -> Iterator[ApiServer]:
    """A server in embedded mode (no Redis reachable), shared like
    redis_mode_server."""
    servers = _api_servers(request, tmp_path_factory.mktemp("api"))
    try:
        yield servers("embedded")
    finally:
        servers.stop_all()


# --------------------------------------------------------------------------
# Listener-side publisher processes


@pytest.fixture
def publisher(tmp_path) -> Iterator[Callable[..., PublisherProcess]]:
    """Factory of publisher processes (an EventBridge without WebSocket
    manager, as in the listener) on a Redis and channel; closed at the end."""
    started: List[PublisherProcess] = []

    def start(
        redis_server: RedisServer, channel: str, **settings: str
    ) -> PublisherProcess:
        env = publisher_env(clean_env(), redis_server, channel, **settings)
        process = PublisherProcess(env, tmp_path / f"publisher-{len(started)}.log")
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.close()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory) -> Certificates:
    """A CA of the session's own and a loopback server certificate it signed."""
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture
def secured_redis(tmp_path) -> Iterator[Callable[..., RedisServer]]:
    """Factory of redis-servers for this test that ask for a password, an
    ACL user or TLS: ``secured_redis(password=..., username=...,
    certificates=...)``."""
    started: List[RedisServer] = []

    def start(**access: Any) -> RedisServer:
        server = start_redis(_redis_binary(), tmp_path, **access)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


# --------------------------------------------------------------------------
# rabbitmq-server and the listener


def _rabbitmq_binaries() -> Dict[str, str]:
    binaries = rabbitmq_binaries()
    if binaries is None:
        missing_server(
            "rabbitmq-server (or epmd) is not installed; install it (Debian: "
            "apt-get install rabbitmq-server) to run the listener's integration "
            "tests",
            "OSISM_REQUIRE_RABBITMQ",
        )
    return binaries


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory) -> Iterator[RabbitMQServer]:
    """One real rabbitmq-server node for the session."""
    workdir = tmp_path_factory.mktemp("rabbitmq")
    server = start_rabbitmq(_rabbitmq_binaries(), workdir)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def own_rabbitmq_server(tmp_path_factory) -> Iterator[RabbitMQServer]:
    """A rabbitmq-server node of this test module's own (its tests may stop
    and start it; each leaves it running)."""
    workdir = tmp_path_factory.mktemp("rabbitmq")
    server = start_rabbitmq(_rabbitmq_binaries(), workdir)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def tls_rabbitmq_server(tmp_path_factory, certificates) -> Iterator[RabbitMQServer]:
    """A rabbitmq-server node of this module's own that takes AMQP over TLS
    (``tls_url``) besides plain AMQP (``url``)."""
    workdir = tmp_path_factory.mktemp("rabbitmq-tls")
    server = start_rabbitmq(_rabbitmq_binaries(), workdir, certificates)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def notifier(rabbitmq_server) -> Iterator[Notifier]:
    """The OpenStack services' side of the session's RabbitMQ."""
    notifier = Notifier(rabbitmq_server.url)
    try:
        yield notifier
    finally:
        notifier.close()


@pytest.fixture
def listener(request, tmp_path) -> Iterator[Callable[..., ListenerProcess]]:
    """Factory of listener processes; each is stopped at the end of the test
    and its queues are deleted (a node shared by the session keeps durable
    queues otherwise).

    ``listener(rabbitmq, redis, channel, bound=[...], **settings)`` waits
    until the queues of the services in ``bound`` are bound to their
    exchanges (which must exist by then)."""
    started: List[ListenerProcess] = []
    brokers: List[RabbitMQServer] = []
    request.node._listeners = started

    def start(
        rabbitmq: RabbitMQServer,
        redis_server: RedisServer,
        channel: str,
        bound: Sequence[str] = (),
        **settings: str,
    ) -> ListenerProcess:
        env = clean_env(
            **{
                "BROKER_URI": rabbitmq.url,
                "REDIS_HOST": redis_server.host,
                "REDIS_PORT": str(redis_server.port),
                "REDIS_CHANNEL": channel,
                "LISTENER_QUEUE_PREFIX": f"osism-events-it-{uuid.uuid4().hex[:8]}",
                "LISTENER_EXCHANGE_RETRY_INTERVAL": "0.2",
                "LISTENER_RECONNECT_MAX_DELAY": "2",
                **settings,
            }
        )
        log = tmp_path / f"listener-{len(started)}.log"
        process = ListenerProcess(env, REPO_ROOT, log)
        started.append(process)
        brokers.append(rabbitmq)
        for service in bound:
            process.wait_for_output(process.bound_line(service))
        return process

    try:
        yield start
    finally:
        for process, broker in zip(started, brokers):
            process.stop()
            if broker.process is not None and broker.process.poll() is None:
                configured = process.env.get("LISTENER_EXCHANGES")
                services = (
                    list(parse_listener_exchanges(configured))
                    if configured
                    else list(LISTENER_EXCHANGES)
                )
                with contextlib.closing(Notifier(broker.url)) as cleaner:
                    cleaner.delete_queues([process.queue(s) for s in services])


@pytest.fixture
def stream_listener(
    rabbitmq_server, redis_server, redis_mode_server, listener
) -> Callable[..., ListenerProcess]:
    """Factory of listeners on the session's RabbitMQ whose events reach the
    clients of the session's API server (``redis_mode_server``)."""

    def start(bound: Sequence[str] = ("ironic",), **settings: str) -> ListenerProcess:
        channel = redis_mode_server.channel
        return listener(rabbitmq_server, redis_server, channel, bound, **settings)

    return start
