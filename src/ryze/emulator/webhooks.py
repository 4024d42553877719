"""Webhook delivery to an API inbox's `webhook_url` (reference §8).

Like Chatwoot's Sidekiq `WebhookJob`, delivery happens off the request path: events go
into queues drained by background tasks. No retry; a failed message_created/message_updated
marks the message failed.

Delivery modes (`delivery`):

* ``ordered`` (default): queues sharded by conversation, so one conversation's events arrive in
  order while different conversations proceed in parallel — kinder than Chatwoot.
* ``sidekiq``: what Chatwoot does. `WebhookListener` enqueues one `WebhookJob` per event
  (`app/listeners/webhook_listener.rb`) and Sidekiq runs ten at once (`config/sidekiq.yml`,
  `:concurrency: 10`): one shared queue, `concurrency` workers, so two events of one conversation
  can be in flight together and arrive in either order.

From 4.14 on (``version``) deliveries go through SafeFetch (``lib/safe_fetch.rb`` and the
``ssrf_filter`` gem): a host with no public address is refused before any connection, with
``SsrfFilter::PrivateIPAddress`` "Hostname '<host>' has no public ip addresses", and the message is
marked failed with that text (``Webhooks::Trigger#handle_error``). 4.14.1 added
``SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true`` (``allow_private_network``) to lift that; the emulator
defaults to it set, as a development install on loopback has it.

On top of either: `duplicate_rate` delivers a job twice (each its own `X-Chatwoot-Delivery`, as
reported in chatwoot/chatwoot#11901), and `hold()` / `release(order)` park deliveries and let
them go in a chosen order (``queued``, ``reverse``, ``shuffle``) for deterministic tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import random
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson
from yarl import URL

from .events import PendingEvent
from .state import JSON, Store

log = logging.getLogger("ryze.emulator.webhooks")

_MESSAGE_EVENTS = ("message_created", "message_updated")
CHATWOOT_VERSION = "4.15.1"  # the release the emulator follows (shared/reference/chatwoot-api.md §0)
_SAFE_FETCH_SINCE = (4, 14, 0)
_ALLOW_PRIVATE_SINCE = (4, 14, 1)


def _version_tuple(value: str) -> tuple[int, int, int]:
    match = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", value)
    return (int(match[1]), int(match[2]), int(match[3] or 0)) if match else (0, 0, 0)


def _unsafe(address: str) -> bool:
    """``SsrfFilter.unsafe_ip_address?``: loopback, private, link-local, CGNAT, reserved, multicast."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


@dataclass
class Delivery:
    """One attempted POST, kept for tests and the /_emulator/webhooks endpoint."""

    event: str
    url: str
    delivery_id: str
    status: int | None
    error: str | None
    message_id: int | None
    payload: JSON = field(repr=False)
    duration_ms: float | None = None  # POST sent → answer read (the receiver's acknowledgement time)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`X-Chatwoot-Signature`: sha256=HMAC-SHA256(secret, "<timestamp>.<raw body>")."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def rails_json(payload: JSON) -> bytes:
    """`payload.to_json`: ActiveSupport escapes <, > and & in JSON strings, so receivers
    must verify the signature over the raw bytes, never a re-serialisation."""
    raw = orjson.dumps(payload)
    return raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


@dataclass
class _Job:
    url: str
    secret: str
    event: str
    payload: JSON
    message_id: int | None


