"""Unit tests of osism.ui_route: the events page, its files, and ``GET /``
for browsers and for JSON clients."""

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from osism.api import create_app
from osism.services.websocket_manager import WebSocketManager
from osism.settings import Settings
from osism.ui_route import CONTENT_SECURITY_POLICY, UI_DIRECTORY, prefers_html
from tests.unit.test_api import FakeBridge

# What Chromium sends when it navigates to a page.
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def make_client(**settings) -> TestClient:
    bridge: Any = FakeBridge()
    app = create_app(
        WebSocketManager(send_timeout=5.0, max_pending=100),
        bridge,
        Settings(heartbeat_interval=3600, **settings),
    )
    return TestClient(app)


@pytest.fixture
def client():
    with make_client() as client:
        yield client


def assert_security_headers(response) -> None:
    assert response.headers["content-security-policy"] == STRICT_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


class TestTheRoot:
    def test_a_browser_asking_for_html_gets_the_page(self, client):
        response = client.get("/", headers={"Accept": BROWSER_ACCEPT})

        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "<title>osism events</title>" in response.text
        assert_security_headers(response)
        assert "Accept" in response.headers["vary"]

    @pytest.mark.parametrize(
        "accept",
        [
            None,  # no header at all
            "*/*",  # curl, httpx, requests
            "application/json",
            "application/json, text/html;q=0.9",
            "text/html;q=0, */*",
        ],
    )
    def test_json_clients_and_curl_keep_the_liveness_answer(self, client, accept):
        headers = {} if accept is None else {"Accept": accept}
        if accept is None:
            # TestClient adds */* by itself; send a request without any.
            client.headers.pop("accept", None)

        response = client.get("/", headers=headers)

        assert response.status_code == 200
        assert response.json() == {"status": "ok", "service": "osism events"}
        assert "Accept" in response.headers["vary"]


class TestPrefersHtml:
    @pytest.mark.parametrize(
        "accept",
        [
            BROWSER_ACCEPT,
            "text/html",
            "text/*",
            "TEXT/HTML; charset=utf-8",
            "application/json;q=0.5, text/html",
            "text/*;q=0.9, */*;q=0.1",
            # The most specific range decides: text/html beats text/*.
            "text/*;q=0, text/html;q=0.5, application/json;q=0.4",
        ],
    )
    def test_html_is_preferred(self, accept):
        assert prefers_html(accept)

    @pytest.mark.parametrize(
        "accept",
        [
            "",
            "*/*",
            "application/json",
            "text/html;q=0.5, application/json",
            # A tie is no preference.
            "text/html, application/json",
            "text/html;q=0",
            # Unreadable or out-of-range qualities count as "not acceptable".
            "text/html;q=high, */*;q=0.1",
            "text/html;q=nan",
            "text/html;q=2, */*;q=0.5",
            "text/plain, image/png",
            "garbage",
        ],
    )
    def test_html_is_not_preferred(self, accept):
        assert not prefers_html(accept)


class TestThePage:
    def test_it_is_served_at_ui_with_a_strict_policy(self, client):
        response = client.get("/ui")

        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert_security_headers(response)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

    def test_a_trailing_slash_leads_to_the_page(self, client):
        response = client.get("/ui/", follow_redirects=False)

        assert response.status_code == 307
        assert response.headers["location"].endswith("/ui")

    def test_it_has_no_inline_script_or_style(self, client):
        html = client.get("/ui").text

        assert re.findall(r"<script[^>]*>", html) == [
            '<script type="module" src="ui/static/app.js">'
        ]
        assert "<style" not in html
        assert " style=" not in html
        assert not re.search(r"\son[a-z]+=", html)

    def test_every_file_the_page_and_its_modules_name_is_served(self, client):
        html = client.get("/ui").text
        names = set(re.findall(r'(?:src|href)="ui/static/([^"]+)"', html))
        for module in [n for n in names if n.endswith(".js")]:
            script = client.get(f"/ui/static/{module}").text
            names |= set(re.findall(r'from "\./([^"]+)"', script))

        assert names == {
            "app.js",
            "connection.js",
            "event_list.js",
            "filters.js",
            "icon.svg",
            "style.css",
        }
        for name in names:
            response = client.get(f"/ui/static/{name}")
            assert response.status_code == 200, name
            assert response.content == (UI_DIRECTORY / name).read_bytes()

    @pytest.mark.parametrize(
        "name, media_type",
        [
            ("app.js", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("icon.svg", "image/svg+xml"),
        ],
    )
    def test_a_file_has_its_media_type_and_the_security_headers(
        self, client, name, media_type
    ):
        response = client.get(f"/ui/static/{name}")

        assert response.headers["content-type"] == media_type
        assert_security_headers(response)

    @pytest.mark.parametrize(
        "path",
        [
            "/ui/static/nothing.js",
            "/ui/static/index.html",  # the page has one address: /ui
            "/ui/static/..%2Fapi.py",
            "/ui/static/%2e%2e%2f%2e%2e%2fosism%2fapi.py",
            "/ui/static/..%5c..%5capi.py",
            "/ui/static/%2Fetc%2Fpasswd",
            "/ui/static/app.js%00.css",
            "/ui/static/.app.js",
            "/ui/static/../../osism/api.py",
            "/ui/static/ui/static/app.js",
        ],
    )
    def test_anything_but_a_file_of_the_page_is_not_found(self, client, path):
        response = client.get(path)

        assert response.status_code == 404
        assert "osism events" not in response.text
        assert "import" not in response.text


class TestReadAccess:
    def test_without_a_read_token_any_client_may_read(self, client):
        response = client.get("/ui/access")

        assert response.json() == {"token_required": False, "token_accepted": True}

    @pytest.mark.parametrize(
        "authorization, accepted",
        [
            (None, False),
            ("Bearer wrong", False),
            ("Basic s3cret", False),
            ("Bearer s3cret", True),
        ],
    )
    def test_with_a_read_token_it_says_whether_the_given_one_is_it(
        self, authorization, accepted
    ):
        headers = {} if authorization is None else {"Authorization": authorization}
        with make_client(events_read_token="s3cret") as client:
            response = client.get("/ui/access", headers=headers)

        assert response.json() == {"token_required": True, "token_accepted": accepted}
