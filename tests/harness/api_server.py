"""The API server as a child process, started the ways OSISM starts it, in
each of the bridge's modes, and waited for until it is wired up.

Modes: "redis" (on a given redis-server, its own channel), "embedded"
(REDIS_HOST/PORT point at a port that refuses connections) and "default"
(no REDIS_HOST: nothing answers at the default host). Launches: see
LAUNCHES.
"""

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from tests.harness import EVENTS_PATH, HarnessError
from tests.harness.ports import LOOPBACK, closed_port, free_port
from tests.harness.processes import (
    REPO_ROOT,
    clean_env,
    read_output,
    stop_process,
    with_osism_tree,
)
from tests.harness.redis_server import RedisServer, unique_channel

HEALTH_PATH = "/v1/events/health"

# Starting Python with FastAPI and uvicorn takes about half a second on the
# CI machines; this leaves room for a loaded machine but stays below the
# 10 s per-test limit.
API_START_DEADLINE = 8.0

# Logged by the API's event bridge once it has given Redis its chance: it
# failed (an outage), nothing answers at the default host (embedded by
# default), or Redis is off.
REDIS_TRIED = (
    "osism.event_bridge: Failed to connect to Redis",
    "osism.event_bridge: No Redis at ",
    "osism.event_bridge: Redis is disabled",
)

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


class ServerExited(Exception):
    pass


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
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.port = port
        self.mode = mode
        self.launch = launch
        self.channel = channel
        self.env = env
        self.log = log
        self.cwd = cwd
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
        return read_output(self.log)

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                LAUNCHES[self.launch](self.port),
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        SERVERS.append(self)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self) -> Dict[str, Any]:
        status, body = http_request("GET", self.base_url + HEALTH_PATH)
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def try_health(self) -> Optional[Dict[str, Any]]:
        """Health, or None while nothing answers."""
        try:
            return self.health()
        except OSError:
            return None

    def post_event(
        self, event_type: str, payload: Any, **fields: Any
    ) -> "tuple[int, Any]":
        """POST an event to the ingest endpoint; status and decoded body."""
        body = {"event_type": event_type, "payload": payload, **fields}
        return http_request("POST", f"{self.base_url}/v1/events", body)

    def wait_ready(
        self,
        redis_server: Optional[RedisServer],
        deadline_s: float = API_START_DEADLINE,
    ) -> None:
        """Wait until the server serves health and its bridge is wired up.

        Redis mode: the subscriber thread is alive and Redis counts it as a
        subscriber of the server's channel, so nothing published from now on
        can be missed. Embedded mode: the bridge has given up on Redis.
        """
        assert self.process is not None
        deadline = self.started_at + deadline_s
        while True:
            if self.process.poll() is not None:
                raise ServerExited(self.process.returncode)
            health = self.try_health()
            if health is not None and self.first_health is None:
                self.startup_seconds = time.monotonic() - self.started_at
                self.first_health = health
            if health is not None and self._wired(health, redis_server):
                self.ready_seconds = time.monotonic() - self.started_at
                return
            if time.monotonic() >= deadline:
                raise HarnessError(
                    f"API server on port {self.port} ({self.mode} mode) was not "
                    f"ready within {deadline_s:g} s; last health: "
                    f"{health}\n--- server output ---\n{self.output()}"
                )
            time.sleep(0.01)

    def _wired(
        self, health: Dict[str, Any], redis_server: Optional[RedisServer]
    ) -> bool:
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
        return bool(
            bridge["subscriber_alive"] and redis_server.subscribers(self.channel)
        )

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


# Every API server started in this process, for the failure report.
SERVERS: List[ApiServer] = []


class ApiServers:
    """Starts API servers and stops all of them at the end of the scope.

    ``default_redis`` gives the redis-server of mode "redis" when a call
    names none (the fixtures: the session's, started on first use); with
    ``tree``, the servers run the osism package in that directory.
    """

    def __init__(
        self,
        workdir: Path,
        default_redis: Callable[[], RedisServer],
        tree: Optional[Path] = None,
    ) -> None:
        self._workdir = workdir
        self._default_redis = default_redis
        self._tree = tree
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
        start_deadline: float = API_START_DEADLINE,
    ) -> ApiServer:
        """Start a server in ``mode`` (see the module), started as ``launch``
        says, and wait until it is ready."""
        settings = {
            "REDIS_CHANNEL": unique_channel() if channel is None else channel,
            "HEARTBEAT_INTERVAL": str(heartbeat_interval),
        }
        if mode == "redis":
            if redis_server is None:
                redis_server = self._default_redis()
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
        server_env = with_osism_tree(
            clean_env(**{**settings, **(env or {})}), self._tree
        )
        # `python -m osism` imports from its working directory first.
        cwd = REPO_ROOT if self._tree is None else self._tree
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            server_port = free_port() if port is None else port
            log = self._workdir / f"api-{server_port}-{uuid.uuid4().hex[:6]}.log"
            server = ApiServer(server_port, mode, channel, server_env, log, launch, cwd)
            self._servers.append(server)
            server.spawn()
            try:
                server.wait_ready(redis_server, start_deadline)
                return server
            except ServerExited as e:
                output = server.output()
                server.wait_stopped()
                if "address already in use" in output and attempt + 1 < attempts:
                    continue  # another process took the free port; try again
                raise HarnessError(
                    f"API server on port {server_port} exited with code {e} while "
                    f"starting:\n{output}"
                )
        raise AssertionError("unreachable")

    def stop_all(self) -> None:
        """SIGTERM to every server at once, then wait for each."""
        for server in self._servers:
            server.terminate()
        for server in self._servers:
            server.wait_stopped()
        self._closed_ports.close()
