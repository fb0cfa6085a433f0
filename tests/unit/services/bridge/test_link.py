"""Unit tests of osism.services.bridge.link: one Redis client and its health."""

import json
import sys
from typing import Any

import pytest
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry

from osism.services.bridge import link as link_module
from osism.services.bridge.history_packer import HistoryPacker
from osism.services.bridge.link import RedisLink, import_lazily, utc_text
from tests.unit.services.bridge_doubles import FakeClock
from osism.settings import Settings
from tests.unit.services.bridge_log_lines import debug, error, info, warning

# 2023-11-14T22:13:20Z
T0 = 1_700_000_000.0
T0_TEXT = "2023-11-14T22:13:20Z"
CONNECTED = info("Connected to Redis at redis:6379/0")
REFUSED = error("Failed to connect to Redis: refused")
ABSENT = info(
    "No Redis at redis:6379 (REDIS_HOST is not set; refused): running embedded, "
    "events reach only this process's WebSocket clients; Redis is used as soon "
    "as it answers"
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def make_link(clock: FakeClock, **overrides: Any) -> RedisLink:
    arguments: Any = dict(
        host="redis",
        port=6379,
        db=0,
        channel="osism:events",
        socket_timeout=5.0,
        host_configured=True,
        clock=clock,
    )
    return RedisLink(**{**arguments, **overrides})


@pytest.fixture
def link(fake_redis, clock) -> RedisLink:
    return make_link(clock)


class TestConnecting:
    def test_the_client_is_made_with_the_seeds_arguments(self, link, fake_redis):
        link.connect(serving=False)

        assert fake_redis.made == [
            dict(
                host="redis",
                port=6379,
                db=0,
                decode_responses=True,
                socket_connect_timeout=10,
                socket_timeout=None,
                health_check_interval=30,
            )
        ]

    def test_a_ping_that_answers_makes_the_client_visible(
        self, link, fake_redis, bridge_logs
    ):
        client = link.connect(serving=False)

        assert client is fake_redis.clients[0]
        assert link.client is client
        assert (link.seen, link.outage()) == (True, None)
        assert bridge_logs() == [CONNECTED]

    def test_the_client_is_not_visible_before_its_ping_answered(self, link, fake_redis):
        seen = []
        fake_redis.fail_next("ping", ConnectionError("refused"))
        link.connect(serving=False)
        client = fake_redis.clients[0]
        original_ping = client.ping

        def ping() -> bool:
            seen.append(link.client)
            return original_ping()

        client.ping = ping

        link.connect(serving=False)

        assert seen == [None]
        assert link.client is client

    def test_redis_py_retries_are_off_and_the_pool_has_a_socket_timeout(
        self, fake_redis, clock
    ):
        link = make_link(clock, socket_timeout=2.5)

        link.connect(serving=False)

        client = fake_redis.clients[0]
        assert isinstance(client.retry, Retry)
        assert client.retry.get_retries() == 0
        assert isinstance(client.retry._backoff, NoBackoff)  # nothing public tells
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 2.5
        assert isinstance(kwargs.pop("command_packer"), HistoryPacker)
        assert kwargs == {"socket_timeout": 2.5}

    def test_one_client_for_the_links_life_later_attempts_ping_it_again(
        self, link, fake_redis
    ):
        link.connect(serving=False)
        fake_redis.go_down()
        link.connect(serving=False)
        fake_redis.come_back()

        assert link.connect(serving=False) is fake_redis.clients[0]
        assert len(fake_redis.made) == 1

    def test_a_client_that_could_not_be_made_is_made_on_the_next_attempt(
        self, link, fake_redis, bridge_logs
    ):
        fake_redis.fail_next("Redis", ValueError("bad URL"))

        assert link.connect(serving=False) is None
        assert link.connect(serving=False) is fake_redis.clients[0]

        assert bridge_logs() == [
            error("Failed to connect to Redis: bad URL"),
            info("Redis is back after 0.0 s"),
            CONNECTED,
        ]

    def test_where_it_connects_is_logged(self, fake_redis, clock, bridge_logs):
        make_link(clock, host="redis.example.org", port=6380, db=3).connect(False)

        assert bridge_logs() == [info("Connected to Redis at redis.example.org:6380/3")]


class TestOutages:
    def test_a_failed_ping_records_since_when_and_why(self, link, fake_redis):
        fake_redis.go_down()

        assert link.connect(serving=False) is None

        assert link.client is None
        assert link.outage() == {"since": T0_TEXT, "error": "refused"}

    def test_a_later_failure_keeps_the_start_and_updates_the_error(
        self, link, fake_redis, clock
    ):
        fake_redis.go_down()
        link.connect(serving=False)
        clock.advance(30)
        fake_redis.go_down(TimeoutError("timed out"))

        link.connect(serving=False)

        assert link.outage() == {"since": T0_TEXT, "error": "timed out"}

    def test_an_error_without_a_message_is_named_by_its_type(self, link):
        link.note_outage(ConnectionError())

        assert link.outage() == {"since": T0_TEXT, "error": "ConnectionError"}

    def test_a_ping_that_answers_again_ends_the_outage_with_an_info_log(
        self, link, fake_redis, clock, bridge_logs
    ):
        fake_redis.go_down()
        link.connect(serving=False)
        clock.advance(12.5)
        fake_redis.come_back()

        link.connect(serving=False)

        assert link.outage() is None
        assert bridge_logs() == [
            REFUSED,
            info("Redis is back after 12.5 s"),
            CONNECTED,
        ]

    def test_losing_the_client_is_an_outage(self, link, fake_redis):
        link.connect(serving=False)

        link.lose(ConnectionError("reset"))

        assert link.client is None
        assert link.outage() == {"since": T0_TEXT, "error": "reset"}


class TestEmbeddedByDefault:
    """An API (serving) whose REDIS_HOST is not set runs embedded when
    nothing answers at the default host: not an outage."""

    @pytest.fixture
    def unset(self, fake_redis, clock) -> RedisLink:
        fake_redis.go_down()
        return make_link(clock, host_configured=False)

    def test_it_is_said_once_at_info_level_then_at_debug(self, unset, bridge_logs):
        unset.connect(serving=True)
        unset.connect(serving=True)

        assert unset.absent is True
        assert unset.outage() is None
        assert bridge_logs() == [
            ABSENT,
            debug("Still no Redis at the default host: refused"),
        ]

    def test_once_found_redis_is_used_and_losing_it_is_an_outage(
        self, unset, fake_redis, bridge_logs
    ):
        unset.connect(serving=True)
        fake_redis.come_back()
        unset.connect(serving=True)
        fake_redis.go_down()

        unset.connect(serving=True)

        assert unset.absent is False
        assert unset.outage() == {"since": T0_TEXT, "error": "refused"}
        assert bridge_logs()[-2:] == [CONNECTED, REFUSED]

    def test_for_a_publisher_redis_is_never_optional(self, unset, bridge_logs):
        unset.connect(serving=False)

        assert unset.absent is False
        assert bridge_logs() == [REFUSED]

    def test_a_configured_host_that_does_not_answer_is_an_outage(
        self, fake_redis, clock, bridge_logs
    ):
        fake_redis.go_down()

        make_link(clock, host_configured=True).connect(serving=True)

        assert bridge_logs() == [REFUSED]

    @pytest.mark.parametrize(
        ("serving", "configured", "seen", "optional"),
        [
            (True, False, False, True),
            (False, False, False, False),
            (True, True, False, False),
            (True, False, True, False),
        ],
    )
    def test_redis_is_optional_only_to_an_api_never_told_and_never_connected(
        self, clock, serving, configured, seen, optional
    ):
        link = make_link(clock, host_configured=configured)
        link.seen = seen

        assert link.optional(serving) is optional


class TestDisabled:
    def test_an_empty_host_disables_redis_with_an_info_log(
        self, fake_redis, clock, bridge_logs
    ):
        link = make_link(clock, host="")

        assert link.connect(serving=True) is None

        assert (link.disabled, link.tried) == (True, True)
        assert make_link(clock).disabled is False
        assert fake_redis.made == []
        assert link.outage() is None
        assert bridge_logs() == [
            info(
                "Redis is disabled (REDIS_HOST is empty): events reach only "
                "this process's WebSocket clients"
            )
        ]

    def test_without_redis_py_it_warns_and_connects_nothing(
        self, fake_redis, link, bridge_logs
    ):
        assert link.connect(serving=False, library=False) is None

        assert link.tried is True
        assert fake_redis.made == []
        assert bridge_logs() == [
            warning("Redis library not available, using the local event queue")
        ]


class TestFromSettings:
    def test_the_values_come_from_the_settings(self):
        settings = Settings(
            redis_host="r",
            redis_port=7,
            redis_db=2,
            redis_channel="c",
            redis_socket_timeout=1.5,
        )

        link = RedisLink.from_settings(settings)

        assert (link.host, link.port, link.db, link.channel) == ("r", 7, 2, "c")
        assert (link.socket_timeout, link.host_configured) == (1.5, True)

    def test_a_host_left_to_its_default_is_not_configured(self, redis_env):
        assert RedisLink.from_settings(Settings()).host_configured is False


class TestAccess:
    """Username, password, TLS, or a URL: REDIS_USERNAME, REDIS_PASSWORD,
    REDIS_SSL, REDIS_SSL_CA_CERTS, REDIS_URL."""

    SEED = dict(
        decode_responses=True,
        socket_connect_timeout=10,
        socket_timeout=None,
        health_check_interval=30,
    )

    def test_credentials_and_tls_are_passed_to_the_client(self, fake_redis):
        link = RedisLink.from_settings(
            Settings(
                redis_host="r",
                redis_username="events",
                redis_password=SecretStr("s3cret"),
                redis_ssl=True,
                redis_ssl_ca_certs="/etc/ca.pem",
            )
        )

        link.connect(serving=False)

        assert fake_redis.made == [
            dict(
                host="r",
                port=6379,
                db=0,
                **self.SEED,
                username="events",
                password="s3cret",
                ssl=True,
                ssl_ca_certs="/etc/ca.pem",
            )
        ]

    def test_a_url_replaces_host_port_and_db(self, fake_redis, mocker, bridge_logs):
        from_url = mocker.patch(
            "osism.services.event_bridge.redis.Redis.from_url",
            side_effect=lambda url, **kwargs: fake_redis.client(url=url, **kwargs),
        )
        url = "rediss://events:s3cret@cache.example:6380/2"
        link = RedisLink.from_settings(
            Settings(redis_url=SecretStr(url), redis_ssl_ca_certs="c")
        )

        link.connect(serving=False)

        from_url.assert_called_once()
        assert fake_redis.made == [dict(url=url, **self.SEED, ssl_ca_certs="c")]
        assert (link.host, link.port, link.db) == ("cache.example", 6380, 2)
        # Where it connected, never the password.
        assert bridge_logs()[-1] == info("Connected to Redis at cache.example:6380/2")
        assert "s3cret" not in str(bridge_logs())

    def test_a_url_without_port_or_db_means_the_defaults(self):
        link = RedisLink.from_settings(Settings(redis_url=SecretStr("redis://cache")))

        assert (link.host, link.port, link.db) == ("cache", 6379, 0)
        assert link.host_configured is True
        assert link.disabled is False

    @pytest.mark.parametrize(
        "url", ["unix:///run/redis.sock", "redis:///0", "unix:///run/redis.sock?db=2"]
    )
    def test_a_url_without_a_host_still_names_a_redis(
        self, url, fake_redis, mocker, bridge_logs
    ):
        from_url = mocker.patch(
            "osism.services.event_bridge.redis.Redis.from_url",
            side_effect=lambda url, **kwargs: fake_redis.client(url=url, **kwargs),
        )
        link = RedisLink.from_settings(
            Settings(redis_url=SecretStr(url), redis_host="")
        )

        assert link.disabled is False
        assert link.connect(serving=True) is not None
        from_url.assert_called_once()
        assert fake_redis.made[0]["url"] == url
        assert "disabled" not in str(bridge_logs())

    def test_a_url_with_an_odd_path_means_database_0(self):
        link = RedisLink.from_settings(Settings(redis_url=SecretStr("redis://cache/x")))

        assert link.db == 0


class TestClosing:
    def test_the_client_made_is_closed(self, link, fake_redis):
        link.connect(serving=False)
        fake_redis.go_down()
        link.connect(serving=False)

        link.close()

        assert fake_redis.clients[0].closed is True

    def test_a_failing_close_is_logged_at_debug_level(
        self, link, fake_redis, bridge_logs
    ):
        link.connect(serving=False)
        fake_redis.fail_next("close", OSError("gone"))

        link.close()

        assert bridge_logs()[-1] == debug("Closing the Redis client failed: gone")

    def test_a_link_that_made_no_client_closes_nothing(self, link, bridge_logs):
        link.close()

        assert link.made is None
        assert bridge_logs() == []


def test_utc_text_is_iso_8601_with_a_z():
    assert utc_text(T0 + 0.5) == "2023-11-14T22:13:20.500000Z"


class TestLazyImport:
    """redis-py is loaded on first use; the helper that defers it."""

    def test_a_module_not_imported_yet_is_loaded_on_first_use(self, monkeypatch):
        # colorsys: a small standard module nothing here imports.
        monkeypatch.delitem(sys.modules, "colorsys", raising=False)

        module = import_lazily("colorsys")

        assert sys.modules["colorsys"] is module
        assert module.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)

    def test_a_module_that_is_not_there_is_none(self):
        assert import_lazily("osism_no_such_module") is None

    def test_a_module_imported_already_is_returned_as_it_is(self):
        assert import_lazily("json") is json

    def test_redis_is_the_real_module(self):
        assert link_module.redis is sys.modules["redis"]
