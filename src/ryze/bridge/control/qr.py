"""A WhatsApp QR string as the PNG the connection conversation shows."""

from __future__ import annotations

import io

import segno

QR_FILE_NAME = "whatsapp-qr.png"


def qr_png(qr: str) -> bytes:
    """The QR code as a PNG, big enough to scan from a laptop screen (scale 8, quiet zone 4)."""
    out = io.BytesIO()
    segno.make_qr(qr, error="l").save(out, kind="png", scale=8, border=4)
    return out.getvalue()
