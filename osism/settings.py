"""Settings of osism events, read from the environment when asked for.

Every call to :func:`get_settings` reads the environment anew, so a process
(or a test using ``monkeypatch.setenv``) sees a changed variable without
re-importing anything. Variable names are the field names in upper case.
"""

from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple, Type

from pydantic import Field, SecretStr, ValidationError, ValidationInfo
from pydantic import field_validator
from pydantic import model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource

from osism.secret_files import secret_files
from osism.listener_settings import (
    LISTENER_EXCHANGES,
    default_topic,
    parse_listener_exchanges,
    parse_listener_topics,
)

__all__ = ["LISTENER_EXCHANGES", "Settings", "default_topic", "get_settings"]

# Settings that may come from a file named by <NAME>_FILE, and that are
# never shown (SecretStr) in logs, errors or health.
SECRETS = (
    "events_read_token",
    "events_write_token",
    "redis_password",
    "redis_url",
    "broker_uri",
)

# Defaults of the Redis fault handling, chosen so that the stream is back
# within a few seconds of Redis (worst case: the capped restart delay).
REDIS_RETRY_DELAY = 1.0
REDIS_RESTART_MAX_DELAY = 5.0


def describe_invalid_settings(error: ValidationError) -> str:
    """What is wrong with the settings, one line per problem, each naming the
    environment variable: for an operator, not a traceback."""
    lines = []
    for problem in error.errors():
        message = str(problem["msg"]).removeprefix("Value error, ")
        variables = [str(part).upper() for part in problem["loc"][:1]]
        lines.append(": ".join(variables + [message]))
    return "Invalid settings:\n" + "\n".join(f"  {line}" for line in lines)


