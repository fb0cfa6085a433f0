"""A real rabbitmq-server node of the harness's own.

Free loopback ports (AMQP, Erlang distribution, and an epmd of its own), its
data, logs and config in a temporary directory, no plugins. A system
RabbitMQ the package may have started is neither used nor disturbed.
Stopped and started again, a node keeps its port and its data (durable
queues and persistent messages).
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

from kombu import Connection

from tests.harness.certificates import Certificates
from tests.harness.ports import LOOPBACK, free_port
from tests.harness import HarnessError

# Deadlines (seconds). The node boots in about 4 s and stops in about 3 s
# on an idle CI machine; these leave room for a loaded one.
RABBITMQ_START_DEADLINE = 40.0
RABBITMQ_STOP_DEADLINE = 20.0

# Where Debian's package keeps the server script itself: /usr/sbin/ has a
# wrapper that switches to the rabbitmq user, who cannot use our directory.
DEBIAN_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def rabbitmq_binaries() -> Optional[Dict[str, str]]:
    """The rabbitmq-server script and epmd, or None if either is missing."""
    server = str(DEBIAN_SERVER) if DEBIAN_SERVER.exists() else None
    server = server or shutil.which("rabbitmq-server")
    epmd = shutil.which("epmd")
    if server is None or epmd is None:
        return None
    return {"server": server, "epmd": epmd}


def _stop(process: "subprocess.Popen[bytes]", deadline: float) -> None:
    """SIGTERM (a graceful stop for the server script and epmd), then kill
    the process group (ours: started with start_new_session) after the
    deadline."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


class RabbitMQServer:
    """A rabbitmq-server node of the test run's own."""

    def __init__(
        self,
        binaries: Dict[str, str],
        workdir: Path,
        ports: List[int],
        certificates: Optional[Certificates] = None,
    ):
        self.binaries = binaries
        self.workdir = workdir
        self.port, self.dist_port, self.epmd_port = ports
        # With certificates the node takes AMQP over TLS too, on tls_port.
        self.certificates = certificates
        self.tls_port = None if certificates is None else free_port()
        self.nodename = f"osism-test-{uuid.uuid4().hex[:8]}@localhost"
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.epmd: Optional["subprocess.Popen[bytes]"] = None
        # Seconds each start took until the broker accepted AMQP connections.
        self.start_seconds: List[float] = []
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "enabled_plugins").write_text("[].\n")
        (workdir / "rabbitmq-env.conf").write_text("")
        config = ["log.console = false"]
        if certificates is not None:
            config += [
                f"listeners.ssl.default = {self.tls_port}",
                f"ssl_options.cacertfile = {certificates.ca}",
                f"ssl_options.certfile = {certificates.cert}",
                f"ssl_options.keyfile = {certificates.key}",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
            ]
        (workdir / "rabbitmq.conf").write_text("\n".join(config) + "\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}//"

    @property
    def tls_url(self) -> str:
        assert self.tls_port is not None, "the node was started without TLS"
        return f"amqps://guest:guest@{LOOPBACK}:{self.tls_port}//"

    def env(self) -> Dict[str, str]:
        base = self.workdir
        return {
            **os.environ,
            # The Erlang cookie goes to $HOME; the node's own.
            "HOME": str(base),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }

    def output(self) -> str:
        parts = []
        for log in [self.workdir / "server.out", *sorted(self.workdir.glob("log/*"))]:
            if log.is_file():
                parts.append(
                    f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                )
        return "\n".join(parts)

    def accepts_connections(self) -> bool:
        try:
            with Connection(self.url, connect_timeout=1) as connection:
                connection.ensure_connection(max_retries=0)
            return True
        except Exception:
            return False

    def start(self) -> None:
        """Start the node (and its epmd) and wait until it takes connections."""
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = subprocess.Popen(
                [self.binaries["epmd"], "-port", str(self.epmd_port)]
                + ["-address", LOOPBACK],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started = time.monotonic()
        with (self.workdir / "server.out").open("ab") as out:
            self.process = subprocess.Popen(
                [self.binaries["server"]],
                cwd=self.workdir,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = started + RABBITMQ_START_DEADLINE
        while not self.accepts_connections():
            if self.process.poll() is not None or time.monotonic() >= deadline:
                self.stop()
                raise RabbitMQStartFailed(
                    f"rabbitmq-server on port {self.port} did not take connections "
                    f"within {RABBITMQ_START_DEADLINE:g} s (exit code "
                    f"{self.process.returncode}):\n{self.output()}"
                )
            time.sleep(0.05)
        self.start_seconds.append(time.monotonic() - started)

    def stop(self) -> None:
        """Stop the node gracefully (its data stays for the next start)."""
        if self.process is not None:
            _stop(self.process, RABBITMQ_STOP_DEADLINE)

    def freeze(self, frozen: bool = True) -> None:
        """Stop (SIGSTOP) or continue (SIGCONT) the node: a broker that stops
        answering without closing anything, as a host that hangs does."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def close(self) -> None:
        """Kill the node and its epmd: its data is not needed any more, so
        the graceful stop's seconds are saved."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
                os.killpg(self.process.pid, signal.SIGCONT)
            self.process.wait(timeout=5)
        if self.epmd is not None:
            _stop(self.epmd, 5)


class RabbitMQStartFailed(Exception):
    pass


def start_rabbitmq(
    binaries: Dict[str, str],
    workdir: Path,
    certificates: Optional[Certificates] = None,
) -> RabbitMQServer:
    """A node on free ports, tried again on others if one was taken meanwhile."""
    failures = []
    for attempt in range(3):
        ports = [free_port() for _ in range(3)]
        server = RabbitMQServer(
            binaries, workdir / f"node-{attempt}", ports, certificates
        )
        try:
            server.start()
            return server
        except RabbitMQStartFailed as e:
            server.close()
            failures.append(str(e))
    raise HarnessError("\n".join(failures))
