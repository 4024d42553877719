"""BridgeMetrics keeps its labelled children after first use: the counts must still land on the
series of their own labels (status apart, ``none`` for no answer, histograms per endpoint)."""

from __future__ import annotations

from ryze.bridge.metrics import BridgeMetrics

MESSAGES = "/api/v1/accounts/:id/conversations/:id/messages"
CONTACTS = "/api/v1/accounts/:id/contacts"


def test_chatwoot_requests_are_counted_per_method_template_and_status() -> None:
    m = BridgeMetrics()
    for status in (200, 200, 404, None):
        m.chatwoot_request("POST", MESSAGES, status, 0.003)
    m.chatwoot_request("POST", CONTACTS, 200, 0.2)
    m.chatwoot_request("GET", MESSAGES, 200, 0.02)
    sample = m.registry.get_sample_value

    def requests(method: str, endpoint: str, status: str) -> float | None:
        labels = {"method": method, "endpoint": endpoint, "status": status}
        return sample("ryze_bridge_chatwoot_requests_total", labels)

    assert requests("POST", MESSAGES, "200") == 2
    assert requests("POST", MESSAGES, "404") == 1
    assert requests("POST", MESSAGES, "none") == 1
    assert requests("POST", CONTACTS, "200") == 1
    assert requests("GET", MESSAGES, "200") == 1
    seconds = "ryze_bridge_chatwoot_request_seconds"
    assert sample(f"{seconds}_count", {"method": "POST", "endpoint": MESSAGES}) == 4
    assert sample(f"{seconds}_count", {"method": "POST", "endpoint": CONTACTS}) == 1
    assert sample(f"{seconds}_bucket", {"method": "POST", "endpoint": CONTACTS, "le": "0.1"}) == 0
    assert sample(f"{seconds}_bucket", {"method": "POST", "endpoint": MESSAGES, "le": "0.005"}) == 4


def test_relayed_and_webhooks_count_per_label() -> None:
    m = BridgeMetrics()
    m.relayed("wa_to_cw")
    m.relayed("wa_to_cw")
    m.relayed("cw_to_wa")
    for status in (200, 200, 401):
        m.webhook(status, 0.001)
    sample = m.registry.get_sample_value
    assert sample("ryze_bridge_messages_relayed_total", {"direction": "wa_to_cw"}) == 2
    assert sample("ryze_bridge_messages_relayed_total", {"direction": "cw_to_wa"}) == 1
    assert sample("ryze_bridge_webhooks_total", {"status": "200"}) == 2
    assert sample("ryze_bridge_webhooks_total", {"status": "401"}) == 1
    assert sample("ryze_bridge_webhook_ack_seconds_count") == 3
