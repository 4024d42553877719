"""Voice notes leave as OGG/Opus: other audio is converted with ffmpeg (services/voice.py)."""

from __future__ import annotations

import asyncio
import base64
import shutil

import pytest

from ryze.api.errors import ApiError
from ryze.api.services.voice import VoiceTranscoder, is_ogg_opus

from .harness import Api
from .test_messages import outbox, send_media

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is installed by make setup")


async def _tone(fmt: str) -> bytes:
    """A 0.3 s tone encoded by ffmpeg as ``fmt`` (mp3, wav, ogg with Vorbis, ...)."""
    codec = ["-c:a", "libvorbis"] if fmt == "ogg" else []
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.3"]
    process = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", *tone, *codec, "-f", fmt, "pipe:1",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0 and out
    return out


async def test_mp3_and_vorbis_become_ogg_opus() -> None:
    transcoder = VoiceTranscoder()
    for fmt in ("mp3", "wav", "ogg"):
        source = await _tone(fmt)
        assert not is_ogg_opus(source)
        converted = await transcoder.to_ogg_opus(source)
        assert converted.startswith(b"OggS") and b"OpusHead" in converted[:512]
        assert is_ogg_opus(converted)


async def test_unreadable_audio_is_a_final_error_that_says_so() -> None:
    with pytest.raises(ApiError) as caught:
        await VoiceTranscoder().to_ogg_opus(b"this is no audio at all")
    assert caught.value.status == 400
    assert "could not be converted to a voice note" in caught.value.message


async def test_a_missing_ffmpeg_is_the_operators_problem() -> None:
    with pytest.raises(ApiError) as caught:
        await VoiceTranscoder("/nonexistent/ffmpeg").to_ogg_opus(b"ID3")
    assert caught.value.status == 500 and "voice note conversion unavailable" in caught.value.message


async def test_an_mp3_voice_note_is_sent_as_ogg_opus(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    mp3 = await _tone("mp3")
    resp = await send_media(
        api, token, number="5511988887777", mediaType="audio", mediaBase64=base64.b64encode(mp3).decode()
    )
    assert resp.status_code == 200, resp.text
    resp = await send_media(
        api, token, number="5511988887777", mediaType="audio", isVoice=False,
        mediaBase64=base64.b64encode(mp3).decode(),
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    voice, audio = await outbox(api, token)
    assert voice["media"]["kind"] == "ptt" and voice["media"]["mimetype"] == "audio/ogg; codecs=opus"
    sent = await api.client.get(
        f"/_simulator/orion/media/{voice['media']['handle']}", headers={"token": token}
    )
    assert sent.content.startswith(b"OggS") and b"OpusHead" in sent.content[:512]
    # an audio file (not a voice note) goes as it is
    assert audio["media"]["kind"] == "audio"
    kept = await api.client.get(
        f"/_simulator/orion/media/{audio['media']['handle']}", headers={"token": token}
    )
    assert kept.content == mp3
