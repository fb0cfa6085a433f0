"""Unit tests of osism.access."""

import pytest
from pydantic import SecretStr

from osism.access import bearer_token, origin_allowed, own_origin, token_accepted


@pytest.mark.parametrize(
    "authorization, token",
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("", None),
    ],
)
def test_bearer_token(authorization, token):
    assert bearer_token({"authorization": authorization}) == token


def test_no_authorization_header_is_no_token():
    assert bearer_token({}) is None


@pytest.mark.parametrize(
    "given, expected, accepted",
    [
        (None, None, True),
        ("anything", None, True),
        ("s3cret", SecretStr("s3cret"), True),
        ("s3cre", SecretStr("s3cret"), False),
        (None, SecretStr("s3cret"), False),
        ("\udcff", SecretStr("s3cret"), False),
    ],
)
def test_token_accepted(given, expected, accepted):
    assert token_accepted(given, expected) is accepted


@pytest.mark.parametrize(
    "scheme, host, origin",
    [
        ("http", "api:8000", "http://api:8000"),
        ("ws", "api:8000", "http://api:8000"),
        ("wss", "api", "https://api"),
        ("https", "api", "https://api"),
    ],
)
def test_own_origin_is_the_scheme_of_a_page_and_the_host(scheme, host, origin):
    assert own_origin(scheme, {"host": host}) == origin


def test_without_host_there_is_no_own_origin():
    assert own_origin("http", {}) is None


@pytest.mark.parametrize(
    "origin, allowed, result",
    [
        (None, [], True),
        ("http://api:8000", [], True),
        ("http://api:8000/", [], True),
        ("http://evil.example", [], False),
        ("http://dash.example", ["http://dash.example"], True),
        ("http://evil.example", ["http://dash.example"], False),
        ("http://evil.example", ["*"], True),
        ("null", [], False),
    ],
)
def test_origin_allowed(origin, allowed, result):
    assert origin_allowed(origin, "http://api:8000", allowed) is result
