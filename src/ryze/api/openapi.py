"""The published OpenAPI document, made to describe the errors RyzeAPI really sends.

FastAPI documents a 422 ``HTTPValidationError`` (``{"detail": [...]}``) on every route with a
body or parameters. RyzeAPI never answers that: ``errors.py`` turns validation failures into 400
with the error envelope. The schema says so instead, so generated clients match the wire.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = "ErrorEnvelope"
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _error_envelope() -> dict[str, Any]:
    return {
        "type": "object",
        "title": ERROR_SCHEMA,
        "required": ["success", "error"],
        "properties": {
            "success": {"type": "boolean", "const": False},
            "error": {
                "type": "object",
                "required": ["message"],
                "properties": {"message": {"type": "string"}},
            },
        },
        "example": {"success": False, "error": {"message": "Invalid request body"}},
    }


def contract_openapi(app: FastAPI) -> dict[str, Any]:
    """``app.openapi`` replacement: FastAPI's schema with 422 replaced by the 400 envelope."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not isinstance(responses, dict) or "422" not in responses:
                continue
            del responses["422"]
            responses.setdefault(
                "400",
                {
                    "description": "Invalid request (body, query or path)",
                    "content": {"application/json": {"schema": _ERROR_REF}},
                },
            )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas[ERROR_SCHEMA] = _error_envelope()
    app.openapi_schema = schema
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        return contract_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
