"""Rails-like request parameter parsing: JSON, multipart and url-encoded bodies.

Rails merges every body format into one `params` hash, nests `a[b]` keys and collects
`a[]` keys into arrays; the handlers rely on that so a multipart message create and a
JSON one go through the same code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

from .errors import bad_request

_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")

# ActiveModel::Type::Boolean::FALSE_VALUES
_FALSE = {False, "0", "f", "F", "false", "FALSE", "off", "OFF", "False", "n", "no", "N", "NO"}


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


async def parse(request: Request) -> dict[str, Any]:
    """The request body as Rails params (query string merged underneath, like Rails)."""
    params: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        _assign(params, key, value)
    ctype = request.headers.get("content-type", "")
    if "multipart/form-data" in ctype or "application/x-www-form-urlencoded" in ctype:
        form = await request.form(max_files=100, max_fields=1000, max_part_size=64 * 1024 * 1024)
        for key, item in form.multi_items():
            if isinstance(item, UploadFile):
                upload = Upload(
                    filename=item.filename or "file",
                    content_type=item.content_type or "application/octet-stream",
                    data=await item.read(),
                )
                _assign(params, key, upload)
            else:
                _assign(params, key, item)
        # The recorder shows what the client sent; uploads are summarised, not copied.
        request.scope["emulator.params"] = summarize(params)
        return params
    raw = await request.body()
    if not raw.strip():
        return params
    if "json" in ctype or not ctype:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise bad_request() from None
        if isinstance(body, dict):
            params.update(body)
        else:
            # Rails wraps a non-object JSON body under `_json`.
            params["_json"] = body
    return params


def _assign(params: dict[str, Any], key: str, value: Any) -> None:
    parts = [m.group(1) if m.group(1) is not None else m.group(2) for m in _KEY.finditer(key)]
    if not parts:
        return
    target: Any = params
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":  # `a[]`: append
            if isinstance(target, list):
                target.append(value)
            return
        nxt = parts[i + 1] if not last else None
        if last:
            target[part] = value
        elif nxt == "":
            lst = target.get(part)
            if not isinstance(lst, list):
                lst = []
                target[part] = lst
            lst.append(value)
            return
        else:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child


def cast_bool(value: Any) -> bool | None:
    """ActiveModel boolean casting: nil and "" are nil, the FALSE_VALUES are false."""
    if value is None or value == "":
        return None
    return value not in _FALSE


def cast_int(value: Any) -> int | None:
    """Integer casting of an id param; None when it is absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def as_dict(value: Any) -> dict[str, Any]:
    """Attribute hashes: blank becomes {}, a JSON string (multipart) is parsed."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def summarize(value: Any) -> Any:
    if isinstance(value, Upload):
        return {"filename": value.filename, "content_type": value.content_type, "size": len(value.data)}
    if isinstance(value, dict):
        return {k: summarize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [summarize(v) for v in value]
    return value
