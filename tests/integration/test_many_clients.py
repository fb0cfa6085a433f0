"""Many clients of one API server, in one process of their own (the
harness's fast receiver, which the benchmark uses): each gets every event a
listener-side publisher sends, in order, none twice, with and without
permessage-deflate."""

from typing import Any, Dict

import pytest

from tests.harness.receiver import ReceiverProcess

pytestmark = [pytest.mark.integration, pytest.mark.redis]

CONNECT_DEADLINE = 8.0
RESULT_DEADLINE = 10.0


def run_burst(
    api_server, redis_server, publisher, tmp_path, clients: int, events: int, **env
) -> Dict[str, Any]:
    """Start a server, connect ``clients``, publish ``events`` numbered
    events as fast as possible; the receiver's result."""
    server = api_server("redis", env=env)
    receiver = ReceiverProcess(
        server.port,
        events,
        clients,
        tmp_path,
        CONNECT_DEADLINE,
        idle_timeout=2.0,
        deadline=RESULT_DEADLINE,
        compression=bool(env),
    )
    try:
        assert server.health()["websocket"]["clients"] == clients
        publisher(redis_server, server.channel, LOG_LEVEL="warning").burst(
            events, None, RESULT_DEADLINE
        )
        receiver.published()
        result = receiver.result(RESULT_DEADLINE + 5)
    finally:
        receiver.close()
    assert result["ended_by"] == "complete", result["ended_by"]
    return result


class TestManyClientsInOneProcess:
    @pytest.mark.timeout(30)
    def test_each_of_200_clients_gets_every_event_in_order_once(
        self, api_server, redis_server, publisher, tmp_path
    ):
        result = run_burst(api_server, redis_server, publisher, tmp_path, 200, 1000)

        for client in result["clients"]:
            assert client["received"] == 1000
            assert client["duplicates"] == 0
            assert client["out_of_order"] == 0
            assert client["foreign_frames"] == 0

    @pytest.mark.timeout(30)
    def test_with_permessage_deflate_every_event_comes_compressed(
        self, api_server, redis_server, publisher, tmp_path
    ):
        result = run_burst(
            api_server,
            redis_server,
            publisher,
            tmp_path,
            5,
            300,
            WEBSOCKET_PER_MESSAGE_DEFLATE="true",
        )

        for client in result["clients"]:
            assert client["received"] == 300
            assert client["out_of_order"] == 0
            assert client["compressed"] == 300