class Settings(BaseSettings):
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description=(
            "Level of osism's own log messages (LOG_LEVEL); `osism --log-level` "
            "overrides it"
        ),
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description=(
            "Log lines as text, or as one JSON object each for log shippers "
            "(LOG_FORMAT)"
        ),
    )
    events_read_token: Optional[SecretStr] = Field(
        default=None,
        description=(
            "Token a WebSocket client must give, as 'Authorization: Bearer' or "
            "?token= (EVENTS_READ_TOKEN, or the file EVENTS_READ_TOKEN_FILE); "
            "unset, anyone who reaches the API may read the stream"
        ),
    )
    events_write_token: Optional[SecretStr] = Field(
        default=None,
        description=(
            "Token POST /v1/events must give as 'Authorization: Bearer' "
            "(EVENTS_WRITE_TOKEN, or the file EVENTS_WRITE_TOKEN_FILE); unset, "
            "anyone who reaches the API may post events"
        ),
    )
    allowed_origins: Annotated[List[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Web origins besides the API's own whose pages may connect or call "
            "it, separated by commas (ALLOWED_ORIGINS); requests without an "
            "Origin header (the CLI, scripts) are not affected"
        ),
    )
    max_event_bytes: int = Field(
        # Below 1 MiB, websockets' default message limit (osism events
        # watch, most clients): the frame adds the stream's fields to it.
        default=1_000_000,
        gt=0,
        description="Largest body POST /v1/events takes (MAX_EVENT_BYTES)",
    )
    max_json_depth: int = Field(
        default=32,
        ge=2,
        description=(
            "Deepest nesting of objects and arrays a posted event may have "
            "(MAX_JSON_DEPTH)"
        ),
    )
    redis_host: str = Field(default="redis", description="Redis host (REDIS_HOST)")
    redis_port: int = Field(default=6379, description="Redis port (REDIS_PORT)")
    redis_db: int = Field(default=0, description="Redis database (REDIS_DB)")
    redis_username: Optional[str] = Field(
        default=None, description="Redis ACL user (REDIS_USERNAME)"
    )
    redis_password: Optional[SecretStr] = Field(
        default=None,
        description="Redis password (REDIS_PASSWORD, or the file REDIS_PASSWORD_FILE)",
    )
    redis_ssl: bool = Field(
        default=False, description="Connect to Redis over TLS (REDIS_SSL)"
    )
    redis_ssl_ca_certs: Optional[str] = Field(
        default=None,
        description=(
            "CA certificates to verify Redis's TLS certificate with, a file "
            "(REDIS_SSL_CA_CERTS); the system's by default"
        ),
    )
    redis_url: Optional[SecretStr] = Field(
        default=None,
        description=(
            "Redis as a URL, instead of REDIS_HOST, _PORT, _DB, _USERNAME and "
            "_PASSWORD: redis://[user:password@]host:port/db, rediss:// for TLS "
            "(REDIS_URL, or the file REDIS_URL_FILE)"
        ),
    )
    redis_channel: str = Field(
        default="osism:events",
        min_length=1,
        description="Redis pub/sub channel of the event stream (REDIS_CHANNEL)",
    )
    redis_socket_timeout: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds a Redis command may take before it counts as failed "
            "(REDIS_SOCKET_TIMEOUT)"
        ),
    )
    redis_retry_delay: float = Field(
        default=REDIS_RETRY_DELAY,
        gt=0,
        description=(
            "Seconds the subscriber waits before reconnecting after an error "
            "(REDIS_RETRY_DELAY)"
        ),
    )
    redis_max_retries: int = Field(
        default=5,
        gt=0,
        description=(
            "Failed reconnects in a row after which the subscriber loop gives "
            "up and the bridge restarts it after a cool-down (REDIS_MAX_RETRIES)"
        ),
    )
    redis_restart_max_delay: float = Field(
        default=REDIS_RESTART_MAX_DELAY,
        gt=0,
        description=(
            "Longest wait between reconnect attempts; the wait doubles from "
            "REDIS_RETRY_DELAY up to this (REDIS_RESTART_MAX_DELAY)"
        ),
    )
    redis_buffer_size: int = Field(
        default=10_000,
        gt=0,
        description=(
            "Events kept while Redis is unreachable or nobody subscribes; the "
            "oldest are dropped beyond this (REDIS_BUFFER_SIZE)"
        ),
    )
    redis_subscriber_wait: float = Field(
        default=10.0,
        ge=0,
        description=(
            "Seconds a kept event waits for a subscriber on a reachable Redis "
            "before it is published to nobody (REDIS_SUBSCRIBER_WAIT)"
        ),
    )
    event_batch_interval: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description=(
            "Seconds events from Redis gather under a steady stream before an "
            "API process fans them out together, one write per client; 0 "
            "sends each at once (EVENT_BATCH_INTERVAL)"
        ),
    )
    api_host: str = Field(
        default="127.0.0.1",
        description="Address `osism service api` listens on (API_HOST)",
    )
    api_port: int = Field(
        default=8000, ge=0, le=65535, description="Port of the API (API_PORT)"
    )
    event_history_size: int = Field(
        default=10_000,
        gt=0,
        description=(
            "Events kept for clients that resume after a disconnect, in every "
            "API process and in Redis (EVENT_HISTORY_SIZE)"
        ),
    )
    event_history_max_bytes: int = Field(
        default=16 * 1024 * 1024,
        gt=0,
        description=(
            "Bytes of event JSON, about, an API process keeps for clients that "
            "resume; the oldest events go when this or EVENT_HISTORY_SIZE is "
            "reached (EVENT_HISTORY_MAX_BYTES)"
        ),
    )
    resume_history_wait: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description=(
            "Seconds a resume naming an event the API process does not hold "
            "waits for the Redis history to be loaded (after a start, or a "
            "break of the subscription) before it is answered with what the "
            "process has (RESUME_HISTORY_WAIT)"
        ),
    )
    shutdown_drain_timeout: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Seconds an API process takes on SIGTERM to deliver what it has "
            "accepted to its clients before it closes them with 1001 "
            "(SHUTDOWN_DRAIN_TIMEOUT)"
        ),
    )
    heartbeat_interval: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between heartbeat events to clients (HEARTBEAT_INTERVAL)",
    )
    websocket_max_frame_bytes: int = Field(
        default=65_536,
        gt=0,
        description=(
            "Largest frame a client may send; larger ones get an error frame "
            "(WEBSOCKET_MAX_FRAME_BYTES)"
        ),
    )
    websocket_per_message_deflate: bool = Field(
        default=False,
        description=(
            "Offer per-message compression to WebSocket clients "
            "(WEBSOCKET_PER_MESSAGE_DEFLATE); off, because compressing small "
            "JSON frames costs more server CPU than it saves (see bench/)"
        ),
    )
    events_url: str = Field(
        default="ws://127.0.0.1:8000/v1/events/openstack",
        description="Where `osism events watch` connects (EVENTS_URL)",
    )
    websocket_send_timeout: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds one WebSocket send may take before the client is dropped "
            "(WEBSOCKET_SEND_TIMEOUT)"
        ),
    )
    websocket_close_timeout: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds a client has to answer the server's close before its "
            "connection is cut (WEBSOCKET_CLOSE_TIMEOUT); a dropped client "
            "that reads nothing would otherwise keep it for good"
        ),
    )
    websocket_max_clients: int = Field(
        default=10_000,
        gt=0,
        description=(
            "WebSocket clients one API process serves at once; one more is "
            "closed with 1013 (WEBSOCKET_MAX_CLIENTS)"
        ),
    )
    websocket_max_filter_values: int = Field(
        default=100,
        gt=0,
        description=(
            "Values one filter list of a client may hold "
            "(WEBSOCKET_MAX_FILTER_VALUES)"
        ),
    )
    websocket_max_frames_per_second: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Frames a client may send per second, in bursts of up to twice "
            "that; more get an error frame, and a client that keeps on is "
            "closed with 1008 (WEBSOCKET_MAX_FRAMES_PER_SECOND)"
        ),
    )
    websocket_max_pending: int = Field(
        default=10_000,
        gt=0,
        description=(
            "Frames that may wait for one client before it counts as too slow "
            "and is dropped (WEBSOCKET_MAX_PENDING)"
        ),
    )

    broker_uri: SecretStr = Field(
        default=SecretStr("amqp://openstack:password@rabbitmq:5672/"),
        min_length=1,
        description=(
            "RabbitMQ the listener consumes from (BROKER_URI, or the file "
            "BROKER_URI_FILE); several brokers of a cluster separated by ';' "
            "are tried in turn; amqps:// for TLS"
        ),
    )
    broker_ssl_ca_certs: Optional[str] = Field(
        default=None,
        description=(
            "CA certificates to verify the brokers' TLS certificates and names "
            "with, a file (BROKER_SSL_CA_CERTS); setting it means TLS, as "
            "amqps:// does, which uses the system's CAs without it"
        ),
    )
    listener_exchanges: Annotated[Dict[str, str], NoDecode] = Field(
        default_factory=lambda: {service: service for service in LISTENER_EXCHANGES},
        description=(
            "OpenStack services whose notifications the listener carries, "
            "separated by commas; each publishes on the exchange of its name, "
            "or on the one given as <service>=<exchange> (LISTENER_EXCHANGES)"
        ),
    )
    listener_topics: Annotated[Dict[str, List[str]], NoDecode] = Field(
        default_factory=dict,
        description=(
            "Topics of the services whose notifications are not consumed from "
            "<service>_versioned_notifications: <service>=<topic>[,<topic>...] "
            "entries separated by ';' (LISTENER_TOPICS)"
        ),
    )
    listener_queue_prefix: str = Field(
        default="osism-events",
        min_length=1,
        description=(
            "Prefix of the listener's durable queues, one per exchange: "
            "<prefix>-<service> (LISTENER_QUEUE_PREFIX)"
        ),
    )
    listener_exchange_retry_interval: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds between attempts to bind to an exchange that does not "
            "exist yet (LISTENER_EXCHANGE_RETRY_INTERVAL)"
        ),
    )
    listener_reconnect_max_delay: float = Field(
        default=10.0,
        ge=1,
        description=(
            "Longest wait between attempts to reach the broker; the wait "
            "doubles from 1 s up to this (LISTENER_RECONNECT_MAX_DELAY)"
        ),
    )
    listener_heartbeat: float = Field(
        default=60.0,
        ge=0,
        description=(
            "AMQP heartbeat of the listener's broker connection in seconds; a "
            "connection silent for twice as long is taken for dead and "
            "re-established, 0 turns heartbeats off (LISTENER_HEARTBEAT)"
        ),
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [
                origin.strip().rstrip("/")
                for origin in value.split(",")
                if origin.strip()
            ]
        return value

    @field_validator("listener_exchanges", mode="before")
    @classmethod
    def _parse_exchanges(cls, value: Any) -> Dict[str, str]:
        return parse_listener_exchanges(value)

    @field_validator("listener_topics", mode="before")
    @classmethod
    def _parse_topics(cls, value: Any, info: ValidationInfo) -> Dict[str, List[str]]:
        topics = parse_listener_topics(value)
        # Missing when LISTENER_EXCHANGES itself is invalid (reported apart).
        exchanges: Dict[str, str] = info.data.get("listener_exchanges") or {}
        unknown = [s for s in topics if exchanges and s not in exchanges]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not "
                f"among the services of LISTENER_EXCHANGES ({', '.join(exchanges)})"
            )
        return topics

    @model_validator(mode="after")
    def _each_notification_bound_once(self) -> "Settings":
        """Two services binding the same topic of the same exchange would
        each get every notification published there: all of them twice."""
        claimed: Dict[Tuple[str, str], str] = {}
        for service, exchange in self.listener_exchanges.items():
            for topic in self.topics_of(service):
                other = claimed.setdefault((exchange, topic), service)
                if other != service:
                    raise ValueError(
                        f"LISTENER_EXCHANGES, LISTENER_TOPICS: {other} and "
                        f"{service} both consume topic {topic} of exchange "
                        f"{exchange}, so every notification there would arrive "
                        "twice; name the topic for one of them only"
                    )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: Type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> Tuple[PydanticBaseSettingsSource, ...]:
        """The environment, and ``<NAME>_FILE`` for every secret."""
        files = secret_files(*SECRETS)(settings_cls)
        return init_settings, env_settings, files

    def topics_of(self, service: str) -> List[str]:
        """The topics ``service``'s notifications are consumed from."""
        return self.listener_topics.get(service, [default_topic(service)])


def get_settings() -> Settings:
    return Settings()
