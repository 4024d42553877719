"""The webhook receiver as an ASGI handler, with stub services: the signature is checked before the
body is trusted, the bridge's own incoming echoes are dropped without touching the store, and the
answer codes stay as they were. (tests/bridge/test_webhook.py covers the same route end to end.)"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from ryze.bridge.api.webhook import MAX_BODY, PREFIX, WebhookMiddleware, signature_ok
from ryze.bridge.control.probe import WebhookProbe
from ryze.bridge.metrics import BridgeMetrics
from ryze.bridge.provisioning import hash_path_secret
from ryze.bridge.settings import BridgeSettings

INTEGRATION = "int-1"
PATH_SECRET = "p" * 43
SECRET = "inbox-signing-secret"
INBOX = 7
URL = f"{PREFIX}{INTEGRATION}/{PATH_SECRET}"


@dataclass
class Calls:
    enqueued: list[tuple[Any, ...]] = field(default_factory=list)
    statuses: list[tuple[int, str]] = field(default_factory=list)
    presence: list[tuple[Any, str]] = field(default_factory=list)
    rechecks: int = 0
    learn: list[int] = field(default_factory=list)
    seen: list[int] = field(default_factory=list, compare=False)  # catch-up: verified webhooks noted
    requested: list[int] = field(default_factory=list)  # catch-up: sweeps asked for


class Services:
    """Just what the receiver reaches: manager.get, repos.outbound.enqueue, runtime parts, metrics."""

    def __init__(self, secret: str = SECRET) -> None:
        self.calls = Calls()
        calls = self.calls

        async def enqueue(*args: Any) -> Any:
            calls.enqueued.append(args)
            return SimpleNamespace(id=len(calls.enqueued))

        async def note_status(conversation_id: int, status: str, updated_at: float | None = None) -> None:
            calls.statuses.append((conversation_id, status))

        async def no_fresh_secret(tried: str, verify: Any) -> bool:
            calls.rechecks += 1
            return False

        async def not_the_connection_conversation(conversation_id: int) -> bool:
            return False

        self.runtime = SimpleNamespace(
            record=SimpleNamespace(path_secret_hash=hash_path_secret(PATH_SECRET), inbox_id=INBOX),
            control=SimpleNamespace(owns=not_the_connection_conversation),
            inbox_secret=secret,
            outbound=SimpleNamespace(
                submit=lambda job, intent=None: None,
                presence=lambda typing: calls.presence.append((typing.chat, typing.state)),
            ),
            resolver=SimpleNamespace(note_status=note_status),
            webhook_secret=SimpleNamespace(
                error="", verify_with_fresh=no_fresh_secret, learn_soon=lambda: calls.learn.append(1)
            ),
            probe=WebhookProbe(),
            catchup=SimpleNamespace(
                seen=lambda: calls.seen.append(1), request=lambda: calls.requested.append(1)
            ),
        )
        self.settings = BridgeSettings()
        self.manager = SimpleNamespace(get=lambda i: self.runtime if i == INTEGRATION else None)
        self.repos = SimpleNamespace(outbound=SimpleNamespace(enqueue=enqueue))
        self.metrics = BridgeMetrics()


def now() -> str:
    return str(int(time.time()))


def sign(raw: bytes, ts: str | None = None, secret: str = SECRET) -> str:
    ts = now() if ts is None else ts
    return "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()


async def post(
    services: Services,
    raw: bytes,
    *,
    path: str = URL,
    method: str = "POST",
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: int = 1,
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the webhook route must not reach the FastAPI app")

    step = max(1, -(-len(raw) // chunks))
    parts = [raw[i : i + step] for i in range(0, len(raw), step)] or [b""]
    last = len(parts) - 1
    messages = [{"type": "http.request", "body": part, "more_body": n < last} for n, part in enumerate(parts)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    if headers is None:
        ts = now()
        headers = [(b"x-chatwoot-timestamp", ts.encode()), (b"x-chatwoot-signature", sign(raw, ts).encode())]
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "app": SimpleNamespace(state=SimpleNamespace(bridge=services)),
    }
    await WebhookMiddleware(downstream)(scope, receive, send)
    start, body = sent
    assert body["type"] == "http.response.body"
    return start["status"], body["body"], start["headers"]


def incoming(**extra: Any) -> bytes:
    payload: dict[str, Any] = {
        "event": "message_created",
        "id": 900,
        "message_type": "incoming",
        "private": False,
        "source_id": "WAID:ABC",
        "inbox": {"id": INBOX},
        "conversation": {"id": 3, "contact_inbox": {"source_id": "5511@s.whatsapp.net"}},
    }
    payload.update(extra)
    return orjson.dumps(payload)


def test_signature_ok_matches_chatwoots_scheme() -> None:
    raw = b'{"event":"message_created"}'
    good = sign(raw, "123")
    assert signature_ok(SECRET, "123", raw, good)
    assert signature_ok(SECRET, "123", raw, f"  {good}\t")  # surrounding whitespace was always tolerated
    assert not signature_ok(SECRET, "124", raw, good)  # the timestamp is signed
    assert not signature_ok(SECRET, "123", raw + b" ", good)
    assert not signature_ok("other", "123", raw, good)
    assert not signature_ok(SECRET, "123", raw, good.upper())


async def test_own_incoming_echo_is_dropped_without_touching_the_store() -> None:
    services = Services()
    status, body, headers = await post(services, incoming())
    assert (status, body) == (200, b'{"ok":true}')
    assert headers == [(b"content-type", b"application/json"), (b"content-length", b"11")]
    assert services.calls == Calls()


async def test_a_message_type_of_the_wrong_shape_is_dropped_not_a_500() -> None:
    services = Services()
    for odd in (["outgoing"], {"type": "outgoing"}, None, 1):
        assert (await post(services, incoming(message_type=odd)))[0] == 200
    assert services.calls == Calls()


async def test_the_drop_needs_a_valid_signature_first() -> None:
    services = Services()
    raw = incoming()
    ts = now()
    forged = sign(raw, ts, secret="x").encode()
    bad = [(b"x-chatwoot-timestamp", ts.encode()), (b"x-chatwoot-signature", forged)]
    assert (await post(services, raw, headers=bad))[0] == 401
    assert (await post(services, raw, headers=[(b"x-chatwoot-timestamp", b"1")]))[0] == 401
    assert (await post(services, b"not json", headers=bad))[0] == 401  # nothing parsed before the check
    assert (await post(services, raw, path=f"{PREFIX}{INTEGRATION}/wrong"))[0] == 404
    assert (await post(services, raw, path=f"{PREFIX}nobody/{PATH_SECRET}"))[0] == 404
    # the two wrong signatures each asked whether the inbox secret was reset; nothing else happened
    assert services.calls == Calls(rechecks=2)


async def test_header_names_in_any_case_and_bodies_in_chunks_are_read() -> None:
    services = Services()
    raw = incoming(message_type="outgoing", source_id=None)
    headers = [
        (b"Content-Type", b"application/json"),
        (b"X-Chatwoot-Timestamp", now().encode()),
        (b"X-Chatwoot-Signature", sign(raw).encode()),
    ]
    assert (await post(services, raw, headers=headers, chunks=4))[0] == 200
    assert [args[:4] for args in services.calls.enqueued] == [(INTEGRATION, 900, 3, "send")]
    assert services.calls.enqueued[0][4] == raw.decode()


@pytest.mark.parametrize(
    ("extra", "enqueued"),
    [
        ({"message_type": "outgoing", "source_id": None}, True),
        ({"message_type": "template", "source_id": None}, True),
        ({"message_type": "outgoing", "source_id": "WAID:OWN"}, False),  # the bridge's own mirror
        ({"message_type": "outgoing", "source_id": None, "private": True}, False),
        ({"message_type": "outgoing", "source_id": None, "inbox": {"id": INBOX + 1}}, False),
        ({"message_type": "activity"}, False),
        ({"message_type": None}, False),
        ({"message_type": "incoming", "inbox": {"id": INBOX + 1}}, False),
    ],
)
async def test_message_created_is_forwarded_only_when_the_filters_say_so(
    extra: dict[str, Any], enqueued: bool
) -> None:
    services = Services()
    assert (await post(services, incoming(**extra)))[0] == 200
    assert bool(services.calls.enqueued) is enqueued


async def test_other_events_still_reach_their_handlers() -> None:
    services = Services()
    deleted = incoming(
        event="message_updated", message_type="outgoing", content_attributes={"deleted": True}, source_id=None
    )
    assert (await post(services, deleted))[0] == 200
    assert [args[3] for args in services.calls.enqueued] == ["revoke"]
    status_changed = orjson.dumps({"event": "conversation_status_changed", "id": 3, "status": "resolved"})
    assert (await post(services, status_changed))[0] == 200
    assert services.calls.statuses == [(3, "resolved")]


def error(kind: str, message: str) -> bytes:
    return orjson.dumps({"error": {"kind": kind, "message": message, "detail": ""}})


async def test_answer_codes_are_unchanged_and_errors_are_the_bridge_error_body() -> None:
    services = Services()
    assert (await post(services, b"[1]"))[0:2] == (400, error("invalid_request", "body is not a JSON object"))
    assert (await post(services, b"{nope"))[0:2] == (400, error("invalid_request", "body is not JSON"))
    assert (await post(services, incoming(), method="GET"))[0:2] == (
        405,
        error("invalid_request", "method not allowed: use POST"),
    )
    assert (await post(services, incoming(), path=f"{PREFIX}{INTEGRATION}"))[0:2] == (
        404,
        error("not_found", "not found"),
    )
    assert (await post(services, b" " * (MAX_BODY + 1), chunks=2))[0:2] == (
        413,
        error("invalid_request", "body too large"),
    )
    assert (await post(services, incoming(), headers=[]))[0:2] == (
        401,
        error("unauthorized", "X-Chatwoot-Signature missing (the inbox has a signing secret)"),
    )
    unsigned = Services(secret="")  # an inbox without a secret (Chatwoot < 4.13): nothing to verify
    assert (await post(unsigned, incoming(), headers=[]))[0] == 200


async def test_the_metrics_count_every_answer_by_status() -> None:
    services = Services()
    for _ in range(3):
        await post(services, incoming())
    await post(services, incoming(), headers=[])
    registry: CollectorRegistry = services.metrics.registry
    assert registry.get_sample_value("ryze_bridge_webhooks_total", {"status": "200"}) == 3
    assert registry.get_sample_value("ryze_bridge_webhooks_total", {"status": "401"}) == 1
    assert registry.get_sample_value("ryze_bridge_webhook_ack_seconds_count") == 4


async def test_a_verified_private_note_reaches_the_self_checks_probe_while_it_watches() -> None:
    services = Services()
    probe: WebhookProbe = services.runtime.probe
    note = orjson.dumps(
        {
            "event": "message_created",
            "id": 41,
            "message_type": "outgoing",
            "private": True,
            "content": "self-check",
            "conversation": {"id": 3, "contact_inbox": {"source_id": "x"}},
            "inbox": {"id": INBOX},
        }
    )
    with probe.watch() as watch:
        bad = [(b"x-chatwoot-timestamp", now().encode()), (b"x-chatwoot-signature", b"sha256=00")]
        assert (await post(services, note, headers=bad))[0] == 401
        assert not await watch.wait_for(41, timeout=0.01)  # unverified: proves nothing
        status, _, _ = await post(services, note)
        assert status == 200
        assert await watch.wait_for(41, timeout=0.01)
    assert services.calls.enqueued == []  # a private note is no job: never sent to WhatsApp


async def test_a_webhook_that_could_not_be_stored_asks_for_a_catch_up_sweep() -> None:
    """Chatwoot marks the agent's message failed on the error answer and never posts it again:
    the catch-up sweep is asked to find it once storage works (relay/outbound/catchup.py)."""
    services = Services()

    async def storage_down(*args: Any) -> Any:
        raise RuntimeError("disk I/O error")

    services.repos.outbound.enqueue = storage_down
    agent = incoming(id=901, message_type="outgoing", source_id=None)
    with pytest.raises(RuntimeError):
        await post(services, agent)
    assert services.calls.requested == [1]
    assert services.calls.seen == [1]  # Chatwoot reached the bridge, verified
    forged = [(b"x-chatwoot-timestamp", now().encode()), (b"x-chatwoot-signature", b"sha256=00")]
    assert (await post(services, agent, headers=forged))[0] == 401
    assert services.calls.seen == [1]  # a refused webhook is not Chatwoot's word
