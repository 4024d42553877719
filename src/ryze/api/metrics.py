"""RyzeAPI's Prometheus metrics, served at ``GET /metrics`` (documented in docs/observability.md).

One :class:`ApiMetrics` per app (``services.metrics``), with its own ``CollectorRegistry``: tests
build many apps in one process, and the global default registry would mix their counters and
refuse the second registration of a name.

Label values come only from small fixed sets (directions, sources, failure reasons, HTTP methods,
route *templates*, statuses): never an instance name, a number, a message id or a token.

Values that live in the database (unacked events of the Chatwoot event log) are read once per
scrape by the hooks registered with :meth:`ApiMetrics.on_scrape`, never on the message path.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ryze.api.errors import ApiError
from ryze.engines.base import EngineError, NotConnectedError, UnsupportedError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
ScrapeHook = Callable[[], Awaitable[None]]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DIRECTIONS = ("incoming", "outgoing")
SOURCES = ("contact", "phone", "api", "chatwoot")
SEND_SOURCES = ("api", "chatwoot")
# Every value ``ryze_api_send_failures_total{reason}`` can take (docs/observability.md explains each).
SEND_REASONS = (
    "not_connected",
    "invalid_request",
    "not_found",
    "rate_limited",
    "unsupported",
    "engine_transient",
    "engine_rejected",
    "server_error",
    "internal",
)
UNMATCHED = "unmatched"  # a path no route serves: one series for every unknown URL
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def send_failure_reason(exc: BaseException) -> str:
    """The ``reason`` label for a failed send (a fixed set, whatever the message says)."""
    if isinstance(exc, NotConnectedError):
        return "not_connected"
    if isinstance(exc, UnsupportedError):
        return "unsupported"
    if isinstance(exc, EngineError):
        return "engine_transient" if exc.retryable else "engine_rejected"
    if isinstance(exc, ApiError):
        if exc.status == 503:
            return "not_connected"
        if exc.status == 404:
            return "not_found"
        if exc.status == 429:
            return "rate_limited"
        if exc.status == 501:
            return "unsupported"
        return "server_error" if exc.status >= 500 else "invalid_request"
    return "internal"


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "ryze_api_messages",
            "Messages stored for the first time, by direction and source "
            "(contact: from the other party; phone, api, chatwoot: who sent our own).",
            ["direction", "source"],
            registry=r,
        )
        self.send_failures = Counter(
            "ryze_api_send_failures",
            "Failed sends (public API and bridge commands) by source and reason.",
            ["source", "reason"],
            registry=r,
        )
        self.http_requests = Counter(
            "ryze_api_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "ryze_api_http_request_seconds",
            "HTTP request handling time by method and route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.events_unacked = Gauge(
            "ryze_api_chatwoot_events_unacked",
            "Events in the Chatwoot event log not yet acknowledged by the bridge (read at scrape).",
            registry=r,
        )
        self.links_connected = Gauge(
            "ryze_api_bridge_links_connected",
            "Instances whose bridge link (WebSocket) is connected (read at scrape).",
            registry=r,
        )
        self.threads = Gauge(
            "ryze_api_threads",
            "Threads of the process (read at scrape): os (every OS thread, Go's included), python "
            "(threads Python knows), and the engine's own (neonize: ffi_pool_max, ffi_pinned, "
            "ffi_abandoned).",
            ["kind"],
            registry=r,
        )
        self._scrape_hooks: list[ScrapeHook] = []
        # Series exist at 0 from the start, so rate() and alerts work before the first event.
        for direction in DIRECTIONS:
            for source in SOURCES:
                self.messages.labels(direction, source)
        for source in SEND_SOURCES:
            for reason in SEND_REASONS:
                self.send_failures.labels(source, reason)

    def message(self, from_me: bool, source: str) -> None:
        self.messages.labels("outgoing" if from_me else "incoming", source).inc()

    def send_failed(self, source: str, exc: BaseException) -> None:
        label = source if source in SEND_SOURCES else "other"
        self.send_failures.labels(label, send_failure_reason(exc)).inc()

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(method, route).observe(seconds)

    def watch_threads(self, engine_counts: Callable[[], dict[str, int]] | None) -> None:
        """Set ``ryze_api_threads`` at every scrape (``engine_counts``: the engine's own threads)."""

        async def scrape() -> None:
            counts = {"python": threading.active_count()}
            os_threads = _os_thread_count()
            if os_threads is not None:
                counts["os"] = os_threads
            if engine_counts is not None:
                counts.update(engine_counts())
            for kind, value in counts.items():
                self.threads.labels(kind).set(value)

        self.on_scrape(scrape)

    def on_scrape(self, hook: ScrapeHook) -> None:
        """Run ``hook`` before each exposition (it sets gauges from state that needs awaiting)."""
        self._scrape_hooks.append(hook)

    async def exposition(self) -> bytes:
        for hook in self._scrape_hooks:
            try:
                await hook()
            except Exception:
                # A scrape must still answer when the database hiccups: keep the last values.
                log.warning("metrics scrape hook failed", exc_info=True)
        return generate_latest(self.registry)


def _os_thread_count() -> int | None:
    """Every OS thread of the process (Linux ``/proc``): Go's threads inside neonize included,
    which ``threading`` does not see. None where ``/proc`` is unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class _HasMetrics(Protocol):
    metrics: ApiMetrics | None


S = TypeVar("S", bound=_HasMetrics)


def counts_send_failures(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Count a send method's failures by reason; the ``source`` keyword (default api) labels them."""

    @functools.wraps(method)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(self, *args, **kwargs)
        except Exception as exc:
            if self.metrics is not None:
                self.metrics.send_failed(str(kwargs.get("source", "api")), exc)
            raise

    return wrapper


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Answered before routing (rate limit, body limit): find the route the request was meant for,
    # so the series stays a template. Only these rare responses pay for the lookup.
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            found = getattr(candidate, "path", None)
            return found if isinstance(found, str) else UNMATCHED
    return UNMATCHED


class MetricsMiddleware:
    """Counts every HTTP request by route template and status (WebSockets are not requests)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception escaping the app is answered 500 by Starlette's outer layer

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.request(
                scope["method"], _route_template(scope), status, time.perf_counter() - started
            )
