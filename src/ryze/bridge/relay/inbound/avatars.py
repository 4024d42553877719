"""WhatsApp profile pictures as Chatwoot contact avatars: in the background, at most daily.

After a chat's message is relayed, its contact's avatar is refreshed when WhatsApp was last asked
more than ``interval`` ago (a day by default; ``bridge_chats.avatar_checked_at``). RyzeAPI serves
the picture on ``PROFILE_PICTURE_PATH`` (Bearer ``BRIDGE_TOKEN``, only ever sent to the
integration's own RyzeAPI), told the id of the picture already uploaded (``?known=``) so an
unchanged picture is neither downloaded nor uploaded again (304). The bytes go to Chatwoot as the
contact's multipart ``avatar`` (``ChatwootPort.set_contact_avatar``: a real Chatwoot would refuse
to fetch an ``avatar_url`` on RyzeAPI's private address). A group's contact gets the group's
picture.

The relay never waits for any of it: refreshes run as tasks, at most ``concurrency`` at once per
integration and at most ``backlog`` waiting (more are skipped and come back with the chat's next
message); a failure is logged, and the chat is asked again after the next interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol
from urllib.parse import quote

import aiohttp
from yarl import URL

from ryze.bridge.relay.inbound.jids import aliases_of
from ryze.bridge.store.repositories import ChatRecord, ChatRepository
from ryze.chatwoot import ChatwootError, ChatwootPort
from ryze.chatwoot.models import Attachment
from ryze.protocol import PICTURE_ID_HEADER, PROFILE_PICTURE_PATH, ChatRef

log = logging.getLogger(__name__)

DAY = 86_400.0
# Chatwoot keeps avatars of image/jpeg, png, gif and webp up to 15 MB (Avatar::AvatarFromUrlJob's
# ALLOWED_CONTENT_TYPES / MAX_DOWNLOAD_SIZE, the same rules as an uploaded avatar)
AVATAR_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
AVATAR_MAX_BYTES = 15 * 1024 * 1024


class PictureUnavailable(Exception):
    """RyzeAPI could not say what the picture is (not connected, WhatsApp failed, unreachable)."""


@dataclass(frozen=True, slots=True)
class Picture:
    id: str
    content_type: str
    data: bytes  # empty: unchanged since the id the caller knew


class PictureSource(Protocol):
    async def fetch(self, jid: str, known_id: str | None) -> Picture | None:
        """The current picture of ``jid``; None when there is none."""
        ...


class RyzePictures:
    """Profile pictures from the integration's RyzeAPI, with its bridge token."""

    def __init__(self, ryzeapi_url: str, instance: str, token: str, *, timeout: float = 30.0) -> None:
        self._base = URL(ryzeapi_url.rstrip("/"))
        self._instance = instance
        self._token = token
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, jid: str, known_id: str | None) -> Picture | None:
        path = PROFILE_PICTURE_PATH.format(instance=quote(self._instance, safe=""), jid=quote(jid, safe="@"))
        url = URL(str(self._base) + path, encoded=True)
        if known_id:
            url = url.with_query(known=known_id)
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._client().get(url, headers=headers, allow_redirects=False) as resp:
                picture_id = resp.headers.get(PICTURE_ID_HEADER, "")
                if resp.status == 404:
                    return None
                if resp.status == 304:
                    return Picture(picture_id or (known_id or ""), "", b"")
                if resp.status != 200:
                    raise PictureUnavailable(f"RyzeAPI answered HTTP {resp.status}")
                data = await resp.content.read(AVATAR_MAX_BYTES + 1)
                content_type = (resp.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PictureUnavailable(f"RyzeAPI unreachable: {exc.__class__.__name__}") from exc
        if len(data) > AVATAR_MAX_BYTES:
            raise PictureUnavailable("the picture is larger than Chatwoot keeps")
        return Picture(picture_id, content_type, data)


@dataclass(frozen=True, slots=True)
class AvatarLimits:
    interval: float = DAY  # seconds between two looks at one chat's picture
    concurrency: int = 2  # refreshes at once per integration
    backlog: int = 256  # refreshes waiting; beyond it a chat is left for its next message


class AvatarRefresher:
    def __init__(
        self,
        *,
        integration_id: str,
        chats: ChatRepository,
        client: Callable[[], ChatwootPort],
        pictures: PictureSource,
        limits: AvatarLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.integration_id = integration_id
        self._chats = chats
        self._client = client
        self._pictures = pictures
        self.limits = limits or AvatarLimits()
        self._clock = clock
        self._slots = asyncio.Semaphore(self.limits.concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}  # chat key -> its refresh

    def due(self, record: ChatRecord) -> bool:
        checked = record.avatar_checked_at
        return checked is None or self._clock() - checked >= self.limits.interval

    def note(self, chat: ChatRef, record: ChatRecord) -> None:
        """A message of ``chat`` was relayed: refresh its contact's avatar in the background if due."""
        if not self.due(record) or record.chat_key in self._tasks:
            return
        if len(self._tasks) >= self.limits.backlog:
            return  # busy: the chat's next message tries again
        task = asyncio.create_task(self._refresh(chat, record), name=f"avatar-{self.integration_id}")
        self._tasks[record.chat_key] = task
        task.add_done_callback(partial(self._finished, record.chat_key))

    def _finished(self, key: str, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(key, None)

    async def drain(self) -> None:
        """Wait for the refreshes under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def _refresh(self, chat: ChatRef, record: ChatRecord) -> None:
        async with self._slots:
            try:
                await self._refresh_now(chat, record)
            except (PictureUnavailable, ChatwootError) as exc:
                log.warning(
                    "contact avatar not refreshed; asked again after the next interval",
                    extra={
                        "integration_id": self.integration_id,
                        "contact_id": record.contact_id,
                        "error": str(exc)[:200],
                    },
                )
            record.avatar_checked_at = self._clock()
            await self._chats.save(self.integration_id, record, aliases_of(chat))

    async def _refresh_now(self, chat: ChatRef, record: ChatRecord) -> None:
        picture = await self._pictures.fetch(chat.jid, record.avatar_id)
        if picture is None or not picture.data:
            return  # no picture (or hidden), or the one already uploaded
        extension = AVATAR_TYPES.get(picture.content_type)
        if extension is None:
            raise PictureUnavailable(
                f"a {picture.content_type or 'untyped'} picture is no avatar Chatwoot keeps"
            )
        await self._client().set_contact_avatar(
            record.contact_id,
            Attachment(
                filename=f"whatsapp-{picture.id or 'picture'}.{extension}",
                content_type=picture.content_type,
                data=picture.data,
            ),
        )
        record.avatar_id = picture.id or None
        log.info(
            "contact avatar set from WhatsApp",
            extra={"integration_id": self.integration_id, "contact_id": record.contact_id},
        )
