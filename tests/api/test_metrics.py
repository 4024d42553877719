"""RyzeAPI's /metrics and logs: counters move by the right amount after a relay over the bridge link,
a public send and failures; labels carry no ids or secrets; no log line carries a secret."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ryze.api.errors import ApiError
from ryze.api.metrics import ApiMetrics, send_failure_reason
from ryze.common.crypto import generate_key
from ryze.common.logging import JsonFormatter
from ryze.engines.base import EngineError, NotConnectedError
from ryze.engines.simulated import SimulatedEngine

from .bridge_link.fake_bridge import FakeBridge
from .bridge_link.harness import Ryze, start_ryze
from .bridge_link.test_link import CONTACT, LinkClient, deliver_texts, link
from .bridge_link.test_routes import CW_TOKEN, activate
from .harness import make_settings, start_api

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def label_values(samples: Samples) -> set[str]:
    return {v for _, labels in samples for _, v in labels}


async def scrape(client: httpx.AsyncClient) -> Samples:
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return parse(resp.text)


@pytest.fixture
async def fake_bridge() -> AsyncIterator[FakeBridge]:
    bridge = FakeBridge()
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.stop()


async def eventually_value(client: httpx.AsyncClient, name: str, expected: float) -> Samples:
    """Scrape until ``name`` reads ``expected`` (acks are pruned by a background writer)."""
    samples: Samples = {}
    for _ in range(250):
        samples = await scrape(client)
        if value(samples, name) == expected:
            return samples
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} = {value(samples, name)}, expected {expected}")


async def test_relay_send_and_failures_move_the_counters_and_no_secret_is_logged(
    sqlite_url: str, tmp_path: Path, fake_bridge: FakeBridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = generate_key()
    ryze: Ryze = await start_ryze(
        sqlite_url,
        tmp_path / "data",
        bridge_url=fake_bridge.url,
        bridge_token=fake_bridge.token,
        encryption_key=key,
    )
    try:
        async with ryze.client() as http:
            before = await scrape(http)
            assert value(before, "ryze_api_messages_total", direction="incoming", source="contact") == 0
            orion_token = (await ryze.new_instance("orion"))["instance"]["token"]
            assert (await activate(ryze, "orion")).status_code == 201
            session = await ryze.connect_phone("orion")
            vega_token = (await ryze.new_instance("vega"))["instance"]["token"]  # never connected

            async with link(ryze, "orion", fake_bridge.token) as ws:
                client = LinkClient(ws)
                ready = await client.resume(0)
                events = await client.events(ready["pending"])
                await deliver_texts(session, ["one", "two"])
                events += await client.events(2)
                during = await scrape(http)
                # Every event offered stays unacked until the bridge acks it.
                assert value(during, "ryze_api_chatwoot_events_unacked") == len(events)
                assert value(during, "ryze_api_bridge_links_connected") == 1
                for event in events:
                    await client.send({"type": "ack", "seq": event["seq"]})
                await client.send(command("cw-m-1-0", CONTACT))
                await client.send(command("cw-m-2-0", "not-a-number"))  # refused: invalid number
                results: dict[str, Any] = {}
                while len(results) < 2:  # the sent message is not offered back as an event
                    frame = await asyncio.wait_for(client.recv(), 10)
                    assert frame["type"] == "result", frame
                    results[frame["id"]] = frame
                assert results["cw-m-1-0"]["ok"] is True and results["cw-m-2-0"]["ok"] is False
                await eventually_value(http, "ryze_api_chatwoot_events_unacked", 0)

            sent = await http.post("/api/message/text/orion", json={"number": CONTACT, "message": "x"})
            assert sent.status_code == 200, sent.text
            refused = await http.post("/api/message/text/vega", json={"number": CONTACT, "message": "x"})
            assert refused.status_code == 503
            assert (await http.get("/no/such/path/orion")).status_code == 404
            # The public send's own-message event waits in the log for the (closed) link.
            after = await eventually_value(http, "ryze_api_bridge_links_connected", 0)
    finally:
        await ryze.stop()

    m = "ryze_api_messages_total"
    assert value(after, m, direction="incoming", source="contact") == 2
    assert value(after, m, direction="outgoing", source="chatwoot") == 1
    assert value(after, m, direction="outgoing", source="api") == 1
    f = "ryze_api_send_failures_total"
    assert value(after, f, source="chatwoot", reason="invalid_request") == 1
    assert value(after, f, source="api", reason="not_connected") == 1
    assert sum(v for (name, _), v in after.items() if name == f) == 2
    assert value(after, "ryze_api_chatwoot_events_unacked") == 1
    h = "ryze_api_http_requests_total"
    assert value(after, h, method="POST", route="/api/message/text/{instance}", status="200") == 1
    assert value(after, h, method="POST", route="/api/message/text/{instance}", status="503") == 1
    assert value(after, h, method="POST", route="/api/chatwoot/set/{instance}", status="201") == 1
    assert value(after, h, method="GET", route="unmatched", status="404") == 1
    assert value(after, "ryze_api_http_request_seconds_count", method="GET", route="/metrics") >= 2

    secrets = [fake_bridge.token, CW_TOKEN, orion_token, vega_token, ryze.account_token, key]
    labels = label_values(after)
    for secret in [*secrets, "orion", "vega", CONTACT]:
        assert not any(secret in label for label in labels), secret

    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any('"instance": "orion"' in line and "bridge link connected" in line for line in lines)
    for secret in secrets:
        leaked = [line for line in lines if secret in line]
        assert not leaked, leaked[:3]


def command(command_id: str, to: str) -> dict[str, Any]:
    return {"type": "command", "id": command_id, "action": "send_text", "params": {"to": to, "text": "hi"}}


async def test_metrics_of_two_apps_are_separate(tmp_path: Path) -> None:
    async for first in start_api(make_settings(tmp_path / "a")):
        async for second in start_api(make_settings(tmp_path / "b")):
            await first.client.get("/healthz")
            one, two = await scrape(first.client), await scrape(second.client)
            h = "ryze_api_http_requests_total"
            assert value(one, h, method="GET", route="/healthz", status="200") == 1
            assert value(two, h, method="GET", route="/healthz", status="200") == 0


def test_send_failure_reasons_are_a_fixed_set() -> None:
    assert send_failure_reason(NotConnectedError()) == "not_connected"
    assert send_failure_reason(EngineError("flaky", retryable=True)) == "engine_transient"
    assert send_failure_reason(EngineError("refused")) == "engine_rejected"
    assert send_failure_reason(ApiError(429, "slow down")) == "rate_limited"
    assert send_failure_reason(ApiError(413, "too big")) == "invalid_request"
    assert send_failure_reason(RuntimeError("boom")) == "internal"
    metrics = ApiMetrics()
    metrics.send_failed("a-source-nobody-declared", RuntimeError("x"))
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "ryze_api_send_failures_total", source="other", reason="internal") == 1


def test_every_metric_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text(encoding="utf-8")
    families = list(ApiMetrics().registry.collect())
    assert len(families) == 7
    for family in families:
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}`" in doc, name


async def test_threads_are_counted_at_scrape_and_the_engine_reports_its_own(tmp_path: Path) -> None:
    """``ryze_api_threads``: every OS thread, Python's, and an engine's own threads when it reports
    them (the neonize engine's FFI counts, tests/engines/neonize; a stand-in here, so this test does
    not load neonize's Go runtime into the process)."""

    class CountingEngine(SimulatedEngine):
        def __init__(self) -> None:
            super().__init__(auto_connect_seconds=None)
            self.counts = {"ffi_pool_max": 5, "ffi_pinned": 0, "ffi_abandoned": 0}

        def thread_counts(self) -> dict[str, int]:
            return dict(self.counts)

    engine = CountingEngine()
    async for api in start_api(make_settings(tmp_path), engine=engine):
        samples = await scrape(api.client)
        threads = "ryze_api_threads"
        assert value(samples, threads, kind="python") >= 1
        assert value(samples, threads, kind="os") >= value(samples, threads, kind="python")
        assert value(samples, threads, kind="ffi_pool_max") == 5
        assert value(samples, threads, kind="ffi_abandoned") == 0
        engine.counts["ffi_abandoned"] = 1  # an expired QR series left a call inside Go
        assert value(await scrape(api.client), threads, kind="ffi_abandoned") == 1


async def test_a_simulated_engine_reports_only_process_threads(tmp_path: Path) -> None:
    async for api in start_api(make_settings(tmp_path)):
        kinds = {labels[0][1] for name, labels in await scrape(api.client) if name == "ryze_api_threads"}
        assert kinds == {"python", "os"}
