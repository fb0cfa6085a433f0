"""The processes the benchmark starts, and what /proc says about them.

Everything here waits on a condition with a deadline; a process that does
not stop when asked is killed.
"""

import contextlib
import hashlib
import http.client
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, TypeVar

from osism.settings import Settings

REDIS_SERVER = "/usr/bin/redis-server"
LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
OSISM = REPO_ROOT / ".venv" / "bin" / "osism"

STOP_TIMEOUT = 5.0
KILL_TIMEOUT = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Every variable the settings read: removed from the environment handed to
# the processes started here, so the caller's shell cannot change a figure
# without the benchmark saying so.
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}

T = TypeVar("T")


def wait_until(
    condition: Callable[[], Optional[T]],
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> T:
    """Poll ``condition()`` until it returns a truthy value and return it;
    raise TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on the loopback address that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(tree: Optional[Path] = None, **settings: str) -> Dict[str, str]:
    """The environment without any osism setting, plus ``settings``; with
    ``tree``, `import osism` finds the package in that directory first
    (PYTHONPATH comes before the copy that `pip install .` put in the venv,
    which is what runs without it)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env.update(settings)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(tree), os.environ.get("PYTHONPATH")) if p
        )
    return env


def code_identity(tree: Optional[Path]) -> Dict[str, Any]:
    """Which osism code a run measured: a digest of its osism/*.py files,
    and the git commit and whether osism/ differs from it, where known.

    Other developers change osism/ in the same work tree, so the commit
    alone does not say what ran.
    """
    root = REPO_ROOT if tree is None else tree
    digest = hashlib.sha256()
    for path in sorted((root / "osism").rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    identity: Dict[str, Any] = {
        "tree": str(root),
        "osism_sha256": digest.hexdigest()[:12],
    }
    if (root / ".git").exists():
        identity["git_head"] = _git(root, "rev-parse", "--short", "HEAD")
        identity["osism_modified"] = bool(
            _git(root, "status", "--porcelain", "--", "osism")
        )
    return identity


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
    )
    return done.stdout.strip()


def stop_process(proc: "subprocess.Popen[Any]") -> None:
    """Terminate, wait, and kill as the last resort."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(KILL_TIMEOUT)


@contextlib.contextmanager
def running(
    argv: List[str],
    env: Optional[Dict[str, str]] = None,
    log: Optional[IO[bytes]] = None,
    pipes: bool = False,
) -> Iterator["subprocess.Popen[bytes]"]:
    """Start ``argv`` and stop it when the block ends, however it ends."""
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
        stdout=subprocess.PIPE if pipes else log,
        stderr=log,
    )
    try:
        yield proc
    finally:
        stop_process(proc)


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    port: int
    pid: int


@contextlib.contextmanager
def redis_server(workdir: Path, log: IO[bytes]) -> Iterator[RedisServer]:
    """A private redis-server without persistence."""
    port = free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", LOOPBACK]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    with running(argv, log=log) as proc:
        wait_until(
            lambda: _alive(proc) and redis_ping(port), 5.0, "redis-server answering"
        )
        yield RedisServer(port, proc.pid)


def _alive(proc: "subprocess.Popen[Any]") -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
    return True


def get_health(port: int) -> Dict[str, Any]:
    """GET /v1/events/health of the API on ``port``."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2.0)
    try:
        conn.request("GET", "/v1/events/health")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"health answered {response.status}: {body[:200]!r}")
        health: Dict[str, Any] = json.loads(body)
        return health
    finally:
        conn.close()


def try_health(port: int) -> Optional[Dict[str, Any]]:
    try:
        return get_health(port)
    except (OSError, http.client.HTTPException):
        return None


@dataclass
class ApiServer:
    proc: "subprocess.Popen[bytes]"
    port: int

    def health(self) -> Dict[str, Any]:
        return get_health(self.port)


@contextlib.contextmanager
def api_server(
    redis_port: int,
    channel: str,
    compression: bool,
    log: IO[bytes],
    tree: Optional[Path] = None,
) -> Iterator[ApiServer]:
    """`osism service api` as README starts it, on Redis; yields once the
    bridge is in redis mode with its subscriber running."""
    port = free_port()
    settings = {
        "REDIS_HOST": LOOPBACK,
        "REDIS_PORT": str(redis_port),
        "REDIS_CHANNEL": channel,
    }
    if compression:
        settings["WEBSOCKET_PER_MESSAGE_DEFLATE"] = "true"
    argv = [str(OSISM), "--log-level", "warning", "service", "api"]
    argv += ["--host", LOOPBACK, "--port", str(port)]
    with running(argv, env=clean_env(tree, **settings), log=log) as proc:
        server = ApiServer(proc, port)
        wait_until(lambda: _alive(proc) and _ready(port), 20.0, "API on Redis")
        check_is_server(proc.pid)
        yield server


def _ready(port: int) -> bool:
    health = try_health(port)
    if health is None:
        return False
    bridge = health["bridge"]
    return bool(bridge["mode"] == "redis" and bridge["subscriber_alive"])


def check_is_server(pid: int) -> None:
    """Fail unless ``pid`` is the Python process that runs uvicorn itself.

    `.venv/bin/osism` is a Python script whose shebang makes the interpreter
    the process we started; a wrapper (a shell, a launcher) would have the
    server as a child, and its /proc figures would be the wrapper's.
    """
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if not Path(cmdline[0].decode()).name.startswith("python"):
        raise RuntimeError(f"process {pid} is not Python: {cmdline!r}")
    children = children_of(pid)
    if children:
        raise RuntimeError(f"server process {pid} has children {children}")


def children_of(pid: int) -> List[int]:
    """Processes whose parent is ``pid`` (from each /proc/N/stat)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            children.append(int(entry.name))
    return children


@dataclass
class ProcSample:
    """CPU seconds (all threads, user + system) and memory of a process."""

    cpu_s: float
    rss_kib: int
    hwm_kib: int


def sample(pid: int) -> ProcSample:
    status = Path(f"/proc/{pid}/status").read_text()
    return ProcSample(
        cpu_s=cpu_seconds(pid),
        rss_kib=_status_kib(status, "VmRSS"),
        hwm_kib=_status_kib(status, "VmHWM"),
    )


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (also of a child that
    exited but was not waited for yet)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which is in parentheses and may hold
    # spaces; utime and stime are fields 14 and 15 of the whole file.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_idle_seconds() -> float:
    """Idle (and I/O wait) CPU seconds of all cores since boot.

    Only idle is taken from /proc/stat: with a tickless kernel it is
    measured exactly, while user and system there are sampled at the timer
    tick, which the benchmark's work at 1 ms deadlines can dodge: in runs at
    1,000 events/s they showed a fifth of what the processes' own (exact)
    utime + stime added up to.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return (int(fields[3]) + int(fields[4])) / CLOCK_TICKS


def _status_kib(status: str, key: str) -> int:
    for line in status.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)
