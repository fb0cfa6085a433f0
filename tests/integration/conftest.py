"""Fixtures of the integration suite: a real redis-server, real API servers
(``python -m osism service api`` under uvicorn), and WebSocket and HTTP
clients for them; a real rabbitmq-server and listener processes
(``python -m osism service listener``, see tests/integration/rabbitmq.py).

Isolation: one redis-server serves the whole session, and every API server
and every in-process event bridge gets a Redis channel of its own
(``REDIS_CHANNEL=osism:events:it:<random>``). Nothing is flushed between
tests; a test sees only the messages of its own channel.

Every wait has a deadline; nothing sleeps for a fixed time. A failing test
shows the output of the API servers it used (see ``pytest_runtest_makereport``).
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterator,
    List,
    NoReturn,
    Optional,
    Sequence,
)

import anyio
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect

from osism.settings import LISTENER_EXCHANGES, Settings, parse_listener_exchanges
from tests.integration.publisher_client import PublisherProcess
from tests.integration.rabbitmq import (
    ListenerProcess,
    Notifier,
    RabbitMQServer,
    RabbitMQStartFailed,
    rabbitmq_binaries,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
EVENTS_PATH = "/v1/events/openstack"

# Deadlines (seconds). Starting Python with FastAPI and uvicorn takes about
# half a second on the CI machines; these leave room for a loaded machine but
# stay below the 10 s per-test limit.
REDIS_START_DEADLINE = 5.0
API_START_DEADLINE = 8.0
STOP_DEADLINE = 5.0
KILL_DEADLINE = 2.0
RECEIVE_DEADLINE = 5.0

BRIDGE_THREAD_PREFIX = "osism-event-bridge-"
# Logged by the API's event bridge once it has given Redis its chance
# (osism.services.event_bridge): it failed (an outage), nothing answers at
# the default host (embedded by default), or Redis is off.
REDIS_TRIED = (
    "osism.event_bridge: Failed to connect to Redis",
    "osism.event_bridge: No Redis at ",
    "osism.event_bridge: Redis is disabled",
)

# Every environment variable the settings read; stripped from the
# environment of the processes the tests start, so the developer's shell
# cannot change what a test sees.
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}


# --------------------------------------------------------------------------
# Waiting and ports


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 5.0,
    what: str = "the condition",
    interval: float = 0.01,
) -> Any:
    """Poll ``condition()`` until it is truthy and return its value; fail the
    test after ``timeout`` seconds (the sync twin of tests.waiting.wait_until).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"{what} did not happen within {timeout:g} s", pytrace=False)
        time.sleep(interval)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port on which connections are refused, for as long as the
    context lasts: a socket bound to it but not listening holds it, so no
    other process can start listening there in the meantime."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield int(sock.getsockname()[1])


def unique_channel() -> str:
    return f"osism:events:it:{uuid.uuid4().hex[:12]}"


def bridge_threads() -> List[str]:
    """Names of the event bridge threads alive in this process."""
    return sorted(
        t.name for t in threading.enumerate() if t.name.startswith(BRIDGE_THREAD_PREFIX)
    )


def clean_env(**overrides: str) -> Dict[str, str]:
    """The environment for a child process: no inherited osism settings."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTINGS_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def stop_process(process: "subprocess.Popen[Any]", sig: int = signal.SIGTERM) -> int:
    """Send ``sig``, wait with a deadline, kill if needed; the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=KILL_DEADLINE)
    return int(process.returncode)


def http_request(method: str, url: str, body: Any = None) -> "tuple[int, Any]":
    """One HTTP request with the standard library; status and decoded JSON.

    Raises OSError (URLError) when nothing answers.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


# --------------------------------------------------------------------------
# redis-server


class RedisServer:
    """A redis-server started by the test run."""

    def __init__(self, host: str, port: int, process: "subprocess.Popen[bytes]"):
        self.host = host
        self.port = port
        self.process = process

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A new client; close it when done."""
        return redis.Redis(
            host=self.host, port=self.port, decode_responses=True, socket_timeout=5
        )

    def subscribers(self, channel: str) -> int:
        with contextlib.closing(self.client()) as client:
            counts = client.pubsub_numsub(channel)
        return int(counts[0][1])

    def ping(self) -> bool:
        try:
            with contextlib.closing(self.client()) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False


