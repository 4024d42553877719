"""Per-token rate limiting (fixed one-minute windows) as a pure ASGI middleware.

Every ``/api/*`` and ``/ws/*`` response (except the bridge's ``/ws/chatwoot/*`` link) carries
``X-RateLimit-Limit/Remaining/Reset``; over the limit the answer is 429 with the documented message
(headers still sent). Instance creation has its own, smaller bucket. Requests without a token are
counted per client address.

Failed authentications are counted per client address too: each unknown token would otherwise get
a fresh bucket of its own, so guessing tokens was not limited at all. Once an address has had
``per_minute`` 401s in a window, its requests with a token that has not authenticated in that
window are refused with 429 until the window ends (a token that did authenticate from anywhere
keeps working, so a shared NAT address is not locked out of the tokens in use).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ryze.api.tokens import hash_token

RATE_LIMITED = "Rate limit exceeded. Try again later."
INTERNAL_ERROR = "Internal server error"  # the body errors.py gives unhandled exceptions
_LIMITED_PREFIXES = ("/api/", "/ws/")
# The bridge's internal link: one BRIDGE_TOKEN dials a link per instance, and a restart redials
# them all at once; limiting it per token would cap a deployment at 100 instances.
_EXEMPT_PREFIXES = ("/ws/chatwoot/",)
# Not limited per token, but their failed authentications count (and lock out) like everywhere:
# they take BRIDGE_TOKEN, which would otherwise be the one secret open to unlimited guessing.
_AUTH_ONLY_PREFIXES = ("/ws/chatwoot/", "/internal/")
_CREATE_PATH = "/api/instance/new"
_AUTH_FAILED = "auth-failed"  # bucket: 401s per client address
_AUTHENTICATED = "authenticated"  # bucket: tokens accepted this window


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix seconds when the window ends

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]


class RateLimiter:
    def __init__(self, per_minute: int, create_per_minute: int) -> None:
        self.per_minute = per_minute
        self.create_per_minute = create_per_minute
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}  # (key, bucket) -> (window, count)

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def _window(self, now: float | None) -> int:
        return int((now if now is not None else time.time()) // 60)

    def count(self, key: str, bucket: str, now: float | None = None) -> int:
        """How many hits ``key`` has in ``bucket`` this window (0 when none)."""
        start, count = self._windows.get((key, bucket), (-1, 0))
        return count if start == self._window(now) else 0

    def auth_failed(self, address: str, now: float | None = None) -> None:
        """Count one failed authentication from ``address`` (capped: only the threshold matters)."""
        window = self._window(now)
        start, count = self._windows.get((address, _AUTH_FAILED), (window, 0))
        self._windows[(address, _AUTH_FAILED)] = (window, min((count if start == window else 0) + 1, 1 << 30))

    def authenticated(self, token_key: str, now: float | None = None) -> None:
        """``token_key`` was accepted this window: failed attempts of its address do not block it."""
        self._windows[(token_key, _AUTHENTICATED)] = (self._window(now), 1)

    def locked_out(self, address: str, token_key: str | None, now: float | None = None) -> bool:
        """Too many failed authentications from ``address``, and ``token_key`` has not proved itself."""
        if self.count(address, _AUTH_FAILED, now) < self.per_minute:
            return False
        return token_key is None or self.count(token_key, _AUTHENTICATED, now) == 0

    def hit(self, key: str, bucket: str, limit: int, now: float | None = None) -> Decision:
        window = int((now if now is not None else time.time()) // 60)
        reset = (window + 1) * 60
        start, count = self._windows.get((key, bucket), (window, 0))
        if start != window:
            count = 0
            if len(self._windows) > 100_000:
                self._prune(window)
        if count >= limit:
            return Decision(False, limit, 0, reset)
        count += 1
        self._windows[(key, bucket)] = (window, count)
        return Decision(True, limit, limit - count, reset)

    def _prune(self, window: int) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[0] == window}

    def reset(self) -> None:
        self._windows.clear()


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def _token_key(scope: Scope) -> str | None:
    headers = Headers(scope=scope)
    token = headers.get("token", "").strip()
    if not token:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
    if not token and scope["type"] == "websocket":
        token = QueryParams(scope.get("query_string", b"")).get("token") or ""
    return "t:" + hash_token(token.strip()) if token.strip() else None


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] in ("http", "websocket")
            and self.limiter.enabled
            and path.startswith(_AUTH_ONLY_PREFIXES)
        ):
            await self._auth_only(scope, receive, send)
            return
        if (
            scope["type"] not in ("http", "websocket")
            or not self.limiter.enabled
            or not path.startswith(_LIMITED_PREFIXES)
            or path.startswith(_EXEMPT_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        address, token_key = _address(scope), _token_key(scope)
        key = token_key or address
        if scope["type"] == "http" and scope["method"] == "POST" and path == _CREATE_PATH:
            decision = self.limiter.hit(key, "create", self.limiter.create_per_minute)
        else:
            decision = self.limiter.hit(key, "global", self.limiter.per_minute)
        if decision.allowed and self.limiter.locked_out(address, token_key):
            decision = Decision(False, decision.limit, 0, decision.reset)
        extra = decision.headers()
        if not decision.allowed:
            await _reject(scope, send, extra)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                started = True
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            self._count_auth(message, address, token_key)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # An unhandled error is answered by Starlette's outermost middleware, outside this one:
            # answer the documented 500 here so it carries the headers too, then let it propagate
            # (the app's handler logs it; the outer middleware sees the response already started).
            if scope["type"] == "http" and not started:
                await _send_json(send, 500, INTERNAL_ERROR, extra)
            raise

    def _count_auth(self, message: Message, address: str, token_key: str | None) -> None:
        """What the answer proves: a 401 counts against the address, anything else (or an accepted
        WebSocket) proves the token."""
        if message["type"] in ("http.response.start", "websocket.http.response.start"):
            if message["status"] == 401:
                self.limiter.auth_failed(address)
            elif token_key is not None:
                self.limiter.authenticated(token_key)
        elif message["type"] == "websocket.accept" and token_key is not None:
            self.limiter.authenticated(token_key)

    async def _auth_only(self, scope: Scope, receive: Receive, send: Send) -> None:
        address, token_key = _address(scope), _token_key(scope)
        if self.limiter.locked_out(address, token_key):
            await _reject(scope, send, [])
            return

        async def counting_send(message: Message) -> None:
            self._count_auth(message, address, token_key)
            await send(message)

        await self.app(scope, receive, counting_send)


async def _send_json(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps({"success": False, "error": {"message": message}})
    all_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _reject(scope: Scope, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    if scope["type"] == "websocket":
        # Deny the upgrade with an HTTP response (ASGI websocket denial response extension).
        body = orjson.dumps({"success": False, "error": {"message": RATE_LIMITED}})
        all_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ]
        await send({"type": "websocket.http.response.start", "status": 429, "headers": all_headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await _send_json(send, 429, RATE_LIMITED, headers)
