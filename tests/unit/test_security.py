"""The API's bounds and access rules, in process (TestClient): tokens,
origins, body size and shape, client frames, clients. Each bad input gets a
clear answer, and the API goes on serving."""

import contextlib
import json
from typing import Any, Iterator

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic_settings import SettingsError
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from osism.api import create_app
from osism.cli import main
from osism.services.websocket_manager import WebSocketManager
from osism.settings import Settings
from tests.unit.test_api import EVENTS, FakeBridge, ironic_event

READ, WRITE = "read-s3cret", "write-s3cret"


@contextlib.contextmanager
def api(**settings: Any) -> Iterator[TestClient]:
    bridge: Any = FakeBridge()
    app = create_app(
        WebSocketManager(send_timeout=5.0, max_pending=100),
        bridge,
        Settings(heartbeat_interval=3600, **settings),
    )
    with TestClient(app) as client:
        client.bridge = bridge  # type: ignore[attr-defined]
        yield client


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def streams_an_event(client: TestClient, **connect: Any) -> None:
    """A client of the stream gets a posted event: the API still serves."""
    with client.websocket_connect(EVENTS, **connect) as websocket:
        client.post(
            "/v1/events", json=ironic_event(uuid="after"), headers=bearer(WRITE)
        )
        frame = websocket.receive_json()
    assert frame["data"]["resource_id"] == "after"


class TestTokens:
    @pytest.fixture
    def client(self):
        with api(events_read_token=READ, events_write_token=WRITE) as client:
            yield client

    @pytest.mark.parametrize(
        "headers",
        [{}, bearer("wrong"), {"Authorization": f"Basic {WRITE}"}],
        ids=["none", "wrong", "not-bearer"],
    )
    def test_posting_without_the_write_token_is_401_and_nothing_gets_in(
        self, client, headers
    ):
        response = client.post("/v1/events", json=ironic_event(), headers=headers)

        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {
            "detail": "a valid write token is needed (Authorization: Bearer)"
        }
        assert client.bridge.added == []

    def test_the_write_token_lets_an_event_in(self, client):
        response = client.post("/v1/events", json=ironic_event(), headers=bearer(WRITE))

        assert response.status_code == 202
        assert len(client.bridge.added) == 1

    @pytest.mark.parametrize(
        "url, headers",
        [
            (EVENTS, {}),
            (f"{EVENTS}?token=wrong", {}),
            (EVENTS, bearer(WRITE)),
        ],
        ids=["none", "wrong-query", "the-write-token"],
    )
    def test_reading_without_the_read_token_is_401_before_the_upgrade(
        self, client, url, headers
    ):
        with pytest.raises(WebSocketDenialResponse) as denied:
            client.websocket_connect(url, headers=headers).__enter__()

        assert denied.value.status_code == 401
        assert denied.value.json() == {
            "detail": "a valid read token is needed (Authorization: Bearer, "
            "or ?token=)"
        }

    def test_the_read_token_in_a_header_or_the_query_opens_the_stream(self, client):
        streams_an_event(client, headers=bearer(READ))
        with client.websocket_connect(f"{EVENTS}?token={READ}") as websocket:
            client.post(
                "/v1/events", json=ironic_event(uuid="q"), headers=bearer(WRITE)
            )
            assert websocket.receive_json()["data"]["resource_id"] == "q"


