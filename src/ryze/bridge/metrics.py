"""The bridge's Prometheus metrics, served at ``GET /metrics`` (documented in docs/observability.md).

One :class:`BridgeMetrics` per app, with its own ``CollectorRegistry``: tests (and the benchmark)
run many bridges in one process, and the global default registry would mix their counters and
refuse the second registration of a name.

Label values come only from small fixed sets (directions, failure reasons, HTTP methods, statuses,
path *templates*): never an integration id, a chat, a Chatwoot id or a token, so the number of
series stays bounded whatever the number of integrations.

Queue depths and link states are not tracked on the hot paths: a collector reads them from the
integrations' health objects (``ryze.bridge.health``) when Prometheus scrapes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ryze.bridge.errors import IntegrationBlocked
from ryze.bridge.health import IntegrationHealth
from ryze.bridge.link.client import LinkUnavailable
from ryze.chatwoot import (
    ChatwootError,
    ChatwootHTTPError,
    ChatwootRateLimited,
    ChatwootServerError,
    ChatwootTimeout,
    ChatwootUnreachable,
)
from ryze.protocol import IntegrationStatus

Direction = Literal["wa_to_cw", "cw_to_wa"]
DIRECTIONS: tuple[Direction, ...] = ("wa_to_cw", "cw_to_wa")

# Every value ``ryze_bridge_failures_total{reason}`` can take (docs/observability.md explains each).
REASONS = (
    "chatwoot_4xx",
    "chatwoot_429",
    "chatwoot_5xx",
    "chatwoot_invalid",
    "timeout",
    "unreachable",
    "integration_error",
    "ryzeapi_error",
    "link_down",
    "internal",
    "gave_up",
)

# The webhook receiver answers in about a millisecond when healthy: resolve that range finely.
WEBHOOK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CHATWOOT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HealthSource = Callable[[], Iterable[IntegrationHealth]]


def failure_reason(exc: BaseException) -> str:
    """The ``reason`` label for a failed relay attempt (a fixed set, whatever the exception says)."""
    if isinstance(exc, ChatwootRateLimited):
        return "chatwoot_429"
    if isinstance(exc, ChatwootServerError):
        return "chatwoot_5xx"
    if isinstance(exc, ChatwootHTTPError):
        return "chatwoot_4xx"
    if isinstance(exc, ChatwootTimeout):
        return "timeout"
    if isinstance(exc, ChatwootUnreachable):
        return "unreachable"
    if isinstance(exc, ChatwootError):
        return "chatwoot_invalid"  # a 2xx Chatwoot answer the client could not read
    if isinstance(exc, IntegrationBlocked):
        return "integration_error"
    if isinstance(exc, LinkUnavailable):
        return "link_down"
    return "internal"


def _status_label(status: int | None) -> str:
    return "none" if status is None else str(status)


class BridgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_relayed = Counter(
            "ryze_bridge_messages_relayed",
            "Messages relayed, by direction (wa_to_cw: created in Chatwoot; cw_to_wa: sent by RyzeAPI).",
            ["direction"],
            registry=r,
        )
        self.failures = Counter(
            "ryze_bridge_failures",
            "Failed relay attempts by direction and reason; gave_up counts messages abandoned for good.",
            ["direction", "reason"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "ryze_bridge_webhook_ack_seconds",
            "Time from a Chatwoot webhook's arrival to the bridge's answer (verify + persist).",
            buckets=WEBHOOK_BUCKETS,
            registry=r,
        )
        self.webhooks = Counter(
            "ryze_bridge_webhooks", "Chatwoot webhooks received, by HTTP answer.", ["status"], registry=r
        )
        self.chatwoot_seconds = Histogram(
            "ryze_bridge_chatwoot_request_seconds",
            "Chatwoot API call latency by method and path template (ids replaced by :id).",
            ["method", "endpoint"],
            buckets=CHATWOOT_BUCKETS,
            registry=r,
        )
        self.chatwoot_requests = Counter(
            "ryze_bridge_chatwoot_requests",
            "Chatwoot API calls by method, path template and HTTP status (none: no answer).",
            ["method", "endpoint", "status"],
            registry=r,
        )
        # Labelled children by label values: ``labels()`` re-validates and locks on every call, and
        # these are called once per relayed message. The label sets are small and fixed (see the
        # module docstring), so the caches stay small too.
        self._webhook_children: dict[int, Counter] = {}
        self._chatwoot_children: dict[tuple[str, str, int | None], tuple[Histogram, Counter]] = {}
        self._relayed_children = {
            direction: self.messages_relayed.labels(direction) for direction in DIRECTIONS
        }
        # Series exist at 0 from the start, so rate() and alerts work before the first event.
        for direction in DIRECTIONS:
            self.messages_relayed.labels(direction)
            for reason in REASONS:
                self.failures.labels(direction, reason)

    # -- called from the relay and the webhook receiver (one line each at the call site) -------

    def relayed(self, direction: Direction) -> None:
        self._relayed_children[direction].inc()

    def failed(self, direction: Direction, reason: str) -> None:
        self.failures.labels(direction, reason).inc()

    def webhook(self, status: int, seconds: float) -> None:
        counter = self._webhook_children.get(status)
        if counter is None:
            counter = self._webhook_children[status] = self.webhooks.labels(str(status))
        counter.inc()
        self.webhook_seconds.observe(seconds)

    def chatwoot_request(self, method: str, template: str, status: int | None, seconds: float) -> None:
        """The Chatwoot client's ``on_request`` hook (:data:`ryze.chatwoot.observe.RequestHook`)."""
        key = (method, template, status)
        children = self._chatwoot_children.get(key)
        if children is None:
            children = self._chatwoot_children[key] = (
                self.chatwoot_seconds.labels(method, template),
                self.chatwoot_requests.labels(method, template, _status_label(status)),
            )
        children[0].observe(seconds)
        children[1].inc()

    # -- scrape-time state ---------------------------------------------------------------------

    def watch(self, integrations: HealthSource) -> None:
        """Report the status, link state and queue depths of ``integrations()`` at every scrape."""
        self.registry.register(_LiveCollector(integrations))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    def __init__(self, integrations: HealthSource) -> None:
        self._integrations = integrations

    def collect(self) -> Iterator[Metric]:
        by_status = {status.value: 0 for status in IntegrationStatus}
        connected = inbound = outbound = 0
        for health in list(self._integrations()):
            status, _ = health.status()
            by_status[status.value] = by_status.get(status.value, 0) + 1
            connected += health.link_connected
            inbound += health.inbound_pending
            outbound += health.outbound_queued
        integrations = GaugeMetricFamily(
            "ryze_bridge_integrations", "Integrations by live status.", labels=["status"]
        )
        for status_value, count in sorted(by_status.items()):
            integrations.add_metric([status_value], count)
        yield integrations
        yield GaugeMetricFamily(
            "ryze_bridge_links_connected", "Integrations whose link to RyzeAPI is up.", value=connected
        )
        yield GaugeMetricFamily(
            "ryze_bridge_inbound_pending",
            "WhatsApp events received over the links and not yet acknowledged (being relayed).",
            value=inbound,
        )
        yield GaugeMetricFamily(
            "ryze_bridge_outbound_pending",
            "Agent messages (outbound jobs) queued in memory, waiting or being sent.",
            value=outbound,
        )


@functools.cache
def detached() -> BridgeMetrics:
    """Metrics nobody scrapes, for a runtime built without the app's (keeps call sites unconditional)."""
    return BridgeMetrics()
