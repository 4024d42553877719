"""A stand-in for neonize's client that behaves like the Go side: callbacks arrive on another
thread, ``connect()`` returns a task that runs until ``stop()``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neonize.exc import NeonizeError
from neonize.proto import Neonize_pb2 as pb
from parity import ME, ME_LID, TS_MS, jid

from ryze.engines.base import DomainEvent
from ryze.engines.neonize import NeonizeEngine

Script = Callable[["FakeClient"], None]


class FakeClient:
    def __init__(
        self,
        name: str,
        *,
        uuid: str,
        executor: Any,
        on_event: Callable[[bytes, int], None],
        on_qr: Callable[[str], None],
        on_login_status: Callable[[str], None],
        script: Script | None = None,
        fail_with: str | None = None,
    ) -> None:
        self.name = name
        self.uuid = uuid
        self.executor = executor
        self.on_event = on_event
        self.on_qr = on_qr
        self.on_login_status = on_login_status
        self.script = script
        self.fail_with = fail_with
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.qr_sent = threading.Event()
        self.stopped = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.send_error: Exception | None = None
        # Like a Neonize() call stuck in Go after an expired QR: Stop does not make it return.
        self.ignores_stop = False
        self.released = asyncio.Event()
        # GetGroupInfo answers: group JID -> subject; a group not listed fails like WhatsApp's 404
        self.groups: dict[str, str] = {}
        # the contact store (phone book): JID -> FullName; and profile pictures: JID -> (id, URL),
        # a JID not listed answering whatsmeow's ErrProfilePictureUnauthorized
        self.contact = FakeContactStore(self)
        self.pictures: dict[str, tuple[str, str]] = {}

    # --- "Go" side: runs on its own thread, like goneonize's callbacks --------------------------

    def emit(self, code: int, event: Any) -> None:
        self.on_event(event.SerializePartialToString(), code)  # Go fills every required field

    def qr(self, code: str) -> None:
        self.qr_sent.set()  # Go registers the client before the first QR callback
        self.on_qr(code)

    def connected(self) -> None:
        self.emit(3, pb.Connected(status=True))

    async def _run(self) -> None:
        if self.script is not None:
            thread = threading.Thread(target=self.script, args=(self,), daemon=True)
            thread.start()
        if self.fail_with is not None:
            raise NeonizeError(self.fail_with)
        await self.stopped.wait()
        if self.ignores_stop:
            await self.released.wait()

    # --- NewAClient surface used by the session -------------------------------------------------

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    def called(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(a, k) for n, a, k in self.calls if n == name]

    async def connect(self) -> asyncio.Task[None]:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self.task

    async def stop(self) -> None:
        self._record("stop")
        self.stopped.set()

    async def PairPhone(self, phone: str, show_push_notification: bool) -> str:
        # neonize crashes the process when PairPhone precedes the first QR: make that a failure.
        assert self.qr_sent.is_set(), "PairPhone called before the first QR code"
        self._record("PairPhone", phone, show_push_notification)
        return "ABCD1234"

    async def get_me(self) -> Any:
        return pb.Device(JID=jid(ME, 7), LID=jid(ME_LID), PushName="Me")

    async def send_message(self, to: Any, message: Any) -> Any:
        self._record("send_message", to, message)
        if self.send_error is not None:
            raise self.send_error
        return pb.SendResponse(ID=f"3EB0SENT{len(self.calls):04d}", Timestamp=TS_MS)

    async def upload(self, data: bytes, media_type: Any) -> Any:
        self._record("upload", data, media_type)
        return pb.UploadResponse(
            url="https://mmg.whatsapp.net/up",
            DirectPath="/v/up",
            MediaKey=b"m" * 32,
            FileEncSHA256=b"e" * 32,
            FileSHA256=b"s" * 32,
            FileLength=len(data),
        )

    async def mark_read(self, *ids: str, chat: Any, sender: Any, receipt: Any) -> None:
        self._record("mark_read", *ids, chat=chat, sender=sender, receipt=receipt)

    async def send_chat_presence(self, to: Any, state: Any, media: Any) -> None:
        self._record("send_chat_presence", to, state, media)

    async def download_any(self, message: Any) -> bytes:
        self._record("download_any", message)
        return b"media-bytes"

    async def get_group_info(self, group: Any) -> Any:
        key = f"{group.User}@{group.Server}"
        self._record("get_group_info", key)
        if key not in self.groups:
            raise NeonizeError("failed to get group info: item-not-found (404)")
        return pb.GroupInfo(JID=group, GroupName=pb.GroupName(Name=self.groups[key]))

    async def get_profile_picture(self, who: Any, extra: Any) -> Any:
        key = f"{who.User}@{who.Server}"
        self._record("get_profile_picture", key, extra.ExistingID)
        if key not in self.pictures:
            raise NeonizeError("failed to get profile picture: hidden from you (not-authorized)")
        picture_id, url = self.pictures[key]
        if extra.ExistingID == picture_id:
            return pb.ProfilePictureInfo()  # whatsmeow: nil, nothing changed
        return pb.ProfilePictureInfo(URL=url, ID=picture_id, Type="image")

    async def logout(self) -> None:
        self._record("logout")


class FakeContactStore:
    """``client.contact``: whatsmeow's contact store (``store.ContactInfo``)."""

    def __init__(self, client: FakeClient) -> None:
        self._client = client
        self.saved: dict[str, str] = {}

    async def get_contact(self, user: Any) -> Any:
        key = f"{user.User}@{user.Server}"
        self._client._record("get_contact", key)
        name = self.saved.get(key)
        return pb.ContactInfo(Found=name is not None, FullName=name or "", PushName="")


class FakeFactory:
    """``client_factory`` for the engine: every connection attempt gets the next script."""

    def __init__(
        self, *scripts: Script | None, fail_with: str | None = None, ignores_stop: bool = False
    ) -> None:
        self.scripts = list(scripts)
        self.fail_with = fail_with
        self.ignores_stop = ignores_stop
        self.clients: list[FakeClient] = []

    def __call__(self, name: str, **kwargs: Any) -> FakeClient:
        script = self.scripts.pop(0) if self.scripts else None
        client = FakeClient(name, script=script, fail_with=self.fail_with, **kwargs)
        client.ignores_stop = self.ignores_stop
        self.clients.append(client)
        return client

    @property
    def last(self) -> FakeClient:
        return self.clients[-1]


class Recorder:
    """An event sink that records what it receives."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    async def __call__(self, event: DomainEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def make_engine(data_dir: Path, factory: FakeFactory, **kwargs: Any) -> NeonizeEngine:
    return NeonizeEngine(data_dir, client_factory=factory, expected_sessions=2, headroom=4, **kwargs)


def stored_login(client: FakeClient) -> None:
    """Script: a stored device connects without a QR code."""
    client.connected()


def shows_qr(*codes: str) -> Script:
    def script(client: FakeClient) -> None:
        for code in codes:
            client.qr(code)

    return script
