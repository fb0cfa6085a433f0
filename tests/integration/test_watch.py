"""`osism events watch` as a user runs it, against a live API server."""

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import List, Optional

import pytest

from tests.harness.notifications import ironic, nova
from tests.harness.processes import REPO_ROOT, STOP_DEADLINE, clean_env, stop_process
from tests.event_format import EVENT_KEYS

pytestmark = [pytest.mark.integration, pytest.mark.redis]

LINE_DEADLINE = 5.0


class Watcher:
    """``python -m osism events watch ...`` with its output read line by line."""

    def __init__(self, url, *options):
        self.url = url
        self.process = subprocess.Popen(
            [sys.executable, "-m", "osism", "events", "watch", "--url", url, *options],
            cwd=REPO_ROOT,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout = self._reader(self.process.stdout)
        self.stderr = self._reader(self.process.stderr)
        self.stderr_seen = []

    @staticmethod
    def _reader(pipe):
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def read():
            with pipe:
                for line in pipe:
                    lines.put(line.rstrip("\n"))
            lines.put(None)  # end of output

        threading.Thread(target=read, daemon=True).start()
        return lines

    def read_until(self, lines, predicate, what, timeout=LINE_DEADLINE):
        """Lines up to and including the first one matching ``predicate``."""
        read: List[str] = []
        deadline = time.monotonic() + timeout
        while not read or not predicate(read[-1]):
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(remaining, 0))
            except queue.Empty:
                pytest.fail(
                    f"no {what} within {timeout:g} s; got {read}", pytrace=False
                )
            if line is None:
                pytest.fail(
                    f"the watcher ended (code {self.process.poll()}) before {what}; "
                    f"got {read}",
                    pytrace=False,
                )
            read.append(line)
            if lines is self.stderr:
                self.stderr_seen.append(line)
        return read

    def wait_connected(self):
        self.read_until(
            self.stderr,
            lambda line: line == f"osism events watch: connected to {self.url}",
            "'connected' message on stderr",
        )

    def stdout_until(self, resource_id):
        return self.read_until(
            self.stdout,
            lambda line: f" resource={resource_id} " in line,
            f"event line with resource={resource_id}",
        )

    def interrupt(self):
        """Ctrl+C; the exit code."""
        return stop_process(self.process, signal.SIGINT)


@pytest.fixture
def watchers():
    started = []

    def start(url, *options):
        watcher = Watcher(url, *options)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        stop_process(watcher.process, signal.SIGINT)


def line_pattern(event_type, node, resource):
    timestamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"
    return re.compile(
        rf"{timestamp} {re.escape(event_type)} node={re.escape(node)} "
        rf"resource={re.escape(resource)} source=openstack"
    )


class TestTheWatcherPrintsTheEventsItsFilterSelects:
    def test_service_filter(self, redis_mode_server, watchers):
        server = redis_mode_server
        tag = uuid.uuid4().hex[:8]
        watcher = watchers(server.ws_url, "--service", "baremetal")
        watcher.wait_connected()

        for event in (
            ironic("power_set.end", "node1", f"bm-{tag}"),
            nova("update", "node1", f"vm-{tag}"),
            ironic("power_set.end", "node2", f"last-{tag}"),
        ):
            status, _ = server.post_event(**event)
            assert status == 202

        lines = watcher.stdout_until(f"last-{tag}")
        assert len(lines) == 2, lines
        assert line_pattern(
            "baremetal.node.power_set.end", "node1", f"bm-{tag}"
        ).fullmatch(lines[0]), lines[0]
        assert line_pattern(
            "baremetal.node.power_set.end", "node2", f"last-{tag}"
        ).fullmatch(lines[1]), lines[1]

        assert watcher.interrupt() == 0

    def test_json_output_with_node_and_event_filters(self, redis_mode_server, watchers):
        server = redis_mode_server
        tag = uuid.uuid4().hex[:8]
        node = f"node-{tag}"
        watcher = watchers(
            server.ws_url,
            "--json",
            "--node",
            node,
            "--event",
            "compute.instance.update",
        )
        watcher.wait_connected()
        for event in (
            nova("delete.end", node, "vm-other"),
            ironic("power_set.end", node, "bm-other"),
            nova("update", "node1", "vm-node1"),
            nova("update", node, f"vm-{tag}"),
        ):
            status, _ = server.post_event(**event)
            assert status == 202
        lines = watcher.read_until(
            watcher.stdout, lambda line: f"vm-{tag}" in line, "the JSON event line"
        )
        assert len(lines) == 1, lines
        event = json.loads(lines[0])
        assert set(event) == EVENT_KEYS
        assert event["event_type"] == "compute.instance.update"
        assert event["node_name"] == node
        assert event["data"]["resource_id"] == f"vm-{tag}"


class TestTheWatcherReconnectsWhenTheServerRestarts:
    @pytest.mark.timeout(25)
    def test_restart_on_the_same_port(self, api_server, watchers):
        first = api_server("redis")
        watcher = watchers(first.ws_url, "--service", "baremetal")
        watcher.wait_connected()
        status, _ = first.post_event(**ironic("power_set.end", "node1", "before"))
        assert status == 202
        assert len(watcher.stdout_until("before")) == 1

        first.stop()
        watcher.read_until(
            watcher.stderr,
            lambda line: line.startswith(
                f"osism events watch: connection to {first.ws_url} lost"
            ),
            "'connection lost' message on stderr",
            timeout=STOP_DEADLINE,
        )

        second = api_server("redis", port=first.port)
        # Its backoff doubles from 0.5 s while the server is down; a few
        # seconds cover the restart.
        watcher.read_until(
            watcher.stderr,
            lambda line: line == f"osism events watch: connected to {first.ws_url}",
            "'connected' message after the restart",
            timeout=10,
        )
        status, _ = second.post_event(**ironic("power_set.end", "node1", "after"))
        assert status == 202
        lines = watcher.stdout_until("after")
        assert len(lines) == 1, lines
        assert line_pattern("baremetal.node.power_set.end", "node1", "after").fullmatch(
            lines[0]
        )
        assert watcher.interrupt() == 0
