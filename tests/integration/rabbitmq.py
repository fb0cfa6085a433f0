"""A real rabbitmq-server for the integration tests, the OpenStack side that
publishes notifications on it, and the listener as a child process.

The broker is a node of the test run's own: free loopback ports (AMQP,
Erlang distribution, and an epmd of its own), its data, logs and config in a
temporary directory, no plugins. A system RabbitMQ the package may have
started is neither used nor disturbed. Stopped and started again, a node
keeps its port and its data (durable queues and persistent messages).
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set

import pytest
from kombu import Connection, Exchange, Producer, Queue

from osism.services.notification_queues import PRIORITIES
from osism.settings import default_topic

# Deadlines (seconds). The node boots in about 4 s and stops in about 3 s
# on an idle CI machine; these leave room for a loaded one.
RABBITMQ_START_DEADLINE = 40.0
RABBITMQ_STOP_DEADLINE = 20.0
LISTENER_START_DEADLINE = 10.0
LISTENER_STOP_DEADLINE = 10.0

# Where Debian's package keeps the server script itself: /usr/sbin/ has a
# wrapper that switches to the rabbitmq user, who cannot use our directory.
DEBIAN_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")

LOOPBACK = "127.0.0.1"


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

    def __init__(self, binaries: Dict[str, str], workdir: Path, ports: List[int]):
        self.binaries = binaries
        self.workdir = workdir
        self.port, self.dist_port, self.epmd_port = ports
        self.nodename = f"osism-test-{uuid.uuid4().hex[:8]}@localhost"
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.epmd: Optional["subprocess.Popen[bytes]"] = None
        # Seconds each start took until the broker accepted AMQP connections.
        self.start_seconds: List[float] = []
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "enabled_plugins").write_text("[].\n")
        (workdir / "rabbitmq-env.conf").write_text("")
        (workdir / "rabbitmq.conf").write_text("log.console = false\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}//"

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


# --------------------------------------------------------------------------
# The OpenStack side


def oslo_envelope(event_type: str, payload: Dict[str, Any], **fields: Any) -> Dict:
    """A notification in the oslo.messaging 2.0 envelope, as the services
    send it."""
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": fields.pop("publisher_id", "test.host1"),
        "event_type": event_type,
        "priority": fields.pop("priority", "INFO"),
        "payload": payload,
        "timestamp": "2026-11-25 09:00:00.000000",
        **fields,
    }
    return {"oslo.version": "2.0", "oslo.message": json.dumps(message)}


class Unrouted(Exception):
    """The broker took a notification but no queue was bound to take it."""


class Notifier:
    """Publishes notifications as an OpenStack service does (oslo.messaging
    on kombu): a topic exchange named after the service, declared before
    publishing and not durable (oslo.messaging's default), persistent JSON
    messages. With publisher confirms and ``mandatory``: ``notify`` returns
    once a queue took the message, and raises Unrouted when none did."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection = Connection(url, transport_options={"confirm_publish": True})
        self._producer: Optional[Producer] = None
        self._returned: List[Any] = []
        # Exchanges declared on the current connection (oslo.messaging, too,
        # declares an exchange once per connection).
        self._declared: Set[str] = set()

    def _channel_producer(self) -> Producer:
        if self._producer is None:
            self.connection.ensure_connection(max_retries=0)
            self._producer = Producer(
                self.connection.channel(),
                on_return=lambda *returned: self._returned.append(returned),
            )
            self._declared = set()
        return self._producer

    def declare(self, service: str) -> None:
        producer = self._channel_producer()
        if service not in self._declared:
            Exchange(service, type="topic", durable=False)(producer.channel).declare()
            self._declared.add(service)

    def notify(
        self,
        service: str,
        event_type: str,
        payload: Dict[str, Any],
        priority: str = "info",
        *,
        exchange: Optional[str] = None,
        topic: Optional[str] = None,
        publisher_id: str = "test.host1",
    ) -> None:
        """Publish as ``service`` does: on ``exchange`` (the service's name
        unless given) with the routing key ``<topic>.<priority>`` (topic
        ``<service>_versioned_notifications`` unless given)."""
        exchange = service if exchange is None else exchange
        topic = default_topic(service) if topic is None else topic
        producer = self._channel_producer()
        self.declare(exchange)
        self._returned.clear()
        producer.publish(
            oslo_envelope(
                event_type,
                payload,
                priority=priority.upper(),
                publisher_id=publisher_id,
            ),
            exchange=exchange,
            routing_key=f"{topic}.{priority}",
            serializer="json",
            delivery_mode="persistent",
            mandatory=True,
        )
        if self._returned:
            raise Unrouted(
                f"{event_type} on {exchange} ({topic}.{priority}): "
                f"{self._returned[0][0]}"
            )

    def publish_raw(self, service: str, body: Any, **options: Any) -> None:
        """Publish any body (a malformed notification) on ``service``."""
        producer = self._channel_producer()
        self.declare(service)
        producer.publish(
            body,
            exchange=service,
            routing_key=f"{service}_versioned_notifications.info",
            mandatory=True,
            **options,
        )

    def queued(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those delivered and not
        yet acknowledged)."""
        producer = self._channel_producer()
        declared = Queue(queue)(producer.channel).queue_declare(passive=True)
        return int(declared.message_count)

    def delete_queues(self, names: List[str]) -> None:
        producer = self._channel_producer()
        for name in names:
            Queue(name)(producer.channel).delete()

    def reset(self) -> None:
        """Forget the connection (after the broker went away)."""
        self._producer = None
        with contextlib.suppress(Exception):
            self.connection.close()
        self.connection = Connection(
            self.url, transport_options={"confirm_publish": True}
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


# --------------------------------------------------------------------------
# The listener


class ListenerProcess:
    """``python -m osism service listener`` running as a child process."""

    def __init__(self, env: Dict[str, str], cwd: Path, log: Path) -> None:
        self.env = env
        self.log = log
        self.prefix = env["LISTENER_QUEUE_PREFIX"]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "osism", "service", "listener"],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def queue(self, service: str) -> str:
        return f"{self.prefix}-{service}"

    def bound_line(
        self,
        service: str,
        exchange: Optional[str] = None,
        topics: Sequence[str] = (),
    ) -> str:
        """The line the listener logs once ``service``'s queue is bound (to
        the exchange of its name and its default topic unless given)."""
        keys = [
            f"{topic}.{priority}"
            for topic in (topics or [default_topic(service)])
            for priority in PRIORITIES
        ]
        return (
            f"osism.listener: Bound queue {self.queue(service)} to exchange "
            f"{exchange or service} (routing keys {', '.join(keys)})"
        )

    def wait_for_output(
        self, text: str, count: int = 1, timeout: float = LISTENER_START_DEADLINE
    ) -> None:
        deadline = time.monotonic() + timeout
        while self.output().count(text) < count:
            if self.process.poll() is not None or time.monotonic() >= deadline:
                pytest.fail(
                    f"the listener did not log {text!r} ({count}x) within "
                    f"{timeout:g} s (exit code {self.process.poll()}):\n"
                    f"{self.output()[-5000:]}",
                    pytrace=False,
                )
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=LISTENER_STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return int(self.process.returncode)


@contextlib.contextmanager
def closing_notifier(url: str) -> Iterator[Notifier]:
    notifier = Notifier(url)
    try:
        yield notifier
    finally:
        notifier.close()
