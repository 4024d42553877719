"""``GET /internal/media/{instance}/{message_id}``: WhatsApp media bytes for the bridge.

Served under ``BRIDGE_INTERNAL_RYZEAPI_URL`` with ``Authorization: Bearer <BRIDGE_TOKEN>``; only
registered when the bridge is enabled.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from starlette.datastructures import Headers


def bearer_matches(headers: Headers, token: str) -> bool | None:
    """True when the request carries ``Bearer <token>``; None when it carries no bearer at all
    (401 ``Missing token``), False when it carries a different one (401 ``Invalid token``).
    Constant-time compare."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return hmac.compare_digest(value.encode(), token.encode())


def content_disposition(file_name: str | None) -> str:
    if not file_name:
        return "inline"
    ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "'").replace("\\", "_")
    ascii_name = "".join(c if c.isprintable() else "_" for c in ascii_name)
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name, safe='')}"
