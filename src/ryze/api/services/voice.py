"""Voice notes as WhatsApp plays them: OGG/Opus, converted with ffmpeg when the audio is not.

WhatsApp shows a message as a voice note (PTT) only for OGG/Opus audio: whatsmeow's
``SendMessage`` sends whatever bytes it is given, and neonize's ``build_audio_message``
(neonize/client.py) sets ``ptt`` and the mimetype without converting, so an MP3 or WebM a Chatwoot
agent recorded would arrive as an unplayable voice note. Such audio is converted here, in RyzeAPI's
media handling, before the engine sees it. ffmpeg runs as a child process (a file in, OGG/Opus on
stdout), bounded in time; the input goes through a temporary file because MP4/M4A audio keeps its
index at the end, which ffmpeg cannot read from a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile

from ryze.api.errors import ApiError

OGG_OPUS = "audio/ogg; codecs=opus"


# Identification headers of the other codecs an Ogg stream can carry (first page of the stream).
_OTHER_OGG_CODECS = (b"\x01vorbis", b"Speex   ", b"\x7fFLAC")


def is_ogg_opus(data: bytes) -> bool:
    """Already what a voice note must be: an Ogg stream that does not carry another codec.

    Opus streams start with an "OpusHead" page (RFC 7845 §5.1); an Ogg file whose first page names
    no other codec is taken as it is rather than re-encoded (re-encoding Opus only loses quality).
    """
    if not data.startswith(b"OggS"):
        return False
    head = data[:512]
    return b"OpusHead" in head or not any(codec in head for codec in _OTHER_OGG_CODECS)


class VoiceTranscoder:
    """Converts audio to OGG/Opus (mono, 48 kHz, speech-tuned) with the ``ffmpeg`` at ``binary``."""

    def __init__(self, binary: str = "ffmpeg", *, timeout: float = 60.0) -> None:
        self.binary = binary
        self.timeout = timeout

    async def to_ogg_opus(self, data: bytes) -> bytes:
        fd, path = tempfile.mkstemp(prefix="ryze-voice-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return await self._run(path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def _run(self, path: str) -> bytes:
        args = [
            *("-hide_banner", "-loglevel", "error", "-nostdin", "-i", path),
            *("-vn", "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k"),
            *("-application", "voip", "-f", "ogg", "pipe:1"),
        ]
        try:
            process = await asyncio.create_subprocess_exec(
                self.binary,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:  # not installed: the operator's to fix, not the sender's
            raise ApiError(
                500, f"voice note conversion unavailable: cannot run {self.binary}: {exc}"
            ) from exc
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise ApiError(
                400, f"the audio could not be converted to a voice note within {self.timeout:g} s"
            ) from exc
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0 or not out:
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ApiError(
                400, f"the audio could not be converted to a voice note (OGG/Opus): {detail[0][:200]}"
            )
        return out
