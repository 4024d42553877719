"""Checks recorded traffic against Chatwoot's own swagger.json (OpenAPI 3.1).

Requests are validated against the spec's request bodies, except where reference §10
shows the spec is wrong (the emulator, like Chatwoot, accepts those bodies). Responses
are validated only for the operations where §10 says spec and code agree; elsewhere a
faithful response fails the spec by design.

The spec is Chatwoot's own `swagger/swagger.json` at tag v4.15.1 (MIT), vendored as package data
in `spec/chatwoot-swagger.json` (origin, licence and refresh steps in `spec/README.md`), so the
check works from a fresh clone or an installed wheel. `RYZE_CHATWOOT_SWAGGER` points it elsewhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .recorder import RecordedRequest

SPEC_URI = "urn:spec"
A = "/api/v1/accounts/{account_id}"

# §10 "Missing operations": real endpoints swagger.json does not describe.
MISSING_OPERATIONS = {
    ("DELETE", A + "/inboxes/{id}"),
    ("POST", A + "/inboxes/{id}/reset_secret"),
    ("PATCH", A + "/conversations/{conversation_id}/messages/{message_id}"),
    ("PUT", A + "/conversations/{conversation_id}/messages/{message_id}"),
    ("POST", A + "/contact_inboxes/filter"),
    ("PATCH", A + "/contacts/{id}"),
}
# Same Rails action as a documented operation, under the other verb.
ALIASES = {("PUT", A + "/inboxes/{id}"): "PATCH"}


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def _is(err: ValidationError, validator: str, where: tuple[Any, ...], detail: str = "") -> bool:
    return err.validator == validator and tuple(err.absolute_path) == where and detail in err.message


# §10: request bodies the code accepts although the spec rejects them.
REQUEST_RELAXATIONS: dict[tuple[str, str], Callable[[ValidationError], bool]] = {
    # `inbox_id` is optional in ContactsController#create.
    ("POST", A + "/contacts"): lambda e: _is(e, "required", (), "'inbox_id'"),
    # toggle_status without `status` toggles open <-> resolved.
    ("POST", A + "/conversations/{conversation_id}/toggle_status"): lambda e: _is(
        e, "required", (), "'status'"
    ),
    # §5: with inbox_id + contact_id, source_id is optional; `snoozed` is a valid status.
    ("POST", A + "/conversations"): lambda e: (
        _is(e, "required", (), "'source_id'") or _is(e, "enum", ("status",), "'snoozed'")
    ),
    # §4: the last condition's query_operator is null; the spec only allows "AND"/"OR".
    ("POST", A + "/contacts/filter"): lambda e: (
        e.instance is None and tuple(e.absolute_path)[-1:] == ("query_operator",)
    ),
}


def _null_by_design(err: ValidationError) -> bool:
    """§10 rows that apply to every response: message `content` is null for attachment-only
    messages, and API inboxes render `null` where the spec promises strings (`provider`...)."""
    path = tuple(err.absolute_path)
    if err.instance is None and path[-1:] in (("content",), ("provider",)):
        return True
    return (
        err.validator == "oneOf"
        and path[-1:] == ("last_non_activity_message",)
        and isinstance(err.instance, dict)
        and err.instance.get("content") is None
    )


def _no_snoozed(body: Any) -> bool:
    return not (isinstance(body, dict) and body.get("status") == "snoozed")


def _always(_body: Any) -> bool:
    return True


# §10: (method, template) -> predicate on the response body saying "spec and code agree here".
RESPONSE_AGREES: dict[tuple[str, str], Callable[[Any], bool]] = {
    ("GET", A + "/contacts"): _always,
    ("GET", A + "/contacts/{id}"): _always,
    ("GET", A + "/contacts/search"): _always,
    ("POST", A + "/contacts/filter"): _always,
    ("POST", A + "/contacts/{id}/contact_inboxes"): _always,
    ("POST", A + "/conversations"): _always,  # the spec's {id, account_id, inbox_id} is a subset
    ("GET", A + "/conversations/{conversation_id}"): _no_snoozed,
    ("POST", A + "/conversations/{conversation_id}/toggle_status"): _always,
    ("GET", A + "/conversations/{conversation_id}/messages"): _always,
    ("POST", A + "/conversations/{conversation_id}/messages"): _always,  # null content: _null_by_design
}


# The vendored copy: package data, shipped in the wheel next to this module.
VENDORED_SPEC = Path(__file__).resolve().parent / "spec" / "chatwoot-swagger.json"
SPEC_VERSION = "v4.15.1"
SPEC_SHA256 = "e7896faca2a6a333f8c566cef19060bed0d9db915ed71e1fc500aab1f77bae64"


def default_spec_path() -> Path:
    """`RYZE_CHATWOOT_SWAGGER` when set, else the vendored copy (never a path outside the package)."""
    env = os.environ.get("RYZE_CHATWOOT_SWAGGER")
    if env:
        return Path(env)
    return VENDORED_SPEC


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class _Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    params: int
    spec: dict[str, Any]


class ConformanceChecker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource: Resource[Any] = Resource.from_contents(spec, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self.operations: list[_Operation] = []
        for template, item in spec.get("paths", {}).items():
            if not template.startswith("/api/v1/accounts/"):
                continue
            regex = _template_regex(template)
            for method, op in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    self.operations.append(
                        _Operation(method.upper(), template, regex, template.count("{"), op)
                    )
        # Literal segments win over parameters (`/contacts/search` before `/contacts/{id}`).
        self.operations.sort(key=lambda o: o.params)
        self._validators: dict[str, Draft202012Validator] = {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> ConformanceChecker:
        spec_path = Path(path) if path else default_spec_path()
        return cls(orjson.loads(spec_path.read_bytes()))

    def _validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry
            )
        return self._validators[pointer]

    def _match(self, method: str, path: str) -> tuple[str, _Operation | None]:
        """(template, operation); operation is None for a known-missing endpoint."""
        for template_method, template in MISSING_OPERATIONS:
            if template_method == method and _template_regex(template).match(path):
                return template, None
        for (alias_method, template), real_method in ALIASES.items():
            if alias_method == method and _template_regex(template).match(path):
                method = real_method
        for op in self.operations:
            if op.method == method and op.regex.match(path):
                return op.template, op
        return "", None

    def check(self, requests: list[RecordedRequest]) -> list[str]:
        errors: list[str] = []
        for rec in requests:
            if not rec.path.startswith("/api/v1/accounts/"):
                continue
            template, op = self._match(rec.method, rec.path)
            if op is None:
                if not template:
                    errors.append(f"{rec.method} {rec.path}: operation not in swagger.json")
                continue
            errors.extend(self._check_request(rec, op))
            errors.extend(self._check_response(rec, op))
        return errors

    def _check_request(self, rec: RecordedRequest, op: _Operation) -> list[str]:
        content = op.spec.get("requestBody", {}).get("content", {})
        if "multipart/form-data" in rec.content_type and "multipart/form-data" in content:
            media = "multipart/form-data"
            body = _multipart_as_spec(rec.body)
        elif "json" in rec.content_type and "application/json" in content:
            media = "application/json"
            body = rec.body
        else:
            return []
        if body is None:
            return []
        pointer = "/" + _pointer(
            "paths", op.template, op.method.lower(), "requestBody", "content", media, "schema"
        )
        relax = REQUEST_RELAXATIONS.get((op.method, op.template))
        out = []
        for err in self._validator(pointer).iter_errors(body):
            if relax is not None and relax(err):
                continue
            where = "/".join(str(p) for p in err.absolute_path) or "(body)"
            out.append(f"{rec.method} {rec.path}: request {where}: {err.message}")
        return out

    def _check_response(self, rec: RecordedRequest, op: _Operation) -> list[str]:
        if rec.status is None or rec.response_body is None:
            return []
        status = str(rec.status)
        responses = op.spec.get("responses", {})
        if rec.status < 300:
            agrees = RESPONSE_AGREES.get((op.method, op.template))
            if agrees is None or not agrees(rec.response_body) or status not in responses:
                return []
        elif status not in responses:
            # Chatwoot answers 401 where the spec says 403 (§10): the status differs by design.
            return []
        media = responses[status].get("content", {}).get("application/json")
        if not media or "schema" not in media:
            return []
        pointer = "/" + _pointer(
            "paths",
            op.template,
            op.method.lower(),
            "responses",
            status,
            "content",
            "application/json",
            "schema",
        )
        return [
            f"{rec.method} {rec.path}: response {rec.status} "
            f"{'/'.join(str(p) for p in err.absolute_path) or '(body)'}: {err.message}"
            for err in self._validator(pointer).iter_errors(rec.response_body)
            if not _null_by_design(err)
        ]


def _multipart_as_spec(body: Any) -> Any:
    """Rails params of a multipart body back into the field names the spec documents."""
    if not isinstance(body, dict):
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "attachments" and isinstance(value, list):
            out["attachments[]"] = ["<binary>" for _ in value]
        elif key == "private" and isinstance(value, str):
            out[key] = value.lower() in ("true", "1")
        elif key == "content_attributes" and isinstance(value, str):
            # Chatwoot parses a JSON string here (§6); the spec calls it an object.
            try:
                out[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                out[key] = value
        else:
            out[key] = value
    return out
