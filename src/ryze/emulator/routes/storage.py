"""ActiveStorage: `data_url` redirects (302) to the blob's service URL, which serves bytes.

The optional `storage_delay_ms` makes the service URL answer 404 for a while after the
upload, like S3 right after Chatwoot hands out the URL; clients must retry through it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from ..app import ChatwootEmulator


def _emu(request: Request) -> ChatwootEmulator:
    emu: ChatwootEmulator = request.app.state.emulator
    return emu


async def redirect(request: Request) -> Response:
    emu = _emu(request)
    att = emu.state.attachments_by_signed_id.get(request.path_params["signed_id"])
    if att is None:
        return Response(b"", status_code=404)
    url = f"{emu.base_url(request)}/rails/active_storage/disk/{att.key}/{quote(att.filename)}"
    return RedirectResponse(url, status_code=302)


async def blob(request: Request) -> Response:
    emu = _emu(request)
    att = emu.state.attachments_by_key.get(request.path_params["key"])
    if att is None:
        return Response(b"", status_code=404)
    if (time.monotonic() - att.created_monotonic) * 1000 < emu.storage_delay_ms:
        return Response(
            b"<Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml"
        )
    return Response(
        att.data,
        media_type=att.content_type,
        headers={"content-disposition": f'inline; filename="{att.filename}"'},
    )


routes = [
    Route(
        "/rails/active_storage/blobs/redirect/{signed_id}/{filename:path}", redirect, methods=["GET", "HEAD"]
    ),
    Route("/rails/active_storage/disk/{key}/{filename:path}", blob, methods=["GET", "HEAD"]),
]
