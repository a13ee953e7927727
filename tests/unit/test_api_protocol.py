"""The control API's protocol layer, read from botocore's Lambda model (issue 15.1)."""

from __future__ import annotations

import pytest

from esm.api.protocol import ApiError, configuration_shape, match_route, parse, render


def test_routes_come_from_the_model_with_and_without_a_trailing_slash():
    """15.1: the five operations at the model's URIs and methods; the CLI posts to `.../`."""
    assert match_route("POST", "/2015-03-31/event-source-mappings/")[0].operation.name == "CreateEventSourceMapping"
    assert match_route("GET", "/2015-03-31/event-source-mappings")[0].operation.name == "ListEventSourceMappings"
    route, uri = match_route("PUT", "/2015-03-31/event-source-mappings/abc")
    assert route.operation.name == "UpdateEventSourceMapping" and uri == {"UUID": "abc"}
    assert match_route("DELETE", "/2015-03-31/event-source-mappings/abc")[0].operation.name == "DeleteEventSourceMapping"
    assert match_route("GET", "/2015-03-31/functions/f/invocations") is None


def test_unknown_body_fields_and_fields_of_other_operations_are_rejected():
    """15.1: an unknown field, and a Create-only field sent to Update, are InvalidParameterValueException."""
    create, _ = match_route("POST", "/2015-03-31/event-source-mappings")
    with pytest.raises(ApiError) as caught:
        parse(create, {}, {}, {"FunctionName": "f", "Colour": "blue"})
    assert caught.value.code == "InvalidParameterValueException" and caught.value.status == 400
    assert "Colour" in caught.value.message
    mapping = "0b1d2f3e-1111-4222-8333-944455556666"
    update, uri = match_route("PUT", f"/2015-03-31/event-source-mappings/{mapping}")
    with pytest.raises(ApiError):
        parse(update, uri, {}, {"EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q"})
    assert parse(update, uri, {}, {"BatchSize": 3}) == {"UUID": mapping, "BatchSize": 3}


def test_query_members_are_typed_and_bounded_by_the_model():
    """15.1: MaxItems is an integer of at most 10000 (the model's max)."""
    route, _ = match_route("GET", "/2015-03-31/event-source-mappings")
    assert parse(route, {}, {"MaxItems": "2", "FunctionName": "f"}, None) == {"MaxItems": 2, "FunctionName": "f"}
    for bad in ("two", "10001"):
        with pytest.raises(ApiError):
            parse(route, {}, {"MaxItems": bad}, None)


def test_render_keeps_only_the_output_shape_and_sends_timestamps_as_epoch_seconds():
    """15.1/15.3: the configuration carries the model's members only (no FunctionName, no Enabled)."""
    out = render(configuration_shape(), {"UUID": "u", "FunctionName": "f", "Enabled": True, "LastModified": 12.5,
                                         "BatchSize": 10, "FilterCriteria": {"Filters": [{"Pattern": "{}"}]}})
    assert out == {"UUID": "u", "LastModified": 12.5, "BatchSize": 10, "FilterCriteria": {"Filters": [{"Pattern": "{}"}]}}


def test_errors_take_status_and_message_member_from_their_shape():
    """15.2: InvalidParameterValueException 400 `message`, ResourceNotFoundException 404 `Message`,
    ResourceConflictException 409; Type User."""
    assert (ApiError("InvalidParameterValueException", "m").status, ApiError("ResourceConflictException", "m").status,
            ApiError("ResourceNotFoundException", "m").status) == (400, 409, 404)
    assert ApiError("ResourceNotFoundException", "gone").body() == {"Type": "User", "Message": "gone"}
    assert ApiError("InvalidParameterValueException", "bad").body() == {"Type": "User", "message": "bad"}