class TestOrigins:
    @pytest.fixture
    def client(self):
        with api(allowed_origins=["http://dash.example"]) as client:
            yield client

    def test_a_page_of_another_origin_may_not_post(self, client):
        response = client.post(
            "/v1/events",
            json=ironic_event(),
            headers={"Origin": "http://evil.example"},
        )

        assert response.status_code == 403
        assert client.bridge.added == []

    def test_a_page_of_another_origin_may_not_connect(self, client):
        with pytest.raises(WebSocketDenialResponse) as denied:
            client.websocket_connect(
                EVENTS, headers={"Origin": "http://evil.example"}
            ).__enter__()

        assert denied.value.status_code == 403

    def test_the_apis_own_origin_and_the_allowed_ones_may(self, client):
        for origin in ("http://testserver", "http://dash.example"):
            streams_an_event(client, headers={"Origin": origin})

    def test_an_allowed_origin_gets_cors_headers(self, client):
        response = client.options(
            "/v1/events",
            headers={
                "Origin": "http://dash.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )

        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == (
            "http://dash.example"
        )

    def test_clients_without_an_origin_header_are_not_affected(self, client):
        streams_an_event(client)


class TestIngestBounds:
    @pytest.fixture
    def client(self):
        with api(max_event_bytes=1000, max_json_depth=8) as client:
            yield client

    def test_a_body_over_the_bound_is_413_by_its_declared_length(self, client):
        response = client.post(
            "/v1/events",
            content=b"{" + b" " * 2000 + b"}",
            headers={"Content-Type": "application/json"},
        )

        assert response.status_code == 413
        assert response.json() == {
            "detail": "the body is 2002 bytes; at most 1000 are taken"
        }

    def test_a_chunked_body_over_the_bound_is_413_as_it_arrives(self, client):
        def chunks():
            for _ in range(20):
                yield b" " * 100

        response = client.post("/v1/events", content=chunks())

        assert response.status_code == 413
        assert response.json() == {"detail": "the body is over 1000 bytes"}

    @pytest.mark.parametrize(
        "content, loc, kind",
        [
            (b'{"event_type": "x.y", "payload": {"v": NaN}}', ["body"], "json_invalid"),
            (
                b'{"event_type": "x.y", "payload": {"v": "\\udc00"}}',
                ["body"],
                "unicode",
            ),
            (
                b'{"event_type": "x.y", "payload": [1]}',
                ["body", "payload"],
                "dict_type",
            ),
            (
                b'{"event_type": "x.y", "payload": {"a": '
                + b"[" * 9
                + b"]" * 9
                + b"}}",
                ["body"],
                "depth",
            ),
            (b"[" * 400 + b"]" * 400, ["body"], "depth"),
            (
                json.dumps({"event_type": "a\nb", "payload": {}}).encode(),
                ["body", "event_type"],
                "string_pattern_mismatch",
            ),
        ],
        ids=["nan", "surrogate", "not-an-object", "too-deep", "brackets", "newline"],
    )
    def test_bad_json_is_422_naming_the_problem_and_the_api_goes_on(
        self, client, content, loc, kind
    ):
        response = client.post(
            "/v1/events", content=content, headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert (error["loc"], error["type"]) == (loc, kind)
        assert client.bridge.added == []
        streams_an_event(client)


class TestClientBounds:
    def test_too_many_filter_values_get_an_error_frame(self):
        with api(websocket_max_filter_values=3) as client:
            with client.websocket_connect(EVENTS) as websocket:
                websocket.send_json(
                    {"action": "set_filters", "node_filters": ["a", "b", "c", "d"]}
                )
                error = websocket.receive_json()
                websocket.send_json({"action": "set_filters", "node_filters": ["a"]})
                reply = websocket.receive_json()

        assert error == {
            "type": "error",
            "message": "'node_filters' holds 4 values; at most 3",
        }
        assert reply["node_filters"] == ["a"]

    def test_too_many_filter_values_in_the_query_get_an_error_frame(self):
        with api(websocket_max_filter_values=1) as client:
            url = f"{EVENTS}?node_filters=a&node_filters=b"
            with client.websocket_connect(url) as websocket:
                error = websocket.receive_json()

        assert error["message"] == "'node_filters' holds 2 values; at most 1"

    def test_a_flood_of_frames_is_told_once_then_closed_with_1008(self):
        with api(websocket_max_frames_per_second=2) as client:
            with client.websocket_connect(EVENTS) as websocket:
                frame = {"action": "set_filters", "node_filters": ["n"]}
                for _ in range(4 + 1 + 4):
                    websocket.send_json(frame)
                replies = [websocket.receive_json() for _ in range(4 + 1)]
                with pytest.raises(WebSocketDisconnect) as closed:
                    websocket.receive_json()

        assert [r["type"] for r in replies] == ["filter_update"] * 4 + ["error"]
        assert replies[-1]["message"] == (
            "too many frames: at most 2 a second; this one was ignored"
        )
        assert (closed.value.code, closed.value.reason) == (1008, "too many frames")

    def test_one_client_more_than_the_bound_is_closed_with_1013(self):
        with api(websocket_max_clients=1) as client:
            with client.websocket_connect(EVENTS):
                with client.websocket_connect(EVENTS) as extra:
                    with pytest.raises(WebSocketDisconnect) as closed:
                        extra.receive_json()
            streams_an_event(client)

        assert (closed.value.code, closed.value.reason) == (1013, "too many clients")


class TestSecretFiles:
    def test_a_token_can_come_from_a_file(self, tmp_path, monkeypatch):
        secret = tmp_path / "read-token"
        secret.write_text(READ + "\n")
        monkeypatch.delenv("EVENTS_READ_TOKEN", raising=False)
        monkeypatch.setenv("EVENTS_READ_TOKEN_FILE", str(secret))

        settings = Settings()

        assert settings.events_read_token is not None
        assert settings.events_read_token.get_secret_value() == READ
        assert READ not in repr(settings)

    def test_a_secret_set_both_ways_is_an_error(self, tmp_path, monkeypatch):
        secret = tmp_path / "write-token"
        secret.write_text(WRITE)
        monkeypatch.setenv("EVENTS_WRITE_TOKEN", WRITE)
        monkeypatch.setenv("EVENTS_WRITE_TOKEN_FILE", str(secret))

        with pytest.raises(
            SettingsError,
            match="EVENTS_WRITE_TOKEN and "
            "EVENTS_WRITE_TOKEN_FILE are both set; set one of them",
        ):
            Settings()

    def test_an_unreadable_secret_file_is_named(self, tmp_path, monkeypatch):
        missing = tmp_path / "missing"
        monkeypatch.delenv("EVENTS_WRITE_TOKEN", raising=False)
        monkeypatch.setenv("EVENTS_WRITE_TOKEN_FILE", str(missing))

        with pytest.raises(SettingsError) as raised:
            Settings()

        assert str(raised.value) == (
            f"EVENTS_WRITE_TOKEN_FILE: cannot read {missing}: No such file or directory"
        )

    def test_the_command_says_so_without_a_traceback(self, tmp_path, monkeypatch):
        monkeypatch.delenv("EVENTS_WRITE_TOKEN", raising=False)
        monkeypatch.setenv("EVENTS_WRITE_TOKEN_FILE", str(tmp_path / "missing"))

        result = CliRunner().invoke(main, ["events", "watch"])

        assert result.exit_code == 1
        assert result.output.startswith(
            "Error: Invalid settings:\n  EVENTS_WRITE_TOKEN_FILE: cannot read "
        )

    def test_no_secret_shows_in_the_settings_repr_or_the_health_answer(
        self, monkeypatch
    ):
        secrets = {
            "EVENTS_READ_TOKEN": "read-s3cret",
            "EVENTS_WRITE_TOKEN": "write-s3cret",
            "REDIS_PASSWORD": "redis-s3cret",
            "REDIS_URL": "rediss://events:url-s3cret@cache:6380/0",
            "BROKER_URI": "amqps://osism:broker-s3cret@rabbit:5671//",
        }
        for name, value in secrets.items():
            monkeypatch.setenv(name, value)
        settings = Settings()

        with api(events_read_token=settings.events_read_token) as client:
            answer = client.get("/v1/events/health", headers=bearer(READ))
        assert answer.status_code == 200
        health = answer.text

        assert settings.redis_password is not None
        for shown in (repr(settings), str(settings), health):
            assert "s3cret" not in shown


def test_allowed_origins_come_comma_separated_from_the_environment(monkeypatch):
    monkeypatch.setenv("ALLOWED_ORIGINS", " https://a.example/ ,, http://b:8080")

    assert Settings().allowed_origins == ["https://a.example", "http://b:8080"]


def test_a_filter_value_longer_than_the_bound_gets_an_error_frame():
    with api() as client:
        with client.websocket_connect(EVENTS) as websocket:
            websocket.send_json({"action": "set_filters", "node_filters": ["n" * 256]})
            error = websocket.receive_json()

    assert error["message"] == (
        "a value of 'node_filters' is longer than 255 characters"
    )
