"""Correctly signed webhooks of odd shapes, and the replay window, at the receiver (stub services).

A signed body is from Chatwoot or from whoever holds the inbox secret; either way a field of the
wrong JSON type must neither crash the receiver (500) nor be misread (``"id": true`` is not
message 1): it is refused with 400 and logged, and nothing is queued. Signed webhooks outside
``webhook_replay_window`` of ``X-Chatwoot-Timestamp`` are refused (401).
"""

from __future__ import annotations

import copy
import logging
import random
import time
from typing import Any

import orjson
import pytest

from ryze.bridge.relay.outbound.filters import SENDABLE_MESSAGE_TYPES
from ryze.bridge.relay.outbound.shapes import problem
from ryze.bridge.settings import BridgeSettings

from .test_webhook_receiver import INBOX, Calls, Services, post, sign


def agent_message(**extra: Any) -> dict[str, Any]:
    """An agent's reply as ``Message#webhook_data`` carries it (chatwoot-api.md §8)."""
    payload: dict[str, Any] = {
        "event": "message_created",
        "id": 900,
        "content": "hello",
        "message_type": "outgoing",
        "private": False,
        "source_id": None,
        "content_attributes": {},
        "sender": {"id": 1, "name": "Ana", "type": "user"},
        "inbox": {"id": INBOX},
        "attachments": [{"id": 1, "file_type": "image", "data_url": "http://127.0.0.1/a.png"}],
        "conversation": {
            "id": 3,
            "contact_inbox": {"source_id": "5511@s.whatsapp.net"},
            "meta": {"sender": {"identifier": "5511@s.whatsapp.net", "phone_number": "+5511"}},
        },
    }
    payload.update(extra)
    return payload


def status_event(**extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event": "conversation_status_changed",
        "id": 3,
        "status": "resolved",
        "updated_at": 1781699696.123,
    }
    payload.update(extra)
    return payload


def typing_event(**extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event": "conversation_typing_on",
        "is_private": False,
        "conversation": {"id": 3, "contact_inbox": {"source_id": "5511@s.whatsapp.net"}},
    }
    payload.update(extra)
    return payload