def _start_redis(binary: str, workdir: Path, port: Optional[int] = None) -> RedisServer:
    """Start redis-server on ``port`` or else on a free port (retrying if
    another process took it) and wait until it answers PING."""
    failures = []
    for attempt in range(1 if port is not None else 3):
        server_port = free_port() if port is None else port
        log = workdir / f"redis-{server_port}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [binary, "--port", str(server_port), "--bind", LOOPBACK]
                + ["--save", "", "--appendonly", "no", "--daemonize", "no"]
                + ["--dir", str(workdir)],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = RedisServer(LOOPBACK, server_port, process)
        deadline = time.monotonic() + REDIS_START_DEADLINE
        while process.poll() is None and time.monotonic() < deadline:
            if server.ping():
                return server
            time.sleep(0.01)
        stop_process(process)
        failures.append(
            f"port {server_port}: {log.read_text(errors='replace')[-2000:]}"
        )
    # `raise pytest.fail.Exception` rather than `pytest.fail`: mypy sees the
    # function end here even without pytest installed, as in OSISM's Zuul
    # mypy job (it installs requirements.txt only).
    raise pytest.fail.Exception(
        "redis-server did not answer PING within "
        f"{REDIS_START_DEADLINE:g} s:\n" + "\n".join(failures),
        pytrace=False,
    )


