"""The one Redis client of a bridge and what is known of its health.

A bridge makes one client for its whole life and later only pings it again
(redis-py's pool reconnects by itself), so reconnecting leaks no connection.
The client becomes :attr:`RedisLink.client`, visible to other threads, only
after a ping succeeded; attempts are serialised by :attr:`RedisLink.lock`.
"""

import importlib.util
import logging
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

from osism.services.bridge.history_packer import HistoryPacker
from osism.settings import Settings

logger = logging.getLogger("osism.event_bridge")


def import_lazily(name: str) -> Any:
    """Module ``name``, loaded on first attribute access; None if missing.

    redis-py takes about a tenth of a second to import, a third of the
    API's start; an API that runs embedded never needs it.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return None
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


redis = import_lazily("redis")


def _where(url: str) -> Tuple[str, int, int]:
    """Host, port and database of a redis:// URL, for the log (its password
    stays out)."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    return (
        parts.hostname or "",
        parts.port or 6379,
        int(database) if database.isdigit() else 0,
    )


def utc_text(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


class RedisLink:
    """Connects to Redis at ``host:port/db`` and keeps the outage bookkeeping.

    ``host_configured`` says whether REDIS_HOST was set: an API process that
    was not told where Redis is and finds nothing at the default host runs
    embedded (:attr:`absent`) instead of reporting an outage. An empty
    ``host`` without a ``url`` turns Redis off (:attr:`disabled`). ``clock``
    gives the wall clock time of the outage bookkeeping.
    """

    def __init__(
        self,
        host: str,
        port: int,
        db: int,
        channel: str,
        socket_timeout: float,
        host_configured: bool,
        clock: Callable[[], float] = time.time,
        access: Optional[Dict[str, Any]] = None,
        url: Optional[str] = None,
    ) -> None:
        # How to reach Redis beyond host, port and db: username, password,
        # TLS (only what is set, so that without them the client is made
        # with the seed's arguments); or a redis:// / rediss:// URL instead.
        self.access = access or {}
        self.url = url
        if url is not None:
            host, port, db = _where(url)
        self.host = host
        self.port = port
        self.db = db
        self.channel = channel
        self.socket_timeout = socket_timeout
        self.host_configured = host_configured or url is not None
        # Off only when told neither a URL nor a host: a URL without a host
        # (unix:///run/redis.sock, redis:///0) still names a Redis.
        self.disabled = url is None and not host
        self.lock = threading.RLock()
        # The connected client (None while Redis does not answer) and the one
        # client ever made, which later attempts ping again.
        self.client: Any = None
        self.made: Any = None
        self.tried = False
        # An API without REDIS_HOST found nothing at the default host.
        self.absent = False
        # Whether this bridge was ever connected to Redis.
        self.seen = False
        self.outage_since: Optional[float] = None
        self.last_error: Optional[str] = None
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> "RedisLink":
        access: Dict[str, Any] = {}
        if settings.redis_username is not None:
            access["username"] = settings.redis_username
        if settings.redis_password is not None:
            access["password"] = settings.redis_password.get_secret_value()
        if settings.redis_ssl:
            access["ssl"] = True
        if settings.redis_ssl_ca_certs is not None:
            access["ssl_ca_certs"] = settings.redis_ssl_ca_certs
        url = settings.redis_url
        return cls(
            host=settings.redis_host,
            port=settings.redis_port,
            db=settings.redis_db,
            channel=settings.redis_channel,
            socket_timeout=settings.redis_socket_timeout,
            host_configured="redis_host" in settings.model_fields_set,
            access=access,
            url=None if url is None else url.get_secret_value(),
        )

    def connect(self, serving: bool, library: bool = True) -> Any:
        """Ping Redis (making the client first if needed); the client, or None.

        ``serving``: the bridge delivers to a WebSocket manager, so running
        without Redis may be its default (see :meth:`optional`). ``library``:
        whether redis-py is there at all.
        """
        self.tried = True
        if not library:
            logger.warning("Redis library not available, using the local event queue")
            return None
        if self.disabled:
            logger.info(
                "Redis is disabled (REDIS_HOST is empty): events reach only this "
                "process's WebSocket clients"
            )
            return None
        try:
            client = self.made if self.made is not None else self._make_client()
            client.ping()
        except Exception as e:
            self.client = None
            if self.optional(serving):
                self._note_absent(e)
            else:
                logger.error("Failed to connect to Redis: %s", e)
                self.note_outage(e)
            return None
        self.client = client
        self.absent = False
        self.seen = True
        if self.outage_since is not None:
            logger.info("Redis is back after %.1f s", self._clock() - self.outage_since)
            self.outage_since = None
        logger.info("Connected to Redis at %s:%s/%s", self.host, self.port, self.db)
        return client

    def optional(self, serving: bool) -> bool:
        """Whether running without Redis is this bridge's default, not an outage.

        An API process whose REDIS_HOST is not set runs embedded when nothing
        answers at the default host (``redis``, the name of OSISM's Redis
        container): the quick start on a laptop. It keeps looking and uses
        Redis once it answers; from then on losing it is an outage. A
        publisher (the listener, `osism events publish`) has nobody else to
        hand its events to: for it Redis is never optional.
        """
        return serving and not self.host_configured and not self.seen

    def _note_absent(self, error: BaseException) -> None:
        if not self.absent:
            logger.info(
                "No Redis at %s:%s (REDIS_HOST is not set; %s): running embedded, "
                "events reach only this process's WebSocket clients; Redis is "
                "used as soon as it answers",
                self.host,
                self.port,
                error,
            )
        else:
            logger.debug("Still no Redis at the default host: %s", error)
        self.absent = True

    def _make_client(self) -> Any:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        options = dict(
            decode_responses=True,
            socket_connect_timeout=10,
            socket_timeout=None,
            health_check_interval=30,
            **self.access,
        )
        if self.url is not None:
            client = redis.Redis.from_url(self.url, **options)
        else:
            client = redis.Redis(host=self.host, port=self.port, db=self.db, **options)
        # The bridge owns reconnecting. redis-py's own retries (ten, with
        # back-off, in redis-py 8) made one failed attempt take seconds: a
        # slow fallback to the local queue and a shutdown stalled while Redis
        # is down.
        client.set_retry(Retry(NoBackoff(), 0))
        # The seed's socket_timeout=None lets a command to a Redis that
        # stopped answering block for ever; the pool's connections get a
        # bound instead (the seed's constructor arguments stay as they were).
        client.connection_pool.connection_kwargs["socket_timeout"] = self.socket_timeout
        # The history's XADD rides with the PUBLISH (history_packer.py).
        client.connection_pool.connection_kwargs["command_packer"] = HistoryPacker()
        self.made = client
        return client

    def note_outage(self, error: BaseException) -> None:
        """Record a failure: the outage starts now unless it already had."""
        self.last_error = str(error) or type(error).__name__
        if self.outage_since is None:
            self.outage_since = self._clock()

    def lose(self, error: BaseException) -> None:
        """A command failed on the connected client: it is not connected now."""
        self.note_outage(error)
        self.client = None

    def outage(self) -> Optional[Dict[str, Any]]:
        """Since when and why Redis is out, for health; None while it is not."""
        if self.outage_since is None:
            return None
        return {"since": utc_text(self.outage_since), "error": self.last_error}

    def close(self) -> None:
        if self.made is not None:
            try:
                self.made.close()
            except Exception as e:
                logger.debug("Closing the Redis client failed: %s", e)
