"""A real redis-server of the harness's own: free loopback port, no
persistence, its log in a work directory; and the channel names that keep
tests apart on one server."""

import contextlib
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import redis

from tests.harness.certificates import Certificates
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.processes import stop_process
from tests.harness import HarnessError

REDIS_START_DEADLINE = 5.0


def redis_binary() -> Optional[str]:
    return shutil.which("redis-server")


def unique_channel(prefix: str = "osism:events:it") -> str:
    """A Redis channel nobody else uses: one server serves many tests (and
    benchmark runs), each seeing only the messages of its own channel."""
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


class RedisServer:
    """A redis-server started by the harness; with ``password`` (and
    ``username``, an ACL user) it asks clients to authenticate, with
    ``certificates`` it speaks TLS only."""

    def __init__(
        self,
        host: str,
        port: int,
        process: "subprocess.Popen[bytes]",
        *,
        username: Optional[str] = None,
        password: Optional[str] = None,
        certificates: Optional[Certificates] = None,
    ):
        self.host = host
        self.port = port
        self.process = process
        self.username = username
        self.password = password
        self.certificates = certificates

    @property
    def url(self) -> str:
        scheme = "redis" if self.certificates is None else "rediss"
        return f"{scheme}://{self.host}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A new client, authenticated as the server asks; close it when done."""
        tls: Dict[str, Any] = {}
        if self.certificates is not None:
            tls = dict(ssl=True, ssl_ca_certs=str(self.certificates.ca))
        return redis.Redis(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            decode_responses=True,
            socket_timeout=5,
            **tls,
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

    def stop(self) -> None:
        stop_process(self.process)


def access_arguments(
    username: Optional[str],
    password: Optional[str],
    certificates: Optional[Certificates],
    port: int,
) -> List[str]:
    """redis-server's arguments for the authentication and TLS asked for:
    an ACL user may use the channels and keys of the event stream only."""
    arguments = []
    if username is not None:
        assert password is not None, "an ACL user needs a password"
        arguments += ["--user", "default", "off"]
        arguments += ["--user", username, "on", f">{password}"]
        arguments += ["~osism:events*", "&osism:events*", "+@all"]
    elif password is not None:
        arguments += ["--requirepass", password]
    if certificates is None:
        return arguments + ["--port", str(port)]
    return arguments + [
        "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(certificates.cert),
        "--tls-key-file", str(certificates.key),
        "--tls-ca-cert-file", str(certificates.ca),
        "--tls-auth-clients", "no",
    ]  # fmt: skip


def start_redis(
    binary: str,
    workdir: Path,
    port: Optional[int] = None,
    *,
    username: Optional[str] = None,
    password: Optional[str] = None,
    certificates: Optional[Certificates] = None,
) -> RedisServer:
    """Start redis-server on ``port`` or else on a free port (retrying if
    another process took it) and wait until it answers PING; see
    RedisServer for the other arguments."""
    failures = []
    for _ in range(1 if port is not None else 3):
        server_port = free_port() if port is None else port
        log = workdir / f"redis-{server_port}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [binary, "--bind", LOOPBACK]
                + access_arguments(username, password, certificates, server_port)
                + ["--save", "", "--appendonly", "no", "--daemonize", "no"]
                + ["--dir", str(workdir)],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = RedisServer(
            LOOPBACK,
            server_port,
            process,
            username=username,
            password=password,
            certificates=certificates,
        )
        deadline = time.monotonic() + REDIS_START_DEADLINE
        while process.poll() is None and time.monotonic() < deadline:
            if server.ping():
                return server
            time.sleep(0.01)
        stop_process(process)
        failures.append(
            f"port {server_port}: {log.read_text(errors='replace')[-2000:]}"
        )
    raise HarnessError(
        "redis-server did not answer PING within "
        f"{REDIS_START_DEADLINE:g} s:\n" + "\n".join(failures)
    )


class RestartableRedis(RedisServer):
    """A redis-server of one test's own, which the test may restart."""

    def __init__(self, binary: str, workdir: Path) -> None:
        server = start_redis(binary, workdir)
        super().__init__(server.host, server.port, server.process)
        self._binary = binary
        self._workdir = workdir

    def start(self) -> None:
        """Start again on the same port."""
        self.process = start_redis(self._binary, self._workdir, self.port).process