def missing_server(reason: str, required_by: str) -> NoReturn:
    """Skip the test, or fail it when the environment variable
    ``required_by`` is 1 (in CI a missing server must not pass for a skip)."""
    if os.environ.get(required_by) == "1":
        raise pytest.fail.Exception(f"{required_by}=1 but {reason}", pytrace=False)
    raise pytest.skip.Exception(reason)


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
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
    server = _start_redis(_redis_binary(), tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        stop_process(server.process)


class RestartableRedis(RedisServer):
    """A redis-server of one test's own, which the test may restart."""

    def __init__(self, binary: str, workdir: Path) -> None:
        server = _start_redis(binary, workdir)
        super().__init__(server.host, server.port, server.process)
        self._binary = binary
        self._workdir = workdir

    def stop(self) -> None:
        stop_process(self.process)

    def start(self) -> None:
        """Start again on the same port."""
        self.process = _start_redis(self._binary, self._workdir, self.port).process


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


# How an API server is started, as a command for a port: the way README
# does (osism service api), the way OSISM's containers do (uvicorn
# osism.api:app), README's run command, or gunicorn with two uvicorn workers.
LAUNCHES: Dict[str, Callable[[int], List[str]]] = {
    "cli": lambda port: [sys.executable, "-m", "osism", "service", "api"]
    + ["--host", LOOPBACK, "--port", str(port)],
    "uvicorn": lambda port: [sys.executable, "-m", "uvicorn", "osism.api:app"]
    + ["--host", LOOPBACK, "--port", str(port)],
    "serve": lambda port: ["bash", str(REPO_ROOT / "scripts" / "serve")]
    + ["--host", LOOPBACK, "--port", str(port)],
    "gunicorn": lambda port: [sys.executable, "-m", "gunicorn", "osism.api:app"]
    + ["--worker-class", "uvicorn_worker.UvicornWorker", "--workers", "2"]
    + ["--bind", f"{LOOPBACK}:{port}"],
}


class ApiServer:
    """An API server (see LAUNCHES) running as a child process."""

    def __init__(
        self,
        port: int,
        mode: str,
        channel: str,
        env: Dict[str, str],
        log: Path,
        launch: str = "cli",
    ) -> None:
        self.port = port
        self.mode = mode
        self.launch = launch
        self.channel = channel
        self.env = env
        self.log = log
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.started_at = 0.0
        self.stopped_at: Optional[float] = None
        # Seconds from spawning the process to its first successful health
        # response, and that response.
        self.startup_seconds: Optional[float] = None
        self.first_health: Optional[Dict[str, Any]] = None
        # Seconds from spawning to ready (see wait_ready).
        self.ready_seconds: Optional[float] = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}{EVENTS_PATH}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                LAUNCHES[self.launch](self.port),
                cwd=REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        SERVERS.append(self)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self) -> Dict[str, Any]:
        status, body = http_request("GET", f"{self.base_url}/v1/events/health")
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def post_event(
        self, event_type: str, payload: Any, **fields: Any
    ) -> "tuple[int, Any]":
        """POST an event to the ingest endpoint; status and decoded body."""
        body = {"event_type": event_type, "payload": payload, **fields}
        return http_request("POST", f"{self.base_url}/v1/events", body)

    def _try_health(self) -> Optional[Dict[str, Any]]:
        try:
            return self.health()
        except OSError:
            return None

    def wait_ready(self, redis_server: Optional[RedisServer]) -> None:
        """Wait until the server serves health and its bridge is wired up.

        Redis mode: the subscriber thread is alive and Redis counts it as a
        subscriber of the server's channel, so nothing published from now on
        can be missed. Embedded mode: the bridge has given up on Redis.
        """
        assert self.process is not None
        deadline = self.started_at + API_START_DEADLINE
        while True:
            if self.process.poll() is not None:
                raise ServerExited(self.process.returncode)
            health = self._try_health()
            if health is not None and self.first_health is None:
                self.startup_seconds = time.monotonic() - self.started_at
                self.first_health = health
            if health is not None and self._wired(health, redis_server):
                self.ready_seconds = time.monotonic() - self.started_at
                return
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"API server on port {self.port} ({self.mode} mode) was not "
                    f"ready within {API_START_DEADLINE:g} s; last health: "
                    f"{health}\n--- server output ---\n{self.output()}",
                    pytrace=False,
                )
            time.sleep(0.01)

    def _wired(self, health: Dict[str, Any], redis_server: Optional[RedisServer]):
        bridge = health["bridge"]
        if bridge["channel"] != self.channel:
            return False  # the bridge has not read its settings yet
        if redis_server is None:
            # Health cannot tell whether the bridge is still trying Redis
            # (redis-py retries a refused connection for seconds, and health
            # says "redis" meanwhile); the log line can.
            output = self.output()
            return bridge["mode"] == "embedded" and any(
                line in output for line in REDIS_TRIED
            )
        return bridge["subscriber_alive"] and redis_server.subscribers(self.channel)

    def terminate(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> int:
        """Wait for the process to end (killing it after the deadline)."""
        assert self.process is not None
        code = stop_process(self.process)
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        return code

    def stop(self) -> int:
        self.terminate()
        return self.wait_stopped()


class ServerExited(Exception):
    pass


# Every API server started in this session, for the failure report.
SERVERS: List[ApiServer] = []


class ApiServers:
    """Starts API servers and stops all of them at the end of the scope."""

    def __init__(self, request: pytest.FixtureRequest, workdir: Path) -> None:
        self._request = request
        self._workdir = workdir
        self._servers: List[ApiServer] = []
        self._closed_ports = contextlib.ExitStack()

    def __call__(
        self,
        mode: str = "redis",
        *,
        port: Optional[int] = None,
        channel: Optional[str] = None,
        heartbeat_interval: float = 3600.0,
        env: Optional[Dict[str, str]] = None,
        redis_server: Optional[RedisServer] = None,
        launch: str = "cli",
    ) -> ApiServer:
        """Start a server in ``mode`` "redis" (on ``redis_server``, by default
        the session's), "embedded" (REDIS_HOST/PORT point at a port that
        refuses connections) or "default" (no REDIS_HOST: nothing answers at
        the default host), started as ``launch`` says (see LAUNCHES), and
        wait until it is ready."""
        settings = {
            "REDIS_CHANNEL": unique_channel() if channel is None else channel,
            "HEARTBEAT_INTERVAL": str(heartbeat_interval),
        }
        if mode == "redis":
            if redis_server is None:
                redis_server = self._request.getfixturevalue("redis_server")
            assert redis_server is not None
            settings.update(REDIS_HOST=LOOPBACK, REDIS_PORT=str(redis_server.port))
        elif mode == "embedded":
            assert redis_server is None, "embedded mode uses no Redis"
            redis_port = self._closed_ports.enter_context(closed_port())
            settings.update(REDIS_HOST=LOOPBACK, REDIS_PORT=str(redis_port))
        elif mode == "default":
            assert redis_server is None, "default mode finds no Redis"
        else:
            raise ValueError(f"unknown mode {mode!r}")
        channel = settings["REDIS_CHANNEL"]
        server_env = clean_env(**{**settings, **(env or {})})
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            server_port = free_port() if port is None else port
            log = self._workdir / f"api-{server_port}-{uuid.uuid4().hex[:6]}.log"
            server = ApiServer(server_port, mode, channel, server_env, log, launch)
            self._servers.append(server)
            server.spawn()
            try:
                server.wait_ready(redis_server)
                return server
            except ServerExited as e:
                output = server.output()
                server.wait_stopped()
                if "address already in use" in output and attempt + 1 < attempts:
                    continue  # another process took the free port; try again
                pytest.fail(
                    f"API server on port {server_port} exited with code {e} while "
                    f"starting:\n{output}",
                    pytrace=False,
                )
        raise AssertionError("unreachable")

    def stop_all(self) -> None:
        """SIGTERM to every server at once, then wait for each."""
        for server in self._servers:
            server.terminate()
        for server in self._servers:
            server.wait_stopped()
        self._closed_ports.close()


@pytest.fixture
def api_server(request, tmp_path) -> Iterator[ApiServers]:
    """Factory of API servers that live until the end of the test."""
    servers = ApiServers(request, tmp_path)
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="module")
def module_api_server(request, tmp_path_factory) -> Iterator[ApiServers]:
    """Factory of API servers that live until the end of the module."""
    servers = ApiServers(request, tmp_path_factory.mktemp("api"))
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
    servers = ApiServers(request, tmp_path_factory.mktemp("api"))
    try:
        yield servers("redis")
    finally:
        servers.stop_all()


