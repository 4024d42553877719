"""Media bytes from RyzeAPI's media route (``MediaInfo.url``, ``Authorization: Bearer BRIDGE_TOKEN``).

The token is only ever sent to the integration's own RyzeAPI (the URL's origin must be
``ryzeapi_url``'s). A download is bounded in size (Chatwoot's upload limit, ``BRIDGE_MEDIA_MAX_BYTES``)
and retried a bounded number of times while RyzeAPI answers 404/5xx or cannot be reached (its
own download from WhatsApp may not be finished); past that the executor shows a text saying so
instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)


class MediaError(Exception):
    """The file cannot be attached; ``str()`` is a reason an agent can read."""


class MediaTooLarge(MediaError):
    def __init__(self, size: int | None, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"larger than Chatwoot's upload limit of {human_size(limit)}")


class MediaUnavailable(MediaError):
    """RyzeAPI could not serve the file (after the bounded retries)."""


@dataclass(frozen=True, slots=True)
class MediaFile:
    data: bytes
    content_type: str | None


class MediaSource(Protocol):
    max_bytes: int

    async def fetch(self, url: str) -> MediaFile: ...


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


@dataclass(frozen=True, slots=True)
class MediaLimits:
    max_bytes: int = 40 * 1024 * 1024  # Chatwoot's default attachment limit (40 MB)
    attempts: int = 6  # tries per file while RyzeAPI answers 404/5xx or is unreachable
    retry_base: float = 0.5  # seconds, doubled per try, capped at retry_max
    retry_max: float = 8.0
    timeout: float = 120.0  # one download


class RyzeMedia:
    """Downloads a message's file from the integration's RyzeAPI, with its bridge token."""

    def __init__(self, ryzeapi_url: str, token: str, limits: MediaLimits | None = None) -> None:
        self._origin = URL(ryzeapi_url).origin()
        self._token = token
        self.limits = limits or MediaLimits()
        self.max_bytes = self.limits.max_bytes
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.limits.timeout), auto_decompress=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str) -> MediaFile:
        target = URL(url)
        if not target.is_absolute() or target.origin() != self._origin:
            # never hand the bridge token to another host, whatever an event says
            raise MediaUnavailable("its address is not this integration's RyzeAPI")
        limits = self.limits
        last = ""
        for attempt in range(limits.attempts):
            try:
                return await self._get(target)
            except _Transient as exc:
                last = str(exc)
            if attempt + 1 < limits.attempts:
                await asyncio.sleep(min(limits.retry_max, limits.retry_base * 2**attempt))
        log.warning("media not downloadable from RyzeAPI", extra={"error": last, "attempts": limits.attempts})
        raise MediaUnavailable(f"RyzeAPI could not provide it ({last})")

    async def _get(self, url: URL) -> MediaFile:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._client().get(url, headers=headers, allow_redirects=False) as resp:
                if resp.status in (404, 408, 425, 429) or resp.status >= 500:
                    raise _Transient(f"HTTP {resp.status}")
                if resp.status != 200:
                    raise MediaUnavailable(f"RyzeAPI answered HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > self.max_bytes:
                    raise MediaTooLarge(resp.content_length, self.max_bytes)
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise MediaTooLarge(None, self.max_bytes)
                content_type = resp.headers.get("Content-Type")
                return MediaFile(bytes(body), content_type.split(";", 1)[0].strip() if content_type else None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Transient(exc.__class__.__name__) from exc


class _Transient(Exception):
    pass
