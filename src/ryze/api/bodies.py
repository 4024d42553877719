"""JSON request bodies parsed *after* the caller is checked.

FastAPI reads and validates a declared body before it runs any dependency, so an anonymous
request with a malformed body got 400 instead of the documented 401, and a caller with no right on
an instance learnt about body rules (400) before hearing 404/403. Routes therefore take the raw
request, check auth → instance → ownership, then call ``parse_body``. ``body_openapi`` keeps the
body documented in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ryze.api.errors import ApiError, describe_validation_error

M = TypeVar("M", bound=BaseModel)
NOT_AN_OBJECT = "Invalid request body: expected a JSON object"


async def parse_body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """The body as ``model`` (400 naming the first bad field). Parsed as JSON whatever the
    ``Content-Type`` says, like the reference server. ``optional``: no body (or ``null``) means
    ``model()``."""
    raw = (await request.body()).strip()
    if not raw or raw == b"null":
        if optional:
            return model()
        raise ApiError(400, NOT_AN_OBJECT)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError(400, describe_validation_error(list(exc.errors()))) from None


def body_openapi(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON request body."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