@pytest.fixture(scope="session")
def embedded_mode_server(request, tmp_path_factory) -> Iterator[ApiServer]:
    """A server in embedded mode (no Redis reachable), shared like
    redis_mode_server."""
    servers = ApiServers(request, tmp_path_factory.mktemp("api"))
    try:
        yield servers("embedded")
    finally:
        servers.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the output of the API servers, listeners and RabbitMQ nodes a
    failed test used."""
    report = yield
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


# --------------------------------------------------------------------------
# Clients


class EventStream:
    """A WebSocket client of /v1/events/openstack."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket

    async def send_json(self, frame: Any) -> None:
        await self.websocket.send(json.dumps(frame))

    async def receive(self, timeout: float = RECEIVE_DEADLINE) -> Dict[str, Any]:
        """The next frame from the server, decoded; fails after ``timeout``."""
        with anyio.fail_after(timeout):
            text = await self.websocket.recv()
        assert isinstance(text, str), f"expected a text frame, got {text!r}"
        frame: Dict[str, Any] = json.loads(text)
        return frame

    async def set_filters(self, **filters: List[str]) -> Dict[str, Any]:
        """Send set_filters with the given lists; the filter_update reply."""
        await self.send_json({"action": "set_filters", **filters})
        reply = await self.receive()
        assert reply["type"] == "filter_update", reply
        assert reply["status"] == "success", reply
        return reply

    async def receive_until(
        self, last: Callable[[Dict[str, Any]], bool], timeout: float = RECEIVE_DEADLINE
    ) -> List[Dict[str, Any]]:
        """Frames up to and including the first one for which ``last`` is true."""
        frames: List[Dict[str, Any]] = []
        with anyio.fail_after(timeout):
            while not frames or not last(frames[-1]):
                frames.append(await self.receive(timeout))
        return frames


