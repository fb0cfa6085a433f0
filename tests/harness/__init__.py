"""The shared test harness: the servers, processes and clients that the
integration tests, the browser (e2e) tests and the benchmark (bench/) start,
one module a concept (README, "Running the tests", has the map). Its pytest
fixtures are in :mod:`tests.harness.fixtures`.

Only what every module needs is here; it imports nothing, so the
benchmark's receiver process starts without loading osism or pytest.
"""

# Where the API streams events to WebSocket clients.
EVENTS_PATH = "/v1/events/openstack"


class HarnessError(Exception):
    """A server, process or client of the harness did not do what it must
    (in time); the message says what, with the output that explains it."""
