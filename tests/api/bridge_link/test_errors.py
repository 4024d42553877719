# ruff: noqa: E501 - the documented error strings are kept whole, one per line, to compare them by eye
"""The documented ``set`` error table, byte for byte (em dashes included)."""

from __future__ import annotations

import pytest

from ryze.api.bridge_link import errors
from ryze.api.bridge_link.validation import INLINE_FIELDS, parse_activation
from ryze.protocol import BridgeFailure, FailureKind

URL = "https://cw.example.com"


def classify(kind: FailureKind, status: int | None = None, detail: str = "raw", endpoint: str | None = None):
    failure = BridgeFailure(
        kind=kind, message="m", chatwoot_status=status, detail=detail, chatwoot_endpoint=endpoint
    )
    return errors.classify_failure(failure, base_url=URL, account_id=5, bridge_status=502)


def test_documented_strings() -> None:
    assert errors.GATE_MESSAGE == "integration gateway not configured (set BRIDGE_URL and BRIDGE_TOKEN)"
    assert errors.INSTANCE_NOT_FOUND == "instance not found"
    assert errors.NO_INTEGRATION == "no chatwoot integration for this instance"
    assert errors.NOTHING_TO_DELETE == "no chatwoot integration to delete"
    assert errors.ACTIVATED == "chatwoot integration activated"
    assert errors.DEACTIVATED == "chatwoot integration deactivated"


@pytest.mark.parametrize(
    ("status", "detail", "endpoint", "http", "message"),
    [
        (
            404, '{"error":"Resource could not be found"}', "GET /api/v1/accounts/5/inboxes", 400,
            "Chatwoot account or endpoint not found — verify chatwootBaseUrl (https://cw.example.com) and "
            'chatwootAccountId (5). Detail: {"error":"Resource could not be found"}',
        ),
        (
            422, "account invalid", "GET /api/v1/profile", 400,
            "Chatwoot account or endpoint not found — verify chatwootBaseUrl (https://cw.example.com) and "
            "chatwootAccountId (5). Detail: account invalid",
        ),
        (
            422, '{"message":"Name is too long"}', "POST /api/v1/accounts/5/inboxes", 400,
            'Chatwoot rejected the request as invalid — verify the inbox settings. Detail: {"message":"Name is too long"}',
        ),
        (
            422, "bad", None, 400,
            "Chatwoot rejected the request as invalid — verify the inbox settings. Detail: bad",
        ),
        (
            401, '{"errors":["Invalid Access Token"]}', None, 401,
            'Chatwoot rejected the API token — verify chatwootApiToken. Detail: {"errors":["Invalid Access Token"]}',
        ),
        (
            401, '{"error":"You are not authorized to do this action"}', None, 403,
            "Chatwoot denied the request — verify the API token has admin scope on account 5. "
            'Detail: {"error":"You are not authorized to do this action"}',
        ),
        (
            403, "forbidden", None, 403,
            "Chatwoot denied the request — verify the API token has admin scope on account 5. Detail: forbidden",
        ),
        (
            500, "boom", None, 502,
            "Chatwoot unreachable — verify chatwootBaseUrl (https://cw.example.com). Detail: HTTP 500: boom",
        ),
    ],
)  # fmt: skip
def test_chatwoot_http_rows(status: int, detail: str, endpoint: str | None, http: int, message: str) -> None:
    err = classify(FailureKind.CHATWOOT_HTTP, status, detail, endpoint)
    assert (err.status, err.message) == (http, message)


def test_chatwoot_failure_without_status() -> None:
    err = classify(FailureKind.CHATWOOT_HTTP, None, "answered non-JSON")
    assert (
        err.message
        == "Chatwoot unreachable — verify chatwootBaseUrl (https://cw.example.com). Detail: answered non-JSON"
    )


def test_network_rows() -> None:
    err = classify(FailureKind.CHATWOOT_UNREACHABLE, detail="dns: no such host")
    assert (err.status, err.message) == (
        502,
        "Chatwoot unreachable — verify chatwootBaseUrl (https://cw.example.com). Detail: dns: no such host",
    )
    err = classify(FailureKind.CHATWOOT_TIMEOUT, detail="read timeout")
    assert (err.status, err.message) == (
        504,
        "Chatwoot did not answer within 60s — verify chatwootBaseUrl (https://cw.example.com). Detail: read timeout",
    )
    err = classify(FailureKind.INTERNAL, detail="db down")
    assert err.status == 502
    assert err.message.startswith("integration gateway unreachable. Detail: ")
    assert errors.gateway_unreachable("connection refused").message == (
        "integration gateway unreachable. Detail: connection refused"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "invalid body: chatwootBaseUrl is required"),
        ({"chatwootBaseUrl": "ftp://x", "chatwootAccountId": 1, "chatwootApiToken": "t"},
         "invalid body: chatwootBaseUrl must be an http or https URL"),
        ({"chatwootBaseUrl": "https://x"}, "invalid body: chatwootAccountId is required"),
        ({"chatwootBaseUrl": "https://x", "chatwootAccountId": 0, "chatwootApiToken": "t"},
         "invalid body: chatwootAccountId must be greater than 0"),
        ({"chatwootBaseUrl": "https://x", "chatwootAccountId": "5", "chatwootApiToken": "t"},
         "invalid body: chatwootAccountId must be an integer"),
        ({"chatwootBaseUrl": "https://x", "chatwootAccountId": True, "chatwootApiToken": "t"},
         "invalid body: chatwootAccountId must be an integer"),
        ({"chatwootBaseUrl": "https://x", "chatwootAccountId": 5}, "invalid body: chatwootApiToken is required"),
        ({"chatwootBaseUrl": "https://x", "chatwootAccountId": 5, "chatwootApiToken": "t", "signMessages": "yes"},
         "invalid body: signMessages must be a boolean"),
        ([1, 2], "invalid body: expected a JSON object"),
    ],
)  # fmt: skip
def test_validation_messages(body: object, message: str) -> None:
    with pytest.raises(errors.ModuleError) as caught:
        parse_activation(body, instance_name="suporte")
    assert (caught.value.status, caught.value.message) == (400, message)


def test_validation_normalises() -> None:
    inp = parse_activation(
        {"chatwootBaseUrl": " https://cw.example.com/// ", "chatwootAccountId": 5, "chatwootApiToken": "tok"},
        instance_name="suporte",
    )
    assert inp.base_url == "https://cw.example.com"
    assert inp.inbox_name == "suporte"  # default: the instance name
    assert not (inp.sign_messages or inp.ignore_groups or inp.start_as_pending or inp.reopen_resolved)
    inline = parse_activation(
        {"chatwootBaseUrl": "http://cw", "chatwootAccountId": 2, "chatwootApiToken": "t",
         "chatwootInboxName": "Box", "chatwootSignMessages": True},
        instance_name="x", names=INLINE_FIELDS,
    )  # fmt: skip
    assert (inline.inbox_name, inline.sign_messages) == ("Box", True)
