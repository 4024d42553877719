"""The instance-control actions of the link (``connect``, ``logout``, ``reconnect``, ``status``),
as the command handler uses them.

Each call is one command with a fresh id: these are not idempotent sends (RyzeAPI does not claim
them), and an agent who types a command again means it again. A RyzeAPI older than these
actions answers an error result for the id (or, older still, an ``error`` frame, and the wait ends
at the budget): both become :class:`ControlUnavailable` with words for the agent.
"""

from __future__ import annotations

import uuid
from typing import Any

from ryze.bridge.link.client import LinkUnavailable
from ryze.bridge.relay.context import CommandLink
from ryze.protocol import CommandAction, CommandFrame, ConnectData

CONTROL_BUDGET = 70.0  # RyzeAPI's connect waits up to 60 s for WhatsApp's QR code


class ControlUnavailable(Exception):
    """The action could not be done; the message says why, for the agent."""


class InstanceLink:
    def __init__(self, link: CommandLink, integration_id: str, *, budget: float = CONTROL_BUDGET) -> None:
        self._link = link
        self._integration_id = integration_id
        self._budget = budget

    async def status(self) -> ConnectData:
        return ConnectData.model_validate(await self._call(CommandAction.STATUS, {}) or {"state": "unknown"})

    async def connect(self, pair_number: str | None = None) -> ConnectData:
        params = {"pairNumber": pair_number} if pair_number else {}
        return ConnectData.model_validate(
            await self._call(CommandAction.CONNECT, params) or {"state": "unknown"}
        )

    async def logout(self) -> None:
        await self._call(CommandAction.LOGOUT, {})

    async def reconnect(self) -> None:
        await self._call(CommandAction.RECONNECT, {})

    async def _call(self, action: CommandAction, params: dict[str, Any]) -> dict[str, Any] | None:
        frame = CommandFrame(
            id=f"ctl-{self._integration_id}-{action.value}-{uuid.uuid4().hex[:12]}",
            action=action,
            params=params,
        )
        if not self._link.connected:  # say so now rather than after the whole budget
            raise ControlUnavailable("The link to RyzeAPI is down; try again once it is back.")
        try:
            result = await self._link.command(frame, budget=self._budget)
        except LinkUnavailable as exc:
            raise ControlUnavailable(
                f"RyzeAPI did not answer ({exc}). If the link is up, RyzeAPI may be older than this "
                "bridge and not know instance control: use GET /api/instance/connect meanwhile."
            ) from exc
        if not result.ok:
            error = result.error or "no reason given"
            if "does not know the command action" in error:
                raise ControlUnavailable(
                    f"This RyzeAPI is older than the bridge and cannot do `{action.value}`: upgrade "
                    "RyzeAPI, or use its HTTP API (GET /api/instance/connect) meanwhile."
                )
            raise ControlUnavailable(f"RyzeAPI could not {action.value}: {error}")
        return result.data
