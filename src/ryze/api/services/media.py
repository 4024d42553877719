"""Getting the bytes of an outgoing media message: base64 (or data URL) or an http(s) URL."""

from __future__ import annotations

import asyncio
import base64
import binascii
import mimetypes
import time

import aiohttp

from ryze.api.errors import ApiError
from ryze.protocol import is_http_url

MAX_MEDIA_BYTES = 100 * 1024 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"%PDF", "application/pdf"),
    (b"OggS", "audio/ogg; codecs=opus"),
    (b"ID3", "audio/mpeg"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
)
DEFAULT_MIMETYPE = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/ogg; codecs=opus",
    "document": "application/octet-stream",
}


def sniff_mimetype(data: bytes) -> str | None:
    for magic, mimetype in _MAGIC:
        if data.startswith(magic):
            return mimetype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return None


def decode_base64(value: str) -> tuple[bytes, str | None]:
    """Raw base64 or a ``data:<mime>;base64,`` URL -> (bytes, declared mimetype)."""
    declared = None
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        declared = header[5:].split(";base64", 1)[0] or None
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "Invalid request body: field 'mediaBase64' is not valid base64") from exc
    if not data:
        raise ApiError(400, "Invalid request body: field 'mediaBase64' is empty")
    return data, declared


async def _read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed ``limit``.

    ``StreamReader.read(n)`` returns whatever is buffered (often one 64 KiB chunk), not ``n``
    bytes: reading the body in one such call silently truncated every larger file.
    """
    if resp.content_length is not None and resp.content_length > limit:
        raise ApiError(413, "Media too large")
    buffer = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        buffer += chunk
        if len(buffer) > limit:
            raise ApiError(413, "Media too large")
    return bytes(buffer)


async def download(url: str, *, retry_for: float = 0.0) -> tuple[bytes, str | None, str | None]:
    """GET ``url`` following redirects -> (bytes, content type, file name from the URL path).

    404 and 5xx are retried until ``retry_for`` seconds have passed: Chatwoot hands out attachment
    URLs before its storage has the file.
    """
    if not is_http_url(url):
        raise ApiError(400, "Invalid request body: field 'mediaUrl' must be an http(s) URL")
    deadline = time.monotonic() + retry_for
    delay = 0.25
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        while True:
            try:
                async with client.get(url, allow_redirects=True) as resp:
                    if resp.status == 200:
                        data = await _read_limited(resp, MAX_MEDIA_BYTES)
                        content_type = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
                        name = resp.url.path.rsplit("/", 1)[-1] or None
                        return data, content_type, name
                    retryable = resp.status == 404 or resp.status >= 500
                    problem = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                retryable, problem = True, type(exc).__name__
            if not retryable or time.monotonic() + delay > deadline:
                raise ApiError(400, f"Failed to download media from mediaUrl: {problem}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def pick_mimetype(
    media_type: str, data: bytes, *, given: str | None, declared: str | None, file_name: str | None
) -> str:
    if given:
        return given
    if declared and declared != "application/octet-stream":
        return declared
    sniffed = sniff_mimetype(data)
    if sniffed:
        return sniffed
    if file_name:
        guessed, _ = mimetypes.guess_type(file_name)
        if guessed:
            return guessed
    return DEFAULT_MIMETYPE[media_type]
