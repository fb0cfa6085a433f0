"""The harness's pytest plugin keeps its promises: a missing server skips,
or fails where CI requires it, and a HarnessError fails a test with its
message and no traceback.

Runs pytest in a subprocess with the plugin loaded as tests/conftest.py
loads it.
"""

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

TESTS = """
from tests.harness import HarnessError
from tests.harness.fixtures import missing_server


def test_without_its_server():
    missing_server("no-such-server is not installed", "OSISM_REQUIRE_NO_SUCH")


def test_whose_server_did_not_start():
    raise HarnessError("no-such-server did not answer within 5 s")
"""


def run(pytester, monkeypatch, required: bool) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    monkeypatch.setenv("COLUMNS", "300")
    if required:
        monkeypatch.setenv("OSISM_REQUIRE_NO_SUCH", "1")
    else:
        monkeypatch.delenv("OSISM_REQUIRE_NO_SUCH", raising=False)
    pytester.makepyfile(test_servers=TESTS)
    return pytester.runpytest_subprocess(
        "-p", "tests.harness.fixtures", "-p", "no:cacheprovider", "-rA", timeout=30
    )


@pytest.mark.timeout(40)
def test_a_missing_server_skips_with_its_reason(pytester, monkeypatch):
    result = run(pytester, monkeypatch, required=False)

    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(["SKIPPED *no-such-server is not installed*"])


@pytest.mark.timeout(40)
def test_a_missing_server_fails_where_it_is_required(pytester, monkeypatch):
    result = run(pytester, monkeypatch, required=True)

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*OSISM_REQUIRE_NO_SUCH=1 but no-such-server is not installed*"]
    )


@pytest.mark.timeout(40)
def test_a_harness_error_fails_with_its_message_and_no_traceback(pytester, monkeypatch):
    result = run(pytester, monkeypatch, required=False)

    result.stdout.fnmatch_lines(
        ["HarnessError: no-such-server did not answer within 5 s"]
    )
    assert "raise HarnessError" not in result.stdout.str()
