"""Unit tests of osism.services.client_frames."""

import json

import pytest

from osism.services.client_frames import (
    FrameError,
    SetFilters,
    error_frame,
    filter_update_frame,
    parse_client_frame,
)

LIMIT = 1024


def frame(**data):
    return json.dumps({"action": "set_filters", **data})


class TestParseClientFrame:
    def test_a_full_set_filters_frame_gives_all_three_lists(self):
        text = frame(event_filters=["e"], node_filters=["n"], service_filters=["s"])

        assert parse_client_frame(text, LIMIT) == SetFilters(["e"], ["n"], ["s"])

    def test_missing_or_null_lists_are_none_and_empty_lists_stay_empty(self):
        text = frame(event_filters=None, node_filters=[])

        assert parse_client_frame(text, LIMIT) == SetFilters(None, [], None)

    def test_a_frame_of_exactly_the_limit_is_accepted(self):
        text = frame(node_filters=["x" * 10])
        text = text[:-1] + " " * (LIMIT - len(text)) + "}"

        assert parse_client_frame(text, LIMIT) == SetFilters(None, ["x" * 10], None)

    @pytest.mark.parametrize(
        "text, message",
        [
            (
                "{",
                "frame is not valid JSON: Expecting property name enclosed in "
                "double quotes: line 1 column 2 (char 1)",
            ),
            ("[1, 2]", "frame must be a JSON object, not list"),
            ('"set_filters"', "frame must be a JSON object, not str"),
            ("{}", "unknown action None; supported: 'set_filters'"),
            (
                '{"action": "subscribe"}',
                "unknown action 'subscribe'; supported: " "'set_filters'",
            ),
            (
                frame(node_filter=["n"], zz=1),
                "unknown key(s) node_filter, zz; "
                "set_filters takes event_filters, node_filters, service_filters",
            ),
            (frame(event_filters="e"), "'event_filters' must be a list of strings"),
            (frame(node_filters=["n", 1]), "'node_filters' must be a list of strings"),
            (
                frame(service_filters={"a": 1}),
                "'service_filters' must be a list of " "strings",
            ),
        ],
    )
    def test_a_bad_frame_raises_a_message_for_the_client(self, text, message):
        with pytest.raises(FrameError) as raised:
            parse_client_frame(text, LIMIT)

        assert str(raised.value) == message

    def test_a_frame_over_the_limit_is_refused_by_its_utf8_size(self):
        text = frame(node_filters=["ü" * 600])

        with pytest.raises(FrameError) as raised:
            parse_client_frame(text, LIMIT)

        assert str(raised.value) == (
            f"frame of {len(text.encode())} bytes is larger than 1024 bytes"
        )


class TestReplies:
    def test_error_frame(self):
        assert error_frame("bad") == {"type": "error", "message": "bad"}

    def test_filter_update_frame_reports_the_current_filters(self):
        assert filter_update_frame(["e"], [], ["s"]) == {
            "type": "filter_update",
            "status": "success",
            "event_filters": ["e"],
            "node_filters": [],
            "service_filters": ["s"],
        }
