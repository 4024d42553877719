"""The bridge's /metrics, /readyz and logs: counters move by the right amount after a relay both
ways, a Chatwoot failure and a refused command; labels carry no ids or secrets; no log line carries
a secret."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from ryze.bridge.errors import IntegrationBlocked
from ryze.bridge.link.client import LinkUnavailable
from ryze.bridge.metrics import BridgeMetrics, failure_reason
from ryze.chatwoot import (
    ChatwootRateLimited,
    ChatwootServerError,
    ChatwootTimeout,
    ChatwootUnreachable,
    ChatwootValidationError,
)
from ryze.chatwoot.observe import path_template
from ryze.common.crypto import generate_key
from ryze.common.logging import JsonFormatter
from ryze.emulator import RunningEmulator
from ryze.protocol import ResultFrame

from .conftest import ACCOUNT, ADMIN_TOKEN, RunningBridge, eventually, run_bridge
from .fake_ryzeapi import TOKEN, FakeRyzeAPI, text_message
from .helpers import conversations

CHAT = "5511999990042@s.whatsapp.net"
MESSAGES = "/api/v1/accounts/:id/conversations/:id/messages"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(bridge: RunningBridge) -> Samples:
    async with bridge.http.get(bridge.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_relay_failures_and_webhooks_move_the_metrics_and_no_secret_is_logged(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = generate_key()
    async with run_bridge(tmp_path, encryption_key=key) as bridge:
        before = await scrape(bridge)
        assert value(before, "ryze_bridge_messages_relayed_total", direction="wa_to_cw") == 0
        assert value(before, "ryze_bridge_integrations", status="active") == 0

        status, view = await bridge.activate(fake, emulator.url)
        assert status == 201, view
        await eventually(lambda: fake.connected("shop"))
        inbox = emulator.emulator.state.inboxes[view["inbox_id"]]
        path_secret = inbox.webhook_url.rsplit("/", 1)[-1]

        # WhatsApp -> Chatwoot: one clean message, then one that meets a 500 once and is retried.
        await fake.emit("shop", "message.exchange", text_message("M1", CHAT, "first"))
        await eventually(lambda: not fake.unacked("shop"))
        emulator.emulator.faults.add(method="POST", path=r".*/messages$", status=500, count=1)
        await fake.emit("shop", "message.exchange", text_message("M2", CHAT, "second"))
        await eventually(lambda: not fake.unacked("shop"))

        # Chatwoot -> WhatsApp: one reply sent, one refused for good by RyzeAPI.
        [conv] = conversations(emulator, view["inbox_id"])
        await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "sent")
        await eventually(lambda: fake.phone)
        fake.result_hook = lambda frame: ResultFrame(
            id=frame.id, ok=False, error="WhatsApp refused it", retryable=False
        )
        await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "refused")

        async def settled() -> Samples | None:
            samples = await scrape(bridge)
            done = value(samples, "ryze_bridge_failures_total", direction="cw_to_wa", reason="gave_up")
            idle = value(samples, "ryze_bridge_outbound_pending") == 0 and not fake.unacked("shop")
            return samples if done == 1 and idle else None

        after: Samples = await eventually(settled)
        integration_id = view["id"]

    relayed = "ryze_bridge_messages_relayed_total"
    assert value(after, relayed, direction="wa_to_cw") == 2
    assert value(after, relayed, direction="cw_to_wa") == 1
    failures = "ryze_bridge_failures_total"
    assert value(after, failures, direction="wa_to_cw", reason="chatwoot_5xx") == 1
    assert value(after, failures, direction="cw_to_wa", reason="ryzeapi_error") == 1
    assert value(after, failures, direction="cw_to_wa", reason="gave_up") == 1
    assert sum(v for (name, _), v in after.items() if name == failures) == 3

    assert value(after, "ryze_bridge_integrations", status="active") == 1
    assert value(after, "ryze_bridge_integrations", status="error") == 0
    assert value(after, "ryze_bridge_links_connected") == 1
    assert value(after, "ryze_bridge_inbound_pending") == 0

    # Chatwoot posts a webhook for every message of the inbox, the bridge's own included.
    webhooks = value(after, "ryze_bridge_webhook_ack_seconds_count")
    assert webhooks >= 4
    assert value(after, "ryze_bridge_webhooks_total", status="200") == webhooks
    assert ("ryze_bridge_webhook_ack_seconds_bucket", (("le", "0.001"),)) in after
    assert value(after, "ryze_bridge_chatwoot_request_seconds_count", method="POST", endpoint=MESSAGES) >= 3
    requests = "ryze_bridge_chatwoot_requests_total"
    assert value(after, requests, method="POST", endpoint=MESSAGES, status="500") == 1
    assert value(after, requests, method="POST", endpoint=MESSAGES, status="200") >= 2
    inboxes = "/api/v1/accounts/:id/inboxes"
    assert value(after, "ryze_bridge_chatwoot_request_seconds_count", method="POST", endpoint=inboxes) == 1

    secrets = [TOKEN, ADMIN_TOKEN, path_secret, inbox.secret, key]
    labels = {v for _, pairs in after for _, v in pairs}
    for forbidden in [*secrets, integration_id, "shop", CHAT]:
        assert not any(forbidden in label for label in labels), forbidden
    for label in labels:  # path templates: every id replaced
        assert not any(part.isdigit() for part in label.split("/")[1:]), label

    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    relay_lines = [line for line in lines if '"logger": "ryze.bridge.relay' in line]
    assert relay_lines and all(f'"integration_id": "{integration_id}"' in line for line in relay_lines)
    for secret in secrets:
        leaked = [line for line in lines if secret in line]
        assert not leaked, leaked[:3]


async def test_readyz_checks_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with run_bridge(tmp_path) as bridge:
        status, body = await bridge.call("GET", "/readyz", token=None)
        assert (status, body["ok"]) == (200, True)

        @contextlib.asynccontextmanager
        async def broken() -> AsyncIterator[None]:
            raise OperationalError("SELECT 1", {}, Exception("database is gone"))
            yield  # pragma: no cover

        monkeypatch.setattr(bridge.services.db, "connect", broken)
        status, body = await bridge.call("GET", "/readyz", token=None)
        assert status == 503 and body == {"ok": False, "error": "database unavailable"}
        status, _ = await bridge.call("GET", "/healthz", token=None)
        assert status == 200  # liveness does not depend on the database


def test_failure_reasons_and_path_templates() -> None:
    endpoint = "POST /x"
    assert failure_reason(ChatwootRateLimited(429, "", endpoint=endpoint, retry_after=1)) == "chatwoot_429"
    assert failure_reason(ChatwootServerError(502, "", endpoint=endpoint)) == "chatwoot_5xx"
    assert failure_reason(ChatwootValidationError(422, "", endpoint=endpoint)) == "chatwoot_4xx"
    assert failure_reason(ChatwootTimeout("late", endpoint=endpoint)) == "timeout"
    assert failure_reason(ChatwootUnreachable("down", endpoint=endpoint)) == "unreachable"
    assert failure_reason(IntegrationBlocked("token revoked")) == "integration_error"
    assert failure_reason(LinkUnavailable("link down")) == "link_down"
    assert failure_reason(KeyError("bug")) == "internal"
    assert path_template("/api/v1/accounts/5/conversations/12/messages/99") == (
        "/api/v1/accounts/:id/conversations/:id/messages/:id"
    )
    assert path_template("/api/v1/accounts/5/contacts/filter") == "/api/v1/accounts/:id/contacts/filter"


def test_every_metric_is_documented() -> None:
    metrics = BridgeMetrics()
    metrics.watch(list)  # no runtimes: the live gauges still report
    doc = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text(encoding="utf-8")
    families = list(metrics.registry.collect())
    assert len(families) == 10
    for family in families:
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}`" in doc, name
