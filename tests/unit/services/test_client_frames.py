"""Unit tests of osism.services.client_frames."""

import json

import pytest

from osism.services.client_frames import (
    MAX_EVENT_ID_LENGTH,
    MAX_FILTER_VALUE_LENGTH,
    FrameError,
    Resume,
    SetFilters,
    error_frame,
    filter_update_frame,
    gap_frame,
    parse_client_frame,
    resume_frame,
)

LIMIT = 1024


def frame(**data):
    return json.dumps({"action": "set_filters", **data})


class TestResumeFrames:
    def test_a_resume_frame_names_the_last_event_id(self):
        text = json.dumps({"action": "resume", "last_event_id": "e-1"})

        assert parse_client_frame(text, LIMIT) == Resume("e-1")

    @pytest.mark.parametrize(
        "data, message",
        [
            ({}, "'last_event_id' must be a non-empty string"),
            ({"last_event_id": ""}, "'last_event_id' must be a non-empty string"),
            ({"last_event_id": 7}, "'last_event_id' must be a non-empty string"),
            (
                {"last_event_id": "x" * (MAX_EVENT_ID_LENGTH + 1)},
                f"'last_event_id' is longer than {MAX_EVENT_ID_LENGTH} characters",
            ),
            (
                {"last_event_id": "e-1", "node_filters": []},
                "unknown key(s) node_filters; resume takes last_event_id",
            ),
        ],
    )
    def test_a_bad_resume_frame_says_what_is_wrong(self, data, message):
        text = json.dumps({"action": "resume", **data})

        with pytest.raises(FrameError) as raised:
            parse_client_frame(text, LIMIT)

        assert str(raised.value) == message

    def test_an_id_of_the_longest_length_is_taken(self):
        longest = "x" * MAX_EVENT_ID_LENGTH
        text = json.dumps({"action": "resume", "last_event_id": longest})

        assert parse_client_frame(text, LIMIT) == Resume(longest)

    def test_the_replies(self):
        assert resume_frame(3) == {"type": "resume", "status": "success", "replayed": 3}
        assert gap_frame("e-1", "gone") == {
            "type": "gap",
            "last_event_id": "e-1",
            "message": "gone",
        }


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
            ("{}", "unknown action None; supported: 'set_filters', 'resume'"),
            (
                '{"action": "subscribe"}',
                "unknown action 'subscribe'; supported: 'set_filters', 'resume'",
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

    def test_as_many_filter_values_as_allowed_are_taken_one_more_is_refused(self):
        values = ["a", "b", "c"]

        assert parse_client_frame(
            frame(event_filters=values), LIMIT, max_filter_values=3
        ) == SetFilters(values, None, None)
        with pytest.raises(FrameError) as raised:
            parse_client_frame(
                frame(event_filters=[*values, "d"]), LIMIT, max_filter_values=3
            )
        assert str(raised.value) == "'event_filters' holds 4 values; at most 3"

    def test_a_filter_value_of_the_longest_length_is_taken_one_longer_refused(
        self,
    ):
        longest = "n" * MAX_FILTER_VALUE_LENGTH

        assert parse_client_frame(frame(node_filters=[longest]), LIMIT) == SetFilters(
            None, [longest], None
        )
        with pytest.raises(FrameError) as raised:
            parse_client_frame(frame(node_filters=[longest + "n"]), LIMIT)
        assert str(raised.value) == (
            f"a value of 'node_filters' is longer than {MAX_FILTER_VALUE_LENGTH} "
            "characters"
        )

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
