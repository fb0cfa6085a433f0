"""Unit tests of osism.ingest: a posted notification, read within bounds."""

import json

import pytest

from osism.ingest import InvalidBody, parse_notification

DEPTH = 8


def problem(body, max_depth=DEPTH):
    with pytest.raises(InvalidBody) as raised:
        parse_notification(body, max_depth)
    [error] = raised.value.errors
    return error


def body(**fields):
    return json.dumps({"event_type": "x.y", "payload": {}, **fields}).encode()


def nested(depth):
    """An event whose payload makes the whole body ``depth`` levels deep."""
    value: object = 1
    for _ in range(depth - 2):
        value = [value]
    return json.dumps({"event_type": "x.y", "payload": {"v": value}}).encode()


def test_a_notification_is_read_with_its_fields():
    notification = parse_notification(
        body(publisher_id="nova-compute:c1", message_id="m1"), DEPTH
    )

    assert (notification.event_type, notification.payload) == ("x.y", {})
    assert (notification.publisher_id, notification.message_id) == (
        "nova-compute:c1",
        "m1",
    )


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    error = problem(
        b'{"event_type": "x.y", "payload": {"v": ' + constant.encode() + b"}}"
    )

    assert error == {
        "loc": ["body"],
        "msg": f"the body is not JSON: {constant} is not JSON",
        "type": "json_invalid",
    }


def test_a_lone_surrogate_is_refused():
    error = problem(b'{"event_type": "x.y", "payload": {"v": "\\ud800"}}')

    assert error["msg"] == "a string holds a lone surrogate (not valid Unicode)"
    assert error["type"] == "unicode"


def test_a_lone_surrogate_in_a_key_is_refused_too():
    error = problem(b'{"event_type": "x.y", "payload": {"\\udfff": 1}}')

    assert error["type"] == "unicode"


def test_nesting_up_to_the_bound_is_taken_and_deeper_is_refused():
    assert parse_notification(nested(DEPTH), DEPTH).event_type == "x.y"

    error = problem(nested(DEPTH + 1))

    assert error == {
        "loc": ["body"],
        "msg": f"nested deeper than {DEPTH} levels",
        "type": "depth",
    }


def test_nesting_that_breaks_the_json_parser_is_refused_the_same_way():
    error = problem(b"[" * 100_000 + b"]" * 100_000)

    assert error["type"] == "depth"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\xff", "the body is not UTF-8"),
        (b"", "the body is not JSON: Expecting value: line 1 column 1 (char 0)"),
    ],
)
def test_a_body_that_is_not_json_text(data, message):
    assert problem(data)["msg"] == message


@pytest.mark.parametrize(
    "event_type",
    ["compute.x\nforged", "a..b", ".a", "a.", "<script>", "a b", "x" * 256],
)
def test_an_event_type_that_is_not_a_bounded_dotted_name_is_refused(event_type):
    error = problem(body(event_type=event_type))

    assert error["loc"] == ["body", "event_type"]


def test_an_event_type_of_the_longest_length_is_taken():
    longest = "a" * 127 + "." + "b" * 127

    assert parse_notification(body(event_type=longest), DEPTH).event_type == longest


@pytest.mark.parametrize(
    "data, loc, kind",
    [
        (b"null", ["body"], "model_type"),
        (b"[]", ["body"], "model_type"),
        (json.dumps({"payload": {}}).encode(), ["body", "event_type"], "missing"),
        (body(payload=[1]), ["body", "payload"], "dict_type"),
        (body(publisher_id="p" * 256), ["body", "publisher_id"], "string_too_long"),
        (body(message_id=7), ["body", "message_id"], "string_type"),
    ],
)
def test_fields_are_named_when_wrong(data, loc, kind):
    error = problem(data)

    assert (error["loc"], error["type"]) == (loc, kind)
