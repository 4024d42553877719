"""The bridge's OpenAPI document, made to describe the errors it really sends.

FastAPI documents a 422 ``HTTPValidationError`` (``{"detail": [...]}``) on every route with a body
or parameters; the bridge never answers that (``app.py`` turns validation failures into 400 with
``BridgeErrorBody``). The schema says so instead, and lists the 401 every service-API call can get
and the 404 of a route naming an integration, so a client generated from it matches the wire.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ryze.protocol import BridgeErrorBody

ERROR_SCHEMA = "BridgeErrorBody"
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
SERVICE_PREFIX = "/v1/integrations"


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def bridge_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not isinstance(responses, dict):
                continue
            if responses.pop("422", None) is not None:
                responses.setdefault("400", _error("Invalid request (body, query or path)"))
            if path.startswith(SERVICE_PREFIX):
                responses.setdefault("401", _error("Missing or wrong BRIDGE_TOKEN"))
                if "{integration_id}" in path:
                    responses.setdefault("404", _error("Unknown integration"))
                if path.endswith("/activate"):  # provisioning.py classifies Chatwoot's failures
                    responses.setdefault("502", _error("Chatwoot answered an error or was unreachable"))
                    responses.setdefault("504", _error("Chatwoot did not answer in time"))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    error_schema = BridgeErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in error_schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components[ERROR_SCHEMA] = error_schema
    app.openapi_schema = schema
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        return bridge_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
