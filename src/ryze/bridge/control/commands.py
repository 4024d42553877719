"""The commands agents type in the connection conversation (``docs/control-room.md``).

``parse`` reads a message (case-insensitive, a leading ``/`` allowed, extra spaces ignored) into a
:class:`Command`; :class:`CommandHandler` carries it out and posts the answer in the same
conversation. Unknown words get the help text. ``logout`` only asks; ``logout confirm`` within
:data:`LOGOUT_CONFIRM_SECONDS` does it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from ryze.bridge.control.instance import ControlUnavailable, InstanceLink
from ryze.bridge.control.ports import ControlRoom, HistoryResync, SelfCheckRunner
from ryze.bridge.control.status_text import who
from ryze.bridge.control.watch import ConnectionWatch

log = logging.getLogger(__name__)

LOGOUT_CONFIRM_SECONDS = 120.0
_PAIR_NUMBER = re.compile(r"^[0-9]{8,15}\Z", re.ASCII)

HELP_TEXT = """\
Commands (type them here; upper or lower case):
• `status` — the WhatsApp connection and this inbox's relay
• `qr` — a QR code to link the phone (WhatsApp › Linked devices › Link a device)
• `pair <number>` — a pairing code instead of a QR code (number with country code, e.g. `pair 5511999990000`)
• `reconnect` — drop and re-open the WhatsApp connection
• `logout` — unlink WhatsApp from this inbox (asks you to confirm with `logout confirm`)
• `resync` — import recent WhatsApp history again
• `selfcheck` — check this inbox's set-up (token, webhook, signing secret, round trip)
• `help` — this list
Private notes here are not commands."""

NAMES = ("help", "status", "qr", "pair", "reconnect", "logout", "resync", "selfcheck")


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # one of NAMES, or "unknown"
    argument: str = ""  # what follows the command word (the number of `pair`, `confirm` of `logout`)
    raw: str = ""


def parse(text: str) -> Command:
    words = text.strip().split()
    if not words:
        return Command("unknown", raw=text)
    word = words[0].lower().lstrip("/")
    argument = " ".join(words[1:])
    if word in NAMES:
        return Command(word, argument, text)
    return Command("unknown", argument, text)


def pair_number(argument: str) -> str | None:
    digits = re.sub(r"[\s+\-().]", "", argument)
    return digits if _PAIR_NUMBER.match(digits) else None


StatusLine = Callable[[], str]  # the relay's own state in words (link, status, queues)


class CommandHandler:
    def __init__(
        self,
        *,
        room: ControlRoom,
        instance: InstanceLink,
        watch: ConnectionWatch,
        relay_status: StatusLine,
        selfcheck: SelfCheckRunner | None = None,
        resync: HistoryResync | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.room = room
        self.instance = instance
        self.watch = watch
        self.relay_status = relay_status
        self.selfcheck = selfcheck
        self.resync = resync
        self._clock = clock
        self._logout_asked_at: float | None = None

    async def handle(self, text: str) -> None:
        command = parse(text)
        try:
            answer = await self._answer(command)
        except ControlUnavailable as exc:
            answer = f"⚠️ {exc}"
        if answer:
            await self.room.post(answer)

    async def _answer(self, command: Command) -> str | None:
        if command.name != "logout":
            self._logout_asked_at = None  # any other command cancels a pending logout
        match command.name:
            case "help":
                return HELP_TEXT
            case "status":
                return await self._status()
            case "qr":
                return await self._qr()
            case "pair":
                return await self._pair(command.argument)
            case "reconnect":
                await self.instance.reconnect()
                return "Reconnect requested: the connection changes follow here."
            case "logout":
                return await self._logout(command.argument)
            case "resync":
                if self.resync is None:
                    return "`resync` is not available in this version of the bridge."
                return await self.resync()
            case "selfcheck":
                if self.selfcheck is None:
                    return "`selfcheck` is not available in this version of the bridge."
                return await self.selfcheck()
            case _:
                shown = command.raw.strip()[:40]
                return f"I do not know `{shown}`.\n\n{HELP_TEXT}"

    async def _status(self) -> str:
        try:
            data = await self.instance.status()
        except ControlUnavailable as exc:  # the relay's half is known all the same
            return f"WhatsApp: not known ({exc})\n{self.relay_status()}"
        if data.state == "connected":
            line = f"WhatsApp: connected as {who(data.number, data.name)}."
        else:
            line = f"WhatsApp: {data.state.replace('_', ' ')}."
        return f"{line}\n{self.relay_status()}"

    async def _qr(self) -> str | None:
        data = await self.instance.connect()
        if data.state == "connected":
            connected = who(data.number, data.name)
            return f"Already connected as {connected}; type `logout` first to link another phone."
        if data.qr:
            await self.watch.show_qr(data.qr)
            return None  # the image is the answer
        return "WhatsApp did not hand out a QR code this time; type `qr` again in a moment."

    async def _pair(self, argument: str) -> str:
        number = pair_number(argument)
        if number is None:
            return (
                "Type `pair` and the phone number with country code, digits only: e.g. `pair 5511999990000`."
            )
        data = await self.instance.connect(number)
        if data.state == "connected":
            return f"Already connected as {who(data.number, data.name)}."
        if not data.pairingCode:
            return "WhatsApp did not hand out a pairing code; type `pair` again in a moment, or use `qr`."
        code = data.pairingCode
        shown = f"{code[:4]}-{code[4:]}" if len(code) == 8 else code
        return (
            f"🔢 Pairing code for +{number}: *{shown}*\n"
            "On that phone: WhatsApp › Linked devices › Link a device › Link with phone number instead, "
            "then enter the code."
        )

    async def _logout(self, argument: str) -> str:
        now = self._clock()
        if argument.strip().lower() == "confirm":
            asked, self._logout_asked_at = self._logout_asked_at, None
            if asked is None or now - asked > LOGOUT_CONFIRM_SECONDS:
                return "Nothing to confirm: type `logout` first, then `logout confirm` within 2 minutes."
            await self.instance.logout()
            return "Logging out of WhatsApp…"
        self._logout_asked_at = now
        return (
            "This unlinks WhatsApp from this inbox: no messages arrive until the phone is linked again. "
            "Type `logout confirm` within 2 minutes to go ahead."
        )
