"""Every error the bridge answers is its own ``BridgeErrorBody`` (``{"error": {"kind", "message"}}``),
routing's 404/405 included — never FastAPI's ``{"detail": …}``."""

from __future__ import annotations

from typing import Any

import pytest

from ryze.protocol import BridgeErrorBody

from .conftest import RunningBridge
from .fake_ryzeapi import TOKEN


async def _raw(bridge: RunningBridge, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
    async with bridge.http.request(method, bridge.url + path, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/v1/integrations", 404, "not_found"),
        ("POST", "/v1/chatwoot/webhook/a", 404, "not_found"),
        ("DELETE", "/healthz", 405, "invalid_request"),
        ("PUT", "/metrics", 405, "invalid_request"),
        ("PATCH", "/v1/integrations/abc", 405, "invalid_request"),
        ("GET", "/v1/chatwoot/webhook/a/b", 405, "invalid_request"),
    ],
)
async def test_routing_errors_are_the_bridge_error_body(
    bridge: RunningBridge, method: str, path: str, status: int, kind: str
) -> None:
    got, body, _ = await _raw(bridge, method, path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert got == status
    assert "detail" not in body or isinstance(body.get("error"), dict)
    parsed = BridgeErrorBody.model_validate(body)
    assert parsed.error.kind == kind and parsed.error.message


async def test_a_405_still_says_which_methods_are_allowed(bridge: RunningBridge) -> None:
    status, _, headers = await _raw(bridge, "DELETE", "/healthz")
    assert status == 405 and headers.get("Allow") == "GET"


async def test_a_body_that_is_not_json_is_a_400_in_the_same_shape(bridge: RunningBridge) -> None:
    status, body, _ = await _raw(
        bridge,
        "POST",
        "/v1/integrations/activate",
        data=b"{not json",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert status == 400
    assert BridgeErrorBody.model_validate(body).error.kind == "invalid_request"


async def test_the_openapi_document_lists_the_bridge_error_body_not_fastapis(bridge: RunningBridge) -> None:
    async with bridge.http.get(bridge.url + "/openapi.json") as resp:
        schema = await resp.json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for operation in item.values():
            responses = operation["responses"]
            assert "422" not in responses, path
            for status, response in responses.items():
                if int(status) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/BridgeErrorBody", (path, status)
            if path.startswith("/v1/integrations"):
                assert "401" in responses and "400" in responses
