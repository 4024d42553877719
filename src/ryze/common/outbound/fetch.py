"""Downloading a URL under the policy: one GET, redirects followed by hand, the body streamed
within a size limit, a bounded number of downloads at once, a read and a total time-out.

The body is spooled to a temporary file past ``spool_bytes``: an endless or oversized answer
costs at most that much memory while it streams (it used to grow a ``bytearray`` up to the
100 MiB limit, per download), and a complete one is read back once, into a ``bytes`` of exactly
its size, because the WhatsApp engines take the whole file.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver

from ryze.common.outbound.errors import (
    ConnectFailed,
    FetchBusy,
    FetchTimeout,
    HTTPStatusError,
    OutboundError,
    TargetRefused,
    TooLarge,
    TooManyRedirects,
)
from ryze.common.outbound.policy import FetchPolicy
from ryze.common.outbound.resolver import PolicyResolver

log = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 100 * 1024 * 1024
    total_timeout: float = 60.0  # the whole download, every redirect included
    read_timeout: float = 20.0  # the longest silence between two reads
    connect_timeout: float = 10.0
    max_redirects: int = 5
    concurrency: int = 4  # downloads at once per process; others wait (up to total_timeout)
    spool_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None  # without parameters
    url: str  # the URL that answered, after redirects


class Fetcher:
    """One per service. ``resolver`` builds the DNS resolver the policy wraps (tests hand in a
    fake one to simulate DNS rebinding); by default the system resolver."""

    def __init__(
        self,
        policy: FetchPolicy,
        limits: FetchLimits | None = None,
        *,
        resolver: Callable[[], AbstractResolver] | None = None,
    ) -> None:
        self.policy = policy
        self.limits = limits or FetchLimits()
        self._resolver = resolver
        self._slots = asyncio.Semaphore(self.limits.concurrency)
        self.active = 0  # downloads holding a slot right now (tests and metrics read it)

    async def get(self, url: str) -> Fetched:
        """GET ``url``; any non-200 final answer raises :class:`HTTPStatusError`."""
        try:
            return await self._get(url)
        except TargetRefused as exc:
            # The reason only, never the URL: it may carry a token in its query. Logged because an
            # operator whose Chatwoot is refused needs to see why attachments fail.
            log.info("outbound fetch refused", extra={"error": str(exc)})
            raise

    async def _get(self, url: str) -> Fetched:
        target = self.policy.check_url(url)  # refuse before waiting for a slot or connecting
        limits = self.limits
        try:
            async with asyncio.timeout(limits.total_timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise FetchBusy() from exc
        self.active += 1
        try:
            async with asyncio.timeout(limits.total_timeout):
                return await self._follow(target.url)
        except TimeoutError as exc:  # ours, or aiohttp's read/connect time-outs
            raise FetchTimeout() from exc
        finally:
            self.active -= 1
            self._slots.release()

    def _session(self) -> aiohttp.ClientSession:
        inner = self._resolver() if self._resolver is not None else None
        connector = aiohttp.TCPConnector(
            resolver=PolicyResolver(self.policy, inner), use_dns_cache=False, limit=0, force_close=True
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self.limits.connect_timeout, sock_read=self.limits.read_timeout
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,  # never through a proxy from the environment: it would do the connecting
        )

    async def _follow(self, url: str) -> Fetched:
        async with self._session() as session:
            for _hop in range(self.limits.max_redirects + 1):
                try:
                    async with session.get(url, allow_redirects=False) as resp:
                        location = resp.headers.get("Location")
                        if resp.status in _REDIRECTS and location:
                            # Each hop is a new request to judge: a public host may redirect to
                            # 127.0.0.1 or to a name that resolves there.
                            url = self.policy.check_url(urljoin(str(resp.url), location)).url
                            continue
                        if resp.status != 200:
                            raise HTTPStatusError(resp.status)
                        data = await self._read(resp)
                        content_type = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
                        return Fetched(data, content_type, str(resp.url))
                except OutboundError:
                    raise
                except TimeoutError as exc:  # aiohttp's read/connect time-outs are ClientErrors too
                    raise FetchTimeout() from exc
                except aiohttp.ClientError as exc:
                    cause = getattr(exc, "os_error", None) or exc.__cause__
                    if isinstance(cause, OutboundError):  # the resolver refused, wrapped by aiohttp
                        raise cause from exc
                    raise ConnectFailed() from exc
                except OSError as exc:
                    raise ConnectFailed() from exc
            raise TooManyRedirects(self.limits.max_redirects)

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self.limits.max_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise TooLarge(limit)
        size = 0
        # Writes go to the page cache (and to memory below spool_bytes): small enough to do on
        # the loop between 64 KiB reads.
        with tempfile.SpooledTemporaryFile(max_size=self.limits.spool_bytes) as spool:
            async for chunk in resp.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(limit)
                spool.write(chunk)
            spool.seek(0)
            return spool.read()
