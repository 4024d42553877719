"""Instance control over the bridge link: ``connect`` (QR or pairing code), ``logout``,
``reconnect``, ``status`` — what the connection conversation's commands ask of RyzeAPI.

These are not messaging: nothing is sent to a chat, so they are not claimed as idempotent sends
(``commands.py``). Each runs on the same session/engine seam ``GET /api/instance/connect`` uses
(``api/routes/instances.py``); a repeat is harmless (a second ``connect`` returns the same pairing,
a second ``logout`` finds nothing to log out).
"""

from __future__ import annotations

import logging
import re

from pydantic import ValidationError

from ryze.api.records import InstanceRecord
from ryze.api.services.instances import InstanceService
from ryze.api.services.sessions import SessionManager
from ryze.engines.base import ConnectionState, EngineError
from ryze.protocol import CommandAction, CommandFrame, ConnectData, ConnectParams, ResultFrame

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 60.0  # as the public connect route: the engine never hangs past it
_PAIR_NUMBER = re.compile(r"^[0-9]{8,15}\Z", re.ASCII)
_PAIR_SEPARATORS = re.compile(r"[\s-]")


def _digits(jid: str | None) -> str | None:
    if not jid:
        return None
    user = jid.split("@", 1)[0].split(":", 1)[0]
    return user if user.isdigit() else None


class InstanceControl:
    def __init__(self, instances: InstanceService, sessions: SessionManager) -> None:
        self._instances = instances
        self._sessions = sessions

    async def run(self, instance: str, frame: CommandFrame) -> ResultFrame:
        record = await self._instances.get(instance)
        if record is None:
            return ResultFrame(id=frame.id, ok=False, error=f"instance {instance} does not exist")
        try:
            return await self._dispatch(record, frame)
        except ValidationError as exc:
            first = exc.errors()[0]
            return ResultFrame(id=frame.id, ok=False, error=f"invalid params: {first['msg']}")
        except EngineError as exc:
            return ResultFrame(id=frame.id, ok=False, error=exc.message, retryable=exc.retryable)

    async def _status(self, record: InstanceRecord) -> ConnectData:
        session = self._sessions.peek(record.name)
        me = session.me if session is not None else None
        state = self._sessions.state_of(record)
        connected = state == ConnectionState.CONNECTED.value
        return ConnectData(
            state=state,
            number=_digits(me.jid if me else record.number_jid) if connected else None,
            name=(me.name if me else record.profile_name) if connected else None,
        )

    async def _dispatch(self, record: InstanceRecord, frame: CommandFrame) -> ResultFrame:
        ok = ResultFrame(id=frame.id, ok=True)
        match frame.action:
            case CommandAction.STATUS:
                return ok.model_copy(
                    update={"data": (await self._status(record)).model_dump(exclude_none=True)}
                )
            case CommandAction.CONNECT:
                params = ConnectParams.model_validate(frame.params)
                number = None
                if params.pairNumber:
                    number = re.sub(r"[\s+\-()]", "", params.pairNumber)
                    if not _PAIR_NUMBER.match(number):
                        return ResultFrame(
                            id=frame.id,
                            ok=False,
                            error="invalid number: use the phone number with country code, digits only",
                        )
                session = await self._sessions.get(record)
                result = await session.connect(pair_number=number, timeout=CONNECT_TIMEOUT)
                if result.state == ConnectionState.CONNECTED:
                    data = await self._status(record)
                else:
                    code = _PAIR_SEPARATORS.sub("", result.pairing_code) if result.pairing_code else None
                    data = ConnectData(state=result.state.value, qr=result.qr, pairingCode=code)
                return ok.model_copy(update={"data": data.model_dump(exclude_none=True)})
            case CommandAction.LOGOUT:
                session = await self._sessions.get(record)
                await session.logout()
                log.info("instance logged out by the bridge", extra={"instance": record.name})
                return ok
            case CommandAction.RECONNECT:
                session = await self._sessions.get(record)
                await session.disconnect()
                result = await session.connect(timeout=CONNECT_TIMEOUT)
                data = ConnectData(state=result.state.value, qr=result.qr)
                return ok.model_copy(update={"data": data.model_dump(exclude_none=True)})
            case _:
                return ResultFrame(
                    id=frame.id, ok=False, error=f"{frame.action.value} is not a control action"
                )