class WebhookDispatcher:
    def __init__(
        self,
        store: Store,
        on_failure: Callable[[int, str], None],
        *,
        timeout: float = 5.0,
        shards: int = 8,
        keep: int = 10_000,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.enabled = True
        self.deliveries: list[Delivery] = []
        self._keep = keep
        self._on_failure = on_failure
        self._shards = shards
        self._queues: list[asyncio.Queue[_Job]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pending = 0
        self._idle: asyncio.Event | None = None
        self.delivery = "ordered"  # or "sidekiq" (see the module docstring)
        self.concurrency = 10  # Sidekiq workers in "sidekiq" mode (config/sidekiq.yml)
        self.duplicate_rate = 0.0
        self.holding = False
        self._held: list[tuple[int, _Job]] = []
        self._shared: asyncio.Queue[_Job] | None = None
        self._random = random.Random(0)  # reproducible duplicates and shuffles
        self.version = CHATWOOT_VERSION
        self.allow_private_network = True  # SAFE_FETCH_ALLOW_PRIVATE_NETWORK (4.14.1+)

    # --- producer side (called synchronously from the request handlers) -----------

    def __call__(self, ev: PendingEvent) -> None:
        inbox = self.store.inboxes.get(ev.inbox_id)
        if not self.enabled or inbox is None or not inbox.webhook_url.strip():
            return
        job = _Job(inbox.webhook_url, inbox.secret, ev.event, ev.build(), ev.message_id)
        self._ensure_started()
        copies = 2 if self.duplicate_rate and self._random.random() < self.duplicate_rate else 1
        for _ in range(copies):
            if self.holding:
                self._held.append((ev.conversation_pk, job))
            else:
                self._put(ev.conversation_pk, job)

    def _put(self, conversation_pk: int, job: _Job) -> None:
        self._pending += 1
        if self._idle is not None:
            self._idle.clear()
        if self.delivery == "sidekiq" and self._shared is not None:
            self._shared.put_nowait(job)
        else:
            self._queues[conversation_pk % self._shards].put_nowait(job)

    def hold(self) -> None:
        """Park every delivery from now on until :meth:`release` (not counted by :meth:`idle`)."""
        self.holding = True

    def release(self, order: str = "queued") -> int:
        """Let the parked deliveries go, in their queued order, reversed or shuffled; stop holding."""
        held, self._held, self.holding = self._held, [], False
        if order == "reverse":
            held.reverse()
        elif order == "shuffle":
            self._random.shuffle(held)
        elif order != "queued":
            raise ValueError(f"unknown release order {order!r}")
        for conversation_pk, job in held:
            self._put(conversation_pk, job)
        return len(held)

    def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._workers:
            return
        self._loop = loop
        self._session = None
        self._pending = 0
        self._idle = asyncio.Event()
        self._queues = [asyncio.Queue() for _ in range(self._shards)]
        self._workers = [
            loop.create_task(self._worker(q), name=f"webhook-{i}") for i, q in enumerate(self._queues)
        ]
        shared: asyncio.Queue[_Job] = asyncio.Queue()
        self._shared = shared
        self._workers += [
            loop.create_task(self._worker(shared), name=f"webhook-sidekiq-{n}")
            for n in range(self.concurrency)
        ]

    async def idle(self) -> None:
        """Wait until every queued delivery (and the failures they caused) is done."""
        # A failed delivery enqueues its message_updated before its own job counts as
        # done, so the counter cannot reach zero while a follow-up is still due.
        if self._idle is not None and self._pending:
            await self._idle.wait()

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: S110 - shutting down
                pass
        self._workers = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- consumer side -------------------------------------------------------------

    async def _worker(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._deliver(job)
            except Exception:
                log.exception("webhook delivery crashed")
            finally:
                queue.task_done()
                self._pending -= 1
                if self._pending == 0 and self._idle is not None:
                    self._idle.set()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No connection limit per host: Sidekiq runs many WebhookJobs concurrently.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._session

    async def safe_fetch_refusal(self, url: str) -> str | None:
        """SafeFetch's error for ``url`` (no request is made then), or None when it may be fetched."""
        version = _version_tuple(self.version)
        if version < _SAFE_FETCH_SINCE:
            return None  # plain RestClient before 4.14: any address
        if self.allow_private_network and version >= _ALLOW_PRIVATE_SINCE:
            return None
        host = URL(url).raw_host or ""
        try:
            addresses = [host.strip("[]")] if _is_ip(host.strip("[]")) else await self._resolve(host)
        except OSError:
            return f"Could not resolve hostname '{host}'"
        if not addresses:
            return f"Could not resolve hostname '{host}'"
        if all(_unsafe(a) for a in addresses):
            return f"Hostname '{host}' has no public ip addresses"
        return None

    @staticmethod
    async def _resolve(host: str) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]

    def _record(self, job: _Job, delivery_id: str, status: int | None, error: str | None, ms: float) -> None:
        self.deliveries.append(
            Delivery(job.event, job.url, delivery_id, status, error, job.message_id, job.payload, ms)
        )
        if len(self.deliveries) > self._keep:
            del self.deliveries[: len(self.deliveries) - self._keep]
        if error is not None:
            log.info("webhook %s to %s failed: %s", job.event, job.url, error)
            if job.event in _MESSAGE_EVENTS and job.message_id is not None:
                self._on_failure(job.message_id, error)

    async def _deliver(self, job: _Job) -> None:
        refusal = await self.safe_fetch_refusal(job.url)
        if refusal is not None:
            self._record(job, str(uuid.uuid4()), None, refusal, 0.0)
            return
        body = rails_json(job.payload)
        ts = str(int(time.time()))
        delivery_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Chatwoot-Delivery": delivery_id,
        }
        if job.secret:  # lib/webhooks/trigger.rb signs only when the channel has a secret (v4.13+)
            headers["X-Chatwoot-Timestamp"] = ts
            headers["X-Chatwoot-Signature"] = sign(job.secret, ts, body)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            async with self._client().post(
                job.url, data=body, headers=headers, timeout=timeout, allow_redirects=True, max_redirects=10
            ) as resp:
                await resp.read()
                status = resp.status
                if not 200 <= resp.status < 300:
                    error = f"{resp.status} {resp.reason or ''}".strip()
        except TimeoutError:
            error = "Net::ReadTimeout"
        except aiohttp.ClientConnectorError as exc:
            error = f"Failed to open TCP connection to {exc.host}:{exc.port} ({exc.os_error})"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        duration_ms = round(1000 * (time.perf_counter() - started), 3)
        self._record(job, delivery_id, status, error, duration_ms)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return False
    return True