def _set(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    node = changed
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return changed


ODD = [
    ("conversation", 5),
    ("conversation", "x"),
    ("conversation", []),
    ("conversation.id", True),
    ("conversation.id", "3"),
    ("conversation.id", 3.0),
    ("conversation.contact_inbox", "x"),
    ("conversation.contact_inbox", []),
    ("conversation.contact_inbox.source_id", 5511),
    ("conversation.meta", []),
    ("conversation.meta", "x"),
    ("conversation.meta.sender", []),
    ("conversation.meta.sender.identifier", {"jid": "x"}),
    ("conversation.meta.sender.phone_number", 5511),
    ("id", True),
    ("id", False),
    ("id", "900"),
    ("id", None),
    ("id", 900.5),
    ("private", "false"),
    ("private", 0),
    ("source_id", 7),
    ("content", {"text": "hi"}),
    ("content", ["hi"]),
    ("content", 5),
    ("content_attributes", "x"),
    ("content_attributes", [1]),
    ("content_attributes.deleted", "no"),
    ("attachments", "abc"),
    ("attachments", 5),
    ("attachments", {"data_url": "x"}),
    ("attachments.0", "http://127.0.0.1/a.png"),
    ("attachments.0.data_url", 5),
    ("attachments.0.file_type", ["image"]),
    ("attachments.0.content_type", 5),
    ("attachments.0.meta", "voice"),
    ("sender", "Ana"),
    ("inbox", 7),
    ("inbox.id", True),
    ("inbox.id", "7"),
]


@pytest.mark.parametrize(("path", "value"), ODD, ids=[f"{p}={v!r}" for p, v in ODD])
async def test_an_agent_message_of_an_odd_shape_is_refused_and_logged(
    path: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    services = Services()
    raw = orjson.dumps(_set(agent_message(), path, value))
    with caplog.at_level(logging.WARNING, logger="ryze.bridge.api.webhook"):
        status, body, _ = await post(services, raw)
    assert status == 400
    error = orjson.loads(body)["error"]
    assert error["kind"] == "invalid_request" and error["message"].startswith("invalid webhook: ")
    assert services.calls == Calls()  # nothing queued, nothing sent
    assert any("unexpected shape" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "payload",
    [
        status_event(id=True),
        status_event(id="3"),
        status_event(status=5),
        status_event(status="x" * 40),  # would overflow the 16-character column on PostgreSQL
        status_event(updated_at="yesterday"),
        status_event(updated_at=True),
        typing_event(conversation=5),
        typing_event(conversation={"contact_inbox": "x"}),
        typing_event(conversation={"meta": []}),
        typing_event(conversation={"meta": {"sender": "x"}}),
        typing_event(is_private="no"),
        {"event": 5},
        {"event": None, "id": 1},
    ],
)
async def test_other_events_of_an_odd_shape_are_refused(payload: dict[str, Any]) -> None:
    services = Services()
    status, body, _ = await post(services, orjson.dumps(payload))
    assert status == 400 and orjson.loads(body)["error"]["kind"] == "invalid_request"
    assert services.calls == Calls()


async def test_the_well_formed_originals_are_acted_on() -> None:
    services = Services()
    assert (await post(services, orjson.dumps(agent_message())))[0] == 200
    assert (await post(services, orjson.dumps(status_event())))[0] == 200
    assert (await post(services, orjson.dumps(typing_event())))[0] == 200
    assert [args[1:4] for args in services.calls.enqueued] == [(900, 3, "send")]
    assert services.calls.statuses == [(3, "resolved")]
    assert services.calls.presence == [("5511@s.whatsapp.net", "composing")]
    # Chatwoot may send null for optional parts, and an unknown event is acknowledged and ignored
    nulls = agent_message(id=901, attachments=None, content_attributes=None, sender=None, inbox=None)
    nulls["conversation"]["meta"] = None
    assert (await post(services, orjson.dumps(nulls)))[0] == 200
    assert (await post(services, orjson.dumps({"event": "webwidget_triggered", "id": "x"})))[0] == 200
    assert [args[1] for args in services.calls.enqueued] == [900, 901]
    # another inbox's conversation event (a webhook URL copied to a second inbox) changes nothing
    assert (await post(services, orjson.dumps(status_event(inbox_id=INBOX + 1, status="open"))))[0] == 200
    assert services.calls.statuses == [(3, "resolved")]


def _json_values(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["null", "true", "false", "int", "float", "str", "list", "dict"] if depth < 2 else ["int", "str"]
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind in ("true", "false"):
        return kind == "true"
    if kind == "int":
        return rng.choice([0, 1, -1, 3, 900, 2**63, -(2**63)])
    if kind == "float":
        return rng.choice([0.0, 1.5, -3.25, 1e308])
    if kind == "str":
        return rng.choice(["", "x", "3", "900", "WAID:1", "a\u0000b", "\u202e", "5511@s.whatsapp.net"])
    if kind == "list":
        return [_json_values(rng, depth + 1) for _ in range(rng.randint(0, 2))]
    return {rng.choice(["id", "source_id", "meta", "x"]): _json_values(rng, depth + 1) for _ in range(2)}


def _paths(node: Any, prefix: str = "") -> list[str]:
    found: list[str] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        found.append(path)
        found += _paths(child, path)
    return found


async def test_property_no_replacement_anywhere_crashes_or_is_misread() -> None:
    """Seeded and bounded (400 bodies): any field of an agent message, a status change or a typing
    event replaced by any JSON value gets 200 or 400, never a crash, and what gets queued carries
    the integer ids that were sent — never a boolean or a string taken for one."""
    rng = random.Random(20260417)
    services = Services()
    originals = [agent_message(), status_event(), typing_event()]
    for n in range(400):
        original = originals[n % 3]
        paths = [p for p in _paths(original) if p != "event"]
        mutated = original
        for path in rng.sample(paths, k=rng.randint(1, 2)):
            try:
                mutated = _set(mutated, path, _json_values(rng))
            except (KeyError, IndexError, TypeError, ValueError):
                continue  # a parent was replaced by the first mutation
        before = len(services.calls.enqueued)
        status, body, _ = await post(services, orjson.dumps(mutated))
        assert status in (200, 400), (mutated, status, body)
        echo = (
            mutated["event"] == "message_created"
            and mutated.get("message_type") not in SENDABLE_MESSAGE_TYPES
        )
        assert (status == 400) == (problem(mutated) is not None and not echo)  # an echo is just dropped
        for _, message_id, conversation_id, *_rest in services.calls.enqueued[before:]:
            assert type(message_id) is int and message_id == mutated["id"]
            assert type(conversation_id) is int and conversation_id == mutated["conversation"]["id"]
        for conversation_id, state in services.calls.statuses:
            assert type(conversation_id) is int and state in ("open", "resolved", "pending", "snoozed")


# ------------------------------------------------------------------ replay window


def _signed(raw: bytes, ts: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-chatwoot-timestamp", ts.encode()), (b"x-chatwoot-signature", sign(raw, ts).encode())]


@pytest.mark.parametrize(
    "ts",
    ["0", "garbage", "", " ", "-5", "1e9", str(int(time.time()) - 365 * 86400), "9" * 40, "１２３"],
)
async def test_a_signed_webhook_outside_the_window_is_refused(ts: str) -> None:
    services = Services()
    raw = orjson.dumps(agent_message())
    status, body, _ = await post(services, raw, headers=_signed(raw, ts))
    assert status == 401 and orjson.loads(body)["error"]["kind"] == "unauthorized"
    assert "X-Chatwoot-Timestamp" in orjson.loads(body)["error"]["message"]
    assert services.calls == Calls()  # refused before the signature: no secret re-read either


async def test_the_window_is_five_minutes_either_way_by_default_and_configurable() -> None:
    services = Services()
    raw = orjson.dumps(agent_message())
    t = int(time.time())
    assert (await post(services, raw, headers=_signed(raw, str(t - 240))))[0] == 200
    assert (await post(services, raw, headers=_signed(raw, str(t + 240))))[0] == 200
    assert (await post(services, raw, headers=_signed(raw, str(t - 400))))[0] == 401
    assert (await post(services, raw, headers=_signed(raw, str(t + 400))))[0] == 401
    services.settings = BridgeSettings(webhook_replay_window=60)
    assert (await post(services, raw, headers=_signed(raw, str(t - 120))))[0] == 401
    services.settings = BridgeSettings(webhook_replay_window=0)  # 0: no window
    assert (await post(services, raw, headers=_signed(raw, "0")))[0] == 200


async def test_an_unsigned_inbox_has_no_timestamp_to_check() -> None:
    unsigned = Services(secret="")  # Chatwoot < 4.13: the path secret alone admits the webhook
    raw = orjson.dumps(agent_message())
    assert (await post(unsigned, raw, headers=[(b"x-chatwoot-timestamp", b"0")]))[0] == 200
    assert (await post(unsigned, raw, headers=[]))[0] == 200
    assert unsigned.calls.learn == []
    # a signed one means Chatwoot now has a secret for this inbox (4.13+): learn it, and still admit
    assert (await post(unsigned, raw))[0] == 200
    assert unsigned.calls.learn == [1]


def test_the_dedup_record_outlives_every_replay_the_window_accepts() -> None:
    """A webhook signed at t is accepted until t + window, and the original may itself have come
    at t + window: finished jobs (the de-duplication record) are kept at least 2 × window."""
    assert BridgeSettings().job_retention_seconds == 7 * 86400
    tight = BridgeSettings(job_retention_days=0.0001, webhook_replay_window=300)
    assert tight.job_retention_seconds >= 2 * 300
    wide = BridgeSettings(job_retention_days=0.001, webhook_replay_window=86400)
    assert wide.job_retention_seconds >= 2 * 86400