@contextlib.asynccontextmanager
async def open_stream(url: str, **filters: List[str]) -> AsyncIterator[EventStream]:
    """Connect to ``url``; if filters are given, set them and await the reply."""
    with anyio.fail_after(RECEIVE_DEADLINE):
        websocket = await connect(url, open_timeout=RECEIVE_DEADLINE, close_timeout=2)
    async with websocket:
        stream = EventStream(websocket)
        if filters:
            await stream.set_filters(**filters)
        yield stream


async def post_event(
    server: ApiServer, event_type: str, payload: Dict[str, Any], **fields: Any
) -> Dict[str, Any]:
    """POST an event to the server's ingest endpoint; the 202 reply."""
    status, body = await anyio.to_thread.run_sync(
        lambda: server.post_event(event_type, payload, **fields)
    )
    assert status == 202, body
    assert isinstance(body, dict)
    return body


async def get_health(server: ApiServer) -> Dict[str, Any]:
    return await anyio.to_thread.run_sync(server.health)


async def wait_for_health(
    server: ApiServer,
    condition: Callable[[Dict[str, Any]], Any],
    timeout: float = 5.0,
) -> Dict[str, Any]:
    """Poll the server's health until ``condition(health)`` holds; that health."""
    health: Dict[str, Any] = {}
    try:
        with anyio.fail_after(timeout):
            while True:
                health = await get_health(server)
                if condition(health):
                    return health
                await anyio.sleep(0.01)
    except TimeoutError:
        raise pytest.fail.Exception(
            f"health did not reach the expected state within {timeout:g} s; "
            f"last: {health}",
            pytrace=False,
        )


# --------------------------------------------------------------------------
# Notifications


def ironic(event: str, node: str, uuid_: str = "") -> Dict[str, Any]:
    """An Ironic notification: event_type and payload."""
    payload = {"ironic_object.data": {"name": node, "uuid": uuid_ or f"uuid-{node}"}}
    return {"event_type": f"baremetal.node.{event}", "payload": payload}


def nova(event: str, host: str, uuid_: str = "") -> Dict[str, Any]:
    payload = {"nova_object.data": {"host": host, "uuid": uuid_ or f"inst-{host}"}}
    return {"event_type": f"compute.instance.{event}", "payload": payload}


def expected_data(payload: Dict[str, Any], service: str, resource_id: Any):
    """The ``data`` of the event frame a notification becomes."""
    return {**payload, "service_type": service, "resource_id": resource_id}


def summary(frame: Dict[str, Any]) -> tuple:
    """(event_type, node_name, resource_id) of an event frame."""
    return (frame["event_type"], frame["node_name"], frame["data"]["resource_id"])


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
        env = clean_env(
            **{
                "REDIS_HOST": redis_server.host,
                "REDIS_PORT": str(redis_server.port),
                "REDIS_CHANNEL": channel,
                **settings,
            }
        )
        log = tmp_path / f"publisher-{len(started)}.log"
        process = PublisherProcess(env, REPO_ROOT, log)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.close()


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


def _start_rabbitmq(workdir: Path) -> RabbitMQServer:
    """A node on free ports, tried again on others if one was taken meanwhile."""
    binaries = _rabbitmq_binaries()
    failures = []
    for attempt in range(3):
        ports = [free_port() for _ in range(3)]
        server = RabbitMQServer(binaries, workdir / f"node-{attempt}", ports)
        try:
            server.start()
            return server
        except RabbitMQStartFailed as e:
            server.close()
            failures.append(str(e))
    raise pytest.fail.Exception("\n".join(failures), pytrace=False)


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory) -> Iterator[RabbitMQServer]:
    """One real rabbitmq-server node for the session."""
    server = _start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def own_rabbitmq_server(tmp_path_factory) -> Iterator[RabbitMQServer]:
    """A rabbitmq-server node of this test module's own (its tests may stop
    and start it; each leaves it running)."""
    server = _start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
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


# Figures measured by tests (e.g. the listener burst), shown at the end of
# the run.
MEASUREMENTS: List[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if MEASUREMENTS:
        terminalreporter.section("measurements")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)
