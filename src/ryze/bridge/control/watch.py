"""Connection changes into the connection conversation: one post per change, QR codes as images.

Fed the link's ``instance.state`` events in order (the inbound relay's state lane). A state
repeated is not posted again (the last posted key is kept in the database, so a replay after a
restart is quiet too); ``connecting`` is said only when a working connection was lost (during
pairing it is noise). A new QR code is posted as an image and the previous ones are deleted; when
Chatwoot refuses a deletion, a short "expired" note follows instead (Chatwoot's API cannot change a
message's content). Once connected or logged out, the QR images left are removed the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from ryze.bridge.control.conversation import ChatwootControlRoom
from ryze.bridge.control.qr import QR_FILE_NAME, qr_png
from ryze.bridge.control.status_text import state_post
from ryze.chatwoot import ChatwootError
from ryze.protocol import InstanceStateData

log = logging.getLogger(__name__)

QR_CAPTION = (
    "📱 Scan this QR code to link WhatsApp: on the phone open WhatsApp › Linked devices › "
    "Link a device. It is replaced by a new one while it rotates (about every 20 seconds). "
    "No camera at hand? Type `pair <number>` for a pairing code."
)
QR_EXPIRED = "⌛ The QR code above has expired."
_LOST_CONNECTION = ("connected:", "disconnected", "temp_banned")


def _qr_key(qr: str) -> str:
    return "qr:" + hashlib.sha256(qr.encode()).hexdigest()[:16]


class ConnectionWatch:
    def __init__(self, room: ChatwootControlRoom) -> None:
        self.room = room
        # The state lane and the `qr` command both show QR codes (the command's answer and the
        # qr_ready event carry the same one): one at a time, so a code is never posted twice.
        self._lock = asyncio.Lock()

    async def on_state(self, data: InstanceStateData) -> None:
        async with self._lock:
            await self._on_state(data)

    async def show_qr(self, qr: str) -> None:
        """Post ``qr`` as the current QR code (unless it is the one shown) and retire the older ones."""
        async with self._lock:
            await self._show_qr(qr)

    async def _on_state(self, data: InstanceStateData) -> None:
        if data.state == "qr_ready" and data.qr and not data.problem:
            await self._show_qr(data.qr)
            return
        post = state_post(data)
        if post is None:
            return
        state = await self.room.state()
        if post.key == state.last_state:
            return  # the same state again (a flap's repeat, a replay): said already
        if post.key == "connecting" and not state.last_state.startswith(_LOST_CONNECTION):
            state.last_state = post.key  # pairing under way: nothing worth a post
            await self.room.save()
            return
        if data.state in ("connected", "loggedout") or data.problem:
            await self.expire_qr_codes()
        await self.room.post(post.text)
        state.last_state = post.key
        await self.room.save()

    async def _show_qr(self, qr: str) -> None:
        state = await self.room.state()
        key = _qr_key(qr)
        if state.last_state == key:
            return
        message_id = await self.room.post_image(qr_png(qr), QR_FILE_NAME, QR_CAPTION)
        state = await self.room.state()  # a re-created conversation starts a new list
        older = [i for i in state.qr_message_ids if i != message_id]
        state.qr_message_ids = [message_id]
        state.last_state = key
        await self.room.save()
        await self._retire(older)

    async def expire_qr_codes(self) -> None:
        state = await self.room.state()
        older, state.qr_message_ids = state.qr_message_ids, []
        if older:
            await self.room.save()
            await self._retire(older)

    async def _retire(self, message_ids: list[int]) -> None:
        refused = False
        for message_id in message_ids:
            try:
                await self.room.delete(message_id)
            except ChatwootError as exc:
                refused = True
                log.info(
                    "an expired QR code could not be deleted",
                    extra={"integration_id": self.room.integration_id, "error": str(exc)},
                )
        if refused:
            await self.room.post(QR_EXPIRED)
