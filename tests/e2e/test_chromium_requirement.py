"""Where chromium is missing, the browser tests skip with a reason, and CI
(OSISM_REQUIRE_CHROMIUM=1) fails instead: a missing browser must not pass
for a green run."""

import pytest

from tests.e2e import conftest


@pytest.fixture
def no_chromium(monkeypatch):
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    monkeypatch.setattr(conftest.os, "access", lambda path, mode: False)


def test_without_chromium_the_browser_tests_skip_with_the_way_to_install_it(
    no_chromium, monkeypatch
):
    monkeypatch.delenv("OSISM_REQUIRE_CHROMIUM", raising=False)

    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        conftest.chromium_executable()


def test_without_chromium_ci_fails(no_chromium, monkeypatch):
    monkeypatch.setenv("OSISM_REQUIRE_CHROMIUM", "1")

    with pytest.raises(pytest.fail.Exception, match="OSISM_REQUIRE_CHROMIUM=1"):
        conftest.chromium_executable()


def test_debians_chromium_is_found_where_the_package_puts_it(monkeypatch):
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    monkeypatch.setattr(conftest.os, "access", lambda path, mode: True)

    assert conftest.chromium_executable() == "/usr/bin/chromium"
