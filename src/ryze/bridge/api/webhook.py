"""``POST /v1/chatwoot/webhook/{integration_id}/{path_secret}``: verify, persist, answer.

Nothing slow happens here: the path secret and the signature are checked, a relevant event is
written to the outbound queue (group-committed) and handed to the worker; Chatwoot gets its 200 in
milliseconds. Unknown integration or wrong path secret: 404; bad signature, or a signed webhook
outside the replay window: 401; a body the bridge cannot act on without guessing: 400. Every error
answer is the bridge's ``BridgeErrorBody``.

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
from ryze.bridge.relay.outbound import shapes
from ryze.bridge.relay.outbound.filters import (
    SENDABLE_MESSAGE_TYPES,
    classify,
    conversation_status,
    typing_intent,
)
from ryze.bridge.services import BridgeServices
from ryze.protocol import BridgeErrorBody, BridgeFailure, FailureKind

log = logging.getLogger(__name__)

PREFIX = "/v1/chatwoot/webhook/"
MAX_BODY = 4 * 1024 * 1024
_OK = b'{"ok":true}'
_SIGNATURE = b"x-chatwoot-signature"
_TIMESTAMP = b"x-chatwoot-timestamp"
_MESSAGE_EVENTS = ("message_created", "message_updated")


@functools.lru_cache(maxsize=64)  # a handful of fixed bodies; the shape errors vary, so bounded
def error_body(kind: FailureKind, message: str) -> bytes:
    """The bridge's one error body (``BridgeErrorBody``), here as for every other route."""
    return (
        BridgeErrorBody(error=BridgeFailure(kind=kind, message=message))
        .model_dump_json(exclude_none=True)
        .encode()
    )


NOT_FOUND = error_body(FailureKind.NOT_FOUND, "not found")
_unsigned = "X-Chatwoot-Signature missing (the inbox has a signing secret)"


def signature_ok(secret: str, timestamp: str, raw: bytes, presented: str) -> bool:
    # hmac.digest is the one-shot C implementation: no HMAC object per webhook.
    digest = hmac.digest(secret.encode(), timestamp.encode() + b"." + raw, "sha256")
    return hmac.compare_digest(b"sha256=" + digest.hex().encode(), presented.strip().encode())


def timestamp_problem(timestamp: str, window: float, now: float) -> str | None:
    """Why ``X-Chatwoot-Timestamp`` puts a signed webhook outside the replay window, or None.

    Chatwoot signs ``"<unix seconds>.<body>"`` and enforces no window itself (chatwoot-api.md §8):
    without one, a signed webhook captured once (a proxy log, a leaked capture) could be replayed
    forever. Outside ±``window`` seconds of our clock it is refused; inside it, a replay of an agent
    message is one job (the outbound job is its de-duplication record, kept for longer than the
    window can accept the replay: ``BridgeSettings.job_retention_seconds``).
    """
    if window <= 0:
        return None
    value = timestamp.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        return "X-Chatwoot-Timestamp is missing or not a number of seconds"
    if abs(now - int(value)) > window:
        return f"X-Chatwoot-Timestamp is more than {window:g}s away from the bridge's clock"
    return None


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
        return 404, NOT_FOUND
    # Nothing in the body is looked at before the signature is verified. An inbox without a secret
    # (Chatwoot < 4.13) signs nothing: the path secret alone admits its webhooks, and their
    # timestamp (unsigned, if sent at all) proves nothing, so it is not checked either.
    secret = runtime.inbox_secret
    if secret:
        refused = _unsigned if not signature else None
        refused = refused or timestamp_problem(timestamp, bridge.settings.webhook_replay_window, time.time())
        if refused is None and not signature_ok(secret, timestamp, raw, signature):
            # Reset in Chatwoot (reset_secret)? Re-read the inbox (rate-limited) and try its secret.
            fresh_ok = await runtime.webhook_secret.verify_with_fresh(
                secret, lambda fresh: signature_ok(fresh, timestamp, raw, signature)
            )
            refused = None if fresh_ok else "bad signature"
        if refused is not None:
            log.warning("webhook refused: %s", refused, extra={"integration_id": integration_id})
            return 401, error_body(FailureKind.UNAUTHORIZED, refused)
        if runtime.webhook_secret.error:
            await runtime.webhook_secret.verified()
    elif signature:
        runtime.webhook_secret.learn_soon()  # Chatwoot signs now (upgraded to 4.13+): learn the secret
    runtime.catchup.seen()  # Chatwoot reaches the bridge: where a later catch-up sweep starts
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 400, error_body(FailureKind.INVALID_REQUEST, "body is not JSON")
    if not isinstance(payload, dict):
        return 400, error_body(FailureKind.INVALID_REQUEST, "body is not a JSON object")
    event = payload.get("event")
    if runtime.probe.watching and event == "message_created" and payload.get("private") is True:
        # A self-check is waiting for its private note's webhook (control/probe.py): verified
        # above, so it proves Chatwoot reaches this URL with the current secret.
        runtime.probe.saw(payload.get("id"))
    if event == "message_created" and payload.get("message_type") not in SENDABLE_MESSAGE_TYPES:
        # The commonest webhook by far: Chatwoot echoes every incoming message the bridge itself
        # created (about one per relayed WhatsApp message). Two fields decide it: classify() would
        # drop it, and no other handler below takes a message_created. Same answer as the full path.
        return 200, _OK
    problem = shapes.problem(payload)
    if problem is not None:
        # Signed, so from Chatwoot (or whoever holds its secret), but not a shape the bridge can
        # act on without guessing: refused, so Chatwoot marks an agent message failed.
        log.warning(
            "webhook of an unexpected shape refused",
            extra={"integration_id": integration_id, "event": str(event)[:40], "error": problem},
        )
        return 400, error_body(FailureKind.INVALID_REQUEST, f"invalid webhook: {problem}")
    # message events name their inbox as {"inbox": {"id"}}, conversation events as "inbox_id"
    inbox_id = shapes.as_dict(payload.get("inbox")).get("id", payload.get("inbox_id"))
    if inbox_id is not None and inbox_id != runtime.record.inbox_id:
        return 200, _OK  # another inbox's event (misconfigured URL): not ours to relay
    if event in _MESSAGE_EVENTS:
        conversation_id = shapes.as_int(shapes.as_dict(payload.get("conversation")).get("id"))
        if conversation_id is not None and await runtime.control.owns(conversation_id):
            # The connection conversation: never relayed to WhatsApp; an agent's message is a command.
            runtime.control.on_webhook(payload)
            return 200, _OK
    intent = classify(payload)
    if intent is not None:
        try:
            job = await bridge.repos.outbound.enqueue(
                integration_id, intent.chatwoot_message_id, intent.conversation_id, intent.kind, raw.decode()
            )
        except Exception:
            # Not stored: Chatwoot marks the message failed and never posts it again, so the
            # catch-up sweep looks for it once storage works (relay/outbound/catchup.py).
            runtime.catchup.request()
            raise
        if job is not None:
            runtime.outbound.submit(job, intent=intent)
        return 200, _OK
    status = conversation_status(payload)
    if status is not None:
        await runtime.resolver.note_status(status.conversation_id, status.status, status.updated_at)
        return 200, _OK
    typing = typing_intent(payload)
    if typing is not None:
        runtime.outbound.presence(typing)
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
            return 404, NOT_FOUND
        if scope["method"] != "POST":
            return 405, error_body(FailureKind.INVALID_REQUEST, "method not allowed: use POST")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, error_body(FailureKind.INVALID_REQUEST, "client disconnected")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                return 413, error_body(FailureKind.INVALID_REQUEST, "body too large")
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
