"""Fault injection, changeable at run time: latency, 5xx, 429, connection resets and hangs,
per endpoint (method + path regex), with a firing rate and an optional count limit.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from itertools import count
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import json_response

_ids = count(1)

# Bodies a client would see from Rails / Rack::Attack / a proxy in front of Chatwoot.
_BODIES: dict[int, tuple[bytes, str]] = {
    429: (b"Retry later\n", "text/plain"),  # Rack::Attack's default throttled response
}


@dataclass
class FaultRule:
    method: str | None = None
    path: str = ".*"
    status: int | None = None
    rate: float = 1.0
    count: int | None = None
    latency: float = 0.0
    latency_max: float | None = None  # random latency in [latency, latency_max] when set
    reset: bool = False
    hang: bool = False
    hang_seconds: float = 300.0
    # None: no Retry-After header. Rack::Attack's default throttled responder (Chatwoot's
    # config/initializers/rack_attack.rb sets none of its own) answers 429 "Retry later" without one.
    retry_after: int | None = None
    id: int = field(default_factory=lambda: next(_ids))
    fired: int = 0

    def __post_init__(self) -> None:
        self._regex = re.compile(self.path)
        if self.method:
            self.method = self.method.upper()
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within 0..1")

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        if self.count is not None and self.fired >= self.count:
            return False
        return self._regex.search(path) is not None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["remaining"] = None if self.count is None else max(0, self.count - self.fired)
        return data


class ConnectionResetByFault(ConnectionResetError):
    """Raised instead of closing a socket when the app runs without a real transport."""


class Faults:
    """The rule set; first matching rule wins."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.closing = asyncio.Event()

    def add(
        self,
        method: str | None = None,
        path: str = ".*",
        status: int | None = None,
        rate: float = 1.0,
        count: int | None = None,
        latency: float = 0.0,
        reset: bool = False,
        hang: bool = False,
        *,
        latency_max: float | None = None,
        hang_seconds: float = 300.0,
        retry_after: int | None = None,
    ) -> FaultRule:
        rule = FaultRule(
            method=method,
            path=path,
            status=status,
            rate=rate,
            count=count,
            latency=latency,
            latency_max=latency_max,
            reset=reset,
            hang=hang,
            hang_seconds=hang_seconds,
            retry_after=retry_after,
        )
        self.rules.append(rule)
        return rule

    def add_from_json(self, data: dict[str, Any]) -> FaultRule:
        allowed = {
            "method",
            "path",
            "status",
            "rate",
            "count",
            "latency",
            "latency_max",
            "reset",
            "hang",
            "hang_seconds",
            "retry_after",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return self.add(**data)

    def remove(self, rule_id: int) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules = []

    def pick(self, method: str, path: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.matches(method, path):
                if rule.rate >= 1.0 or random.random() < rule.rate:
                    rule.fired += 1
                    return rule
                return None
        return None


def transport_of(send: Send) -> asyncio.Transport | None:
    """uvicorn's `send` is a bound method of its RequestResponseCycle, which holds the
    socket's transport; there is no ASGI way to drop a connection."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    return transport if isinstance(transport, asyncio.Transport) else None


def reset_transport(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0 turns close() into a TCP RST, which is what a crashed proxy looks like.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class FaultMiddleware:
    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.faults.rules or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        rule = self.faults.pick(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        delay = rule.latency
        if rule.latency_max is not None and rule.latency_max > rule.latency:
            delay = random.uniform(rule.latency, rule.latency_max)
        if delay > 0:
            await asyncio.sleep(delay)
        scope.setdefault("state", {})
        if rule.reset:
            scope["emulator.fault"] = "reset"
            transport = scope.get("emulator.transport") or transport_of(send)
            if transport is None:
                raise ConnectionResetByFault("connection reset by fault injection")
            reset_transport(transport)
            # Let connection_lost run so uvicorn sees a disconnect, not an app that forgot to answer.
            for _ in range(3):
                await asyncio.sleep(0)
            return
        if rule.hang:
            scope["emulator.fault"] = "hang"
            try:
                await asyncio.wait_for(self.faults.closing.wait(), timeout=rule.hang_seconds)
            except TimeoutError:
                pass
            transport = scope.get("emulator.transport") or transport_of(send)
            if transport is not None:
                transport.abort()
                return
            raise ConnectionResetByFault("hung request released")
        if rule.status is not None:
            scope["emulator.fault"] = f"status {rule.status}"
            if rule.status in _BODIES:
                body, ctype = _BODIES[rule.status]
                headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
                if rule.status == 429 and rule.retry_after is not None:
                    headers.append((b"retry-after", str(rule.retry_after).encode()))
                await send({"type": "http.response.start", "status": rule.status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            try:
                error = HTTPStatus(rule.status).phrase
            except ValueError:
                error = "Error"
            # Rails' public exception JSON shape, whatever the status.
            response = json_response({"status": rule.status, "error": error}, rule.status)
            if rule.retry_after is not None and rule.status == 503:
                response.headers["retry-after"] = str(rule.retry_after)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def rules_json(faults: Faults) -> bytes:
    return orjson.dumps([r.to_json() for r in faults.rules])
