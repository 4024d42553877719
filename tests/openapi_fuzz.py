"""Requests generated from a service's own OpenAPI document, for the property-based contract tests.

Each documented operation gets a hypothesis strategy of requests: path and query parameters from
their schemas mixed with values that reach deep (an existing instance, a known id), a token drawn
from every kind the service knows (and none, and a wrong one), and a body drawn from the documented
schema, from arbitrary JSON, or from bytes that are not JSON at all.

Fields a service would *fetch* (media URLs, Chatwoot base URLs, RyzeAPI's URL for the bridge) are
never free text: they are drawn from ``Fuzz.urls``, addresses on this machine only, so no example
can send a request off it whatever the code under test does with it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def run_settings(default_examples: int) -> settings:
    """A run's hypothesis settings: ``RYZE_FUZZ_EXAMPLES`` examples per operation (else
    ``default_examples``), derandomized so `make test` is repeatable unless ``RYZE_FUZZ_RANDOM=1``."""
    return settings(
        max_examples=int(os.environ.get("RYZE_FUZZ_EXAMPLES", str(default_examples))),
        deadline=None,
        database=None,
        derandomize=os.environ.get("RYZE_FUZZ_RANDOM") != "1",
        suppress_health_check=list(HealthCheck),
    )


FETCHED_FIELDS = frozenset({"mediaUrl", "chatwootBaseUrl", "chatwoot_base_url", "ryzeapi_url", "webhookURL"})


def from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Values matching the JSON-schema subset FastAPI emits for these services' models (objects
    with typed properties, ``anyOf`` with null, enums and consts, arrays, ``$ref``/``$defs``).

    hypothesis-jsonschema does this in general but relies on hypothesis internals that moved;
    this is small, and it leans toward the edges (empty, huge, odd Unicode) on purpose."""
    root = root if root is not None else schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return from_schema(target, root)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of(*(from_schema(s, root) for s in schema[key]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of(*(from_schema({**schema, "type": k}, root) for k in kind))
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers() | st.sampled_from([0, -1, 2**31, 2**63, 10**30])
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers()
    if kind == "string":
        return st.text(max_size=40) | st.sampled_from(["", " ", "\x00", "٣", "a" * 300, "\u202e", "😀"])
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), root), max_size=4)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        optional = {k: from_schema(v, root) for k, v in properties.items() if k not in required}
        return st.fixed_dictionaries(
            {k: from_schema(v, root) for k, v in properties.items() if k in required}, optional=optional
        )
    return st.none() | st.booleans() | st.integers() | st.text(max_size=20)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the template, e.g. /api/message/text/{instance}
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None

    def describe(self) -> str:
        body = self.body[:300] if self.body is not None else None
        return f"{self.method} {self.url} headers={self.headers} body={body!r}"


