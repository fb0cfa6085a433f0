"""A TCP proxy on a loopback port in front of an API server, whose
connections a test can cut: the network between a browser and the API going
away and coming back while the API keeps running (and keeps its event
history)."""

import socket
import threading
from typing import List

LOOPBACK = "127.0.0.1"
JOIN_DEADLINE = 5.0


class CuttableProxy:
    """Forwards every connection to ``upstream_port``. ``cut()`` drops the
    open connections and makes new ones fail (accepted and closed at once,
    as a broken path does); ``mend()`` lets them through again."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._passing = threading.Event()
        self._passing.set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._acceptor = threading.Thread(
            target=self._accept, name="e2e-proxy-accept", daemon=True
        )
        self._acceptor.start()

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if not self._passing.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(
                    (LOOPBACK, self.upstream_port), timeout=5
                )
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
                for source, target in ((client, upstream), (upstream, client)):
                    thread = threading.Thread(
                        target=self._pump,
                        args=(source, target),
                        name="e2e-proxy-pump",
                        daemon=True,
                    )
                    self._threads.append(thread)
                    thread.start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        source.settimeout(None)
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self._passing.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def mend(self) -> None:
        self._passing.set()

    def close(self) -> None:
        self._stopping.set()
        self.cut()
        self._listener.close()
        self._acceptor.join(JOIN_DEADLINE)
        for thread in self._threads:
            thread.join(JOIN_DEADLINE)
