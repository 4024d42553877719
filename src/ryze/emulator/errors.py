"""Chatwoot's error responses (reference §2), as exceptions the handlers raise.

Every shape here is what Rails renders, not what swagger.json advertises: authorization
failures are 401 (never 403), validation errors are `{"message","attributes"}`, and
message create wraps everything in `{"error": ...}`.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class ApiError(Exception):
    """An error response; `body=None` renders an empty body."""

    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(f"{status} {body!r}")
        self.status = status
        self.body = body

    def response(self) -> Response:
        if self.body is None:
            return Response(b"", status_code=self.status)
        return json_response(self.body, self.status)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json; charset=utf-8")


def not_signed_in() -> ApiError:
    return ApiError(401, {"errors": ["You need to sign in or sign up before continuing."]})


def invalid_token() -> ApiError:
    return ApiError(401, {"error": "Invalid Access Token"})


def not_member() -> ApiError:
    return ApiError(401, {"error": "You are not authorized to access this account"})


def forbidden() -> ApiError:
    # Pundit::NotAuthorizedError is rendered as 401 by Chatwoot's exception handler.
    return ApiError(401, {"error": "You are not authorized to do this action"})


def not_found() -> ApiError:
    return ApiError(404, {"error": "Resource could not be found"})


def route_not_found() -> ApiError:
    return ApiError(404, {"status": 404, "error": "Not Found"})


def bad_request() -> ApiError:
    return ApiError(400, {"status": 400, "error": "Bad Request"})


def internal_error() -> ApiError:
    return ApiError(500, {"status": 500, "error": "Internal Server Error"})


def inbox_limit() -> ApiError:
    return ApiError(402, {"error": "Account limit exceeded. Upgrade to a higher plan"})


class RecordInvalid(Exception):
    """ActiveRecord::RecordInvalid: a list of (attribute, full message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("Validation failed: " + ", ".join(m for _, m in errors))

    def api_error(self) -> ApiError:
        attributes: list[str] = []
        for attr, _ in self.errors:
            if attr not in attributes:
                attributes.append(attr)
        return ApiError(422, {"message": ", ".join(m for _, m in self.errors), "attributes": attributes})


class RecordNotFound(Exception):
    """ActiveRecord::RecordNotFound raised from inside an action."""

    def __init__(self, message: str = "Couldn't find record") -> None:
        super().__init__(message)


class UnhandledError(Exception):
    """An exception Rails does not rescue (ArgumentError, NoMethodError...): 500 in production."""


class RecordNotUnique(Exception):
    """ActiveRecord::RecordNotUnique from the (inbox_id, source_id) unique index."""