@dataclass
class Fuzz:
    """What the generator may draw from, beside the schemas."""

    spec: dict[str, Any]
    tokens: dict[str, list[str]]  # header name -> values (a wrong one and "" included by the caller)
    # (header, value) pairs that authenticate and own the first known path values: drawn 3 times in 4,
    # so most examples get past authentication and reach the route's own checks.
    good_tokens: list[tuple[str, str]] = field(default_factory=list)
    path_values: dict[str, list[str]] = field(default_factory=dict)  # path parameter -> known values
    urls: list[str] = field(default_factory=list)  # what FETCHED_FIELDS may hold: loopback only
    extra_body_keys: dict[str, list[str]] = field(default_factory=dict)  # undocumented bodies' keys
    required_keys: dict[str, list[str]] = field(default_factory=dict)
    # Body field -> values that pass validation, put in 3 times in 4 so examples get past it.
    body_hints: dict[str, list[Any]] = field(default_factory=dict)

    def operations(self) -> list[Operation]:
        out = []
        for path, item in self.spec["paths"].items():
            for method, op in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    out.append(Operation(method.upper(), path, op))
        return out

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        # Component references resolve against a root that carries the components.
        return {**schema, "components": self.spec.get("components", {})}

    def _text(self) -> st.SearchStrategy[str]:
        return st.text(max_size=40)

    def _param(self, param: dict[str, Any]) -> st.SearchStrategy[str]:
        name = param["name"]
        known = self.path_values.get(name, [])
        schema = param.get("schema") or {}
        drawn: st.SearchStrategy[Any]
        try:
            drawn = from_schema(self._resolve(schema)) if schema else self._text()
        except Exception:  # a schema hypothesis-jsonschema cannot turn into data: any text
            drawn = self._text()
        as_text = drawn.map(lambda v: v if isinstance(v, str) else json.dumps(v))
        if not known:
            return st.one_of(as_text, self._text())
        # The first known value (the instance the good tokens own) most of the time.
        return st.integers(0, 7).flatmap(
            lambda n: st.just(known[0]) if n < 5 else st.sampled_from(known) if n < 7 else as_text
        )

    def _json_values(self) -> st.SearchStrategy[Any]:
        scalars = (
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
        )
        return st.recursive(
            scalars,
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
            ),
            max_leaves=10,
        )

    def _body(self, op: Operation) -> st.SearchStrategy[bytes | None]:
        content = (op.spec.get("requestBody") or {}).get("content", {})
        schema = (content.get("application/json") or {}).get("schema")
        keys = self.extra_body_keys.get(op.id, [])
        objects: list[st.SearchStrategy[Any]] = []
        if schema is not None:
            objects.append(from_schema(self._resolve(schema)))
        if keys:
            # Undocumented bodies: their known keys, the first ``required_keys`` always present.
            required = self.required_keys.get(op.id, [])
            objects.append(
                st.fixed_dictionaries(
                    {k: self._json_values() for k in required},
                    optional={k: self._json_values() for k in keys if k not in required},
                )
            )
        objects.append(st.dictionaries(st.text(max_size=12), self._json_values(), max_size=5))
        documented = st.one_of(*objects).flatmap(self._hinted).flatmap(self._loopback_urls)
        as_json = documented.map(lambda v: json.dumps(v).encode())
        garbage = st.one_of(
            st.binary(max_size=40),
            st.sampled_from([b"", b"null", b"[]", b"{", b'{"a":', b"\xff\xfe", b'"text"', b"1e999"]),
            self._json_values().map(lambda v: json.dumps(v).encode()),
        )
        return st.one_of(as_json, as_json, as_json, garbage, st.none())

    def _hinted(self, value: Any) -> st.SearchStrategy[Any]:
        if not isinstance(value, dict) or not self.body_hints:
            return st.just(value)
        hinted = {
            k: st.integers(0, 3).flatmap(
                lambda n, k=k, v=v: st.sampled_from(self.body_hints[k]) if n < 3 else st.just(v)
            )
            for k, v in value.items()
            if k in self.body_hints
        }
        return st.fixed_dictionaries(hinted).map(lambda picked: {**value, **picked})

    def _loopback_urls(self, value: Any) -> st.SearchStrategy[Any]:
        """``value`` with every fetched field replaced by a loopback URL (3 times in 4 when it is not
        a string, which nothing fetches; always when it is one)."""
        if not isinstance(value, dict):
            return st.just(value)
        urls = st.sampled_from(self.urls) if self.urls else st.just(None)
        swapped = {
            k: urls
            if isinstance(v, str)
            else st.integers(0, 3).flatmap(lambda n, v=v: urls if n < 3 else st.just(v))
            for k, v in value.items()
            if k in FETCHED_FIELDS and v is not None
        }
        return st.fixed_dictionaries(swapped).map(lambda picked: {**value, **picked})

    def requests(self, op: Operation) -> st.SearchStrategy[Request]:
        params = op.spec.get("parameters", [])
        path_params = {p["name"]: self._param(p) for p in params if p["in"] == "path"}
        query_params = {p["name"]: self._param(p) for p in params if p["in"] == "query"}
        header_name = st.sampled_from(sorted(self.tokens))

        @st.composite
        def build(draw: st.DrawFn) -> Request:
            path = op.path
            for name, strategy in path_params.items():
                value = draw(strategy) or "x"
                path = path.replace("{" + name + "}", quote(value, safe=""))
            query = {}
            for name, strategy in query_params.items():
                if draw(st.booleans()):
                    query[name] = draw(strategy)
            headers: dict[str, str] = {}
            if self.good_tokens and draw(st.integers(0, 3)) < 3:
                name, token = draw(st.sampled_from(self.good_tokens))
            else:
                name = draw(header_name)
                token = draw(st.sampled_from(self.tokens[name]))
            if token:
                headers[name] = token
            body = draw(self._body(op)) if op.method in ("POST", "PUT", "PATCH") else None
            if body is not None:
                headers["content-type"] = "application/json"
            url = path + ("?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items()) if query else "")
            return Request(op.method, url, headers, body)

        return build()
