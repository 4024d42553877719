"""Getting the bytes of an outgoing media message: base64 (or data URL) or an http(s) URL, the
latter through the outbound-fetch policy (:mod:`ryze.common.outbound`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import mimetypes
import time
from urllib.parse import unquote, urlsplit

from ryze.api.errors import ApiError
from ryze.api.settings import ApiSettings
from ryze.common.outbound import (
    ConnectFailed,
    FetchBusy,
    Fetcher,
    FetchLimits,
    FetchPolicy,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    OutboundError,
    TargetRefused,
    TooLarge,
)

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


def build_fetcher(settings: ApiSettings) -> Fetcher:
    """The process's media downloader, under the FETCH_ALLOW policy."""
    limits = FetchLimits(
        max_bytes=settings.media_max_bytes,
        total_timeout=settings.media_download_timeout,
        read_timeout=settings.media_read_timeout,
        concurrency=settings.media_download_concurrency,
    )
    return Fetcher(FetchPolicy.from_setting(settings.fetch_allow, setting="FETCH_ALLOW"), limits)


DOWNLOAD_FAILED = "Failed to download media from mediaUrl"


def _failure(exc: OutboundError) -> ApiError:
    # A URL or target the policy refuses is a bad request body; the text is the same whether or not
    # anything listens there, since no connection was made. What an allowed target answered is a
    # download failure, as before.
    if isinstance(exc, InvalidURL | TargetRefused):
        return ApiError(400, f"Invalid request body: field 'mediaUrl' {exc}")
    if isinstance(exc, TooLarge):
        return ApiError(413, "Media too large")
    if isinstance(exc, FetchBusy):
        return ApiError(503, "Too many media downloads in progress, try again later")
    return ApiError(400, f"{DOWNLOAD_FAILED}: {exc}")


async def download(
    fetcher: Fetcher, url: str, *, retry_for: float = 0.0
) -> tuple[bytes, str | None, str | None]:
    """GET ``url`` under the policy -> (bytes, content type, file name from the final URL's path).

    404, 5xx, time-outs and failed connections are retried until ``retry_for`` seconds have passed:
    Chatwoot hands out attachment URLs before its storage has the file. Refusals are never retried.
    """
    deadline = time.monotonic() + retry_for
    delay = 0.25
    while True:
        try:
            fetched = await fetcher.get(url)
        except HTTPStatusError as exc:
            if (exc.status != 404 and exc.status < 500) or time.monotonic() + delay > deadline:
                raise _failure(exc) from exc
        except (ConnectFailed, FetchTimeout) as exc:
            if time.monotonic() + delay > deadline:
                raise _failure(exc) from exc
        except OutboundError as exc:
            raise _failure(exc) from exc
        else:
            name = urlsplit(fetched.url).path.rsplit("/", 1)[-1] or None
            return fetched.data, fetched.content_type, unquote(name) if name else None
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
