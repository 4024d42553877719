"""``POST /v1/chatwoot/webhook/{integration_id}/{path_secret}``: verify, persist, answer.

Nothing slow happens here: the path secret and the signature are checked, a relevant event is
written to the outbound queue (group-committed) and handed to the worker; Chatwoot gets its 200 in
milliseconds. Unknown integration or wrong path secret: 404; bad signature: 401.

Chatwoot posts one webhook for every message in the inbox, the bridge's own included, so this is
the hottest route: it is a plain ASGI handler in front of the FastAPI router (no routing table, no
dependency solving, no pydantic), installed by :class:`WebhookMiddleware`.
"""

from __future__ import annotations

import functools
import hmac
import logging
import time

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ryze.bridge.provisioning import hash_path_secret
from ryze.bridge.relay.outbound.filters import (
    SENDABLE_MESSAGE_TYPES,
    classify,
    conversation_status,
    typing_state,
)
from ryze.bridge.relay.outbound.worker import target_chat
from ryze.bridge.services import BridgeServices

log = logging.getLogger(__name__)

PREFIX = "/v1/chatwoot/webhook/"
MAX_BODY = 4 * 1024 * 1024
_OK = b'{"ok":true}'
_SIGNATURE = b"x-chatwoot-signature"
_TIMESTAMP = b"x-chatwoot-timestamp"


def signature_ok(secret: str, timestamp: str, raw: bytes, presented: str) -> bool:
    # hmac.digest is the one-shot C implementation: no HMAC object per webhook.
    digest = hmac.digest(secret.encode(), timestamp.encode() + b"." + raw, "sha256")
    return hmac.compare_digest(b"sha256=" + digest.hex().encode(), presented.strip().encode())


async def handle(
    bridge: BridgeServices,
    integration_id: str,
    path_secret: str,
    signature: str,
    timestamp: str,
    raw: bytes,
) -> tuple[int, bytes]:
    runtime = bridge.manager.get(integration_id)
    if runtime is None or not hmac.compare_digest(
        hash_path_secret(path_secret).encode(), runtime.record.path_secret_hash.encode()
    ):
        return 404, b'{"error":"not found"}'
    # Nothing in the body is looked at before the signature is verified.
    if runtime.inbox_secret and (
        not signature or not signature_ok(runtime.inbox_secret, timestamp, raw, signature)
    ):
        log.warning("webhook signature rejected", extra={"integration_id": integration_id})
        return 401, b'{"error":"bad signature"}'
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 400, b'{"error":"body is not JSON"}'
    if not isinstance(payload, dict):
        return 400, b'{"error":"body is not a JSON object"}'
    event = payload.get("event")
    if event == "message_created" and payload.get("message_type") not in SENDABLE_MESSAGE_TYPES:
        # The commonest webhook by far: Chatwoot echoes every incoming message the bridge itself
        # created (about one per relayed WhatsApp message). Two fields decide it: classify() would
        # drop it, and no other handler below takes a message_created. Same answer as the full path.
        return 200, _OK
    inbox = payload.get("inbox")
    if isinstance(inbox, dict) and inbox.get("id") not in (None, runtime.record.inbox_id):
        return 200, _OK  # another inbox's event (misconfigured URL): not ours to relay
    intent = classify(payload)
    if intent is not None:
        job = await bridge.repos.outbound.enqueue(
            integration_id, intent.chatwoot_message_id, intent.conversation_id, intent.kind, raw.decode()
        )
        if job is not None:
            runtime.outbound.submit(job)
        return 200, _OK
    status = conversation_status(payload)
    if status is not None:
        await runtime.resolver.note_status(*status)
        return 200, _OK
    typing = typing_state(payload)
    if typing is not None:
        chat = target_chat(payload)
        if chat is not None:
            runtime.outbound.presence(chat, typing)
    return 200, _OK


@functools.cache
def _response_headers(length: int) -> tuple[tuple[bytes, bytes], ...]:
    """The answer's headers by body length (a handful of fixed bodies: built once each)."""
    return ((b"content-type", b"application/json"), (b"content-length", str(length).encode()))


class WebhookMiddleware:
    """Serves the webhook route directly; everything else goes on to the FastAPI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        bridge: BridgeServices = scope["app"].state.bridge  # Starlette sets scope["app"] before middleware
        status, body = await self._serve(bridge, scope, receive, path[len(PREFIX) :])
        bridge.metrics.webhook(status, time.perf_counter() - started)
        await send(
            {"type": "http.response.start", "status": status, "headers": list(_response_headers(len(body)))}
        )
        await send({"type": "http.response.body", "body": body})

    async def _serve(
        self, bridge: BridgeServices, scope: Scope, receive: Receive, rest: str
    ) -> tuple[int, bytes]:
        parts = rest.split("/")
        if len(parts) != 2 or not all(parts):
            return 404, b'{"error":"not found"}'
        if scope["method"] != "POST":
            return 405, b'{"error":"method not allowed"}'
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, b'{"error":"client disconnected"}'
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                return 413, b'{"error":"body too large"}'
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        # Only the two signature headers are read (the last one wins, as in a dict of them all).
        signature = timestamp = ""
        for name, value in scope.get("headers", ()):
            lowered = name.lower()
            if lowered == _SIGNATURE:
                signature = value.decode("latin-1")
            elif lowered == _TIMESTAMP:
                timestamp = value.decode("latin-1")
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return await handle(bridge, parts[0], parts[1], signature, timestamp, raw)
