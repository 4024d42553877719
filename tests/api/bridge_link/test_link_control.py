"""Instance control over the bridge link (``connect``, ``status``, ``logout``, ``reconnect``),
RyzeAPI with the simulated engine, a real WebSocket; and a newer bridge's unknown action."""

from __future__ import annotations

import asyncio
from typing import Any

from .fake_bridge import FakeBridge
from .harness import Ryze
from .test_link import LinkClient, link
from .test_routes import activate

WAIT = 10.0  # seconds any one frame may take (a bound, not a timing assertion)


async def _next(client: LinkClient) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        return await client.recv()


async def _command(client: LinkClient, command_id: str, action: str, **params: Any) -> dict[str, Any]:
    """The command's result; the events that arrive meanwhile are acked and kept in ``seen``."""
    await client.send({"type": "command", "id": command_id, "action": action, "params": params})
    while True:
        frame = await _next(client)
        if frame["type"] == "event":
            await client.send({"type": "ack", "seq": frame["seq"]})
            if frame["event"]["event"] == "instance.state":
                _seen.setdefault(id(client), []).append(frame["event"]["data"])
        elif frame["type"] == "result" and frame["id"] == command_id:
            return frame


_seen: dict[int, list[dict[str, Any]]] = {}


async def _states(client: LinkClient, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = _seen.pop(id(client), [])
    while len(out) < count:
        frame = await _next(client)
        if frame["type"] == "event" and frame["event"]["event"] == "instance.state":
            await client.send({"type": "ack", "seq": frame["seq"]})
            out.append(frame["event"]["data"])
    if len(out) > count:  # keep the rest for the next call
        _seen[id(client)] = out[count:]
    return out[:count]


async def test_pairing_and_logout_through_the_link(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze_lite.new_instance("desk")
    assert (await activate(ryze_lite, "desk")).status_code == 201
    async with link(ryze_lite, "desk", fake_bridge.token) as ws:
        client = LinkClient(ws)
        await client.resume(0)
        status = await _command(client, "c1", "status")
        assert status["ok"] is True and status["data"]["state"] == "disconnected"

        qr = await _command(client, "c2", "connect")
        assert qr["ok"] is True and qr["data"]["state"] == "qr_ready" and qr["data"]["qr"]
        # the QR code is on the instance.state event too, for the bridge to show while it rotates
        states = await _states(client, 2)
        assert [s["state"] for s in states] == ["connecting", "qr_ready"]
        assert states[1]["qr"] == qr["data"]["qr"]

        paired = await _command(client, "c3", "connect", pairNumber="+55 11 98888-7777")
        code = paired["data"]["pairingCode"]
        assert len(code) == 8 and "-" not in code
        bad = await _command(client, "c4", "connect", pairNumber="12")
        assert bad["ok"] is False and "invalid number" in bad["error"]

        session = ryze_lite.engine.session("desk")
        assert session is not None
        await session.scan(push_name="Desk")
        [connected] = await _states(client, 1)
        assert connected == {"state": "connected", "number": "5511988887777", "name": "Desk"}
        status = await _command(client, "c5", "status")
        assert status["data"] == {"state": "connected", "number": "5511988887777", "name": "Desk"}

        assert (await _command(client, "c6", "logout"))["ok"] is True
        [logged_out] = await _states(client, 1)
        assert logged_out["state"] == "loggedout"
        assert ryze_lite.engine.logins.get("desk") is None


async def test_passkey_and_qr_rotation_reach_the_link(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze_lite.new_instance("desk")
    assert (await activate(ryze_lite, "desk")).status_code == 201
    async with link(ryze_lite, "desk", fake_bridge.token) as ws:
        client = LinkClient(ws)
        await client.resume(0)
        first = (await _command(client, "c1", "connect"))["data"]["qr"]
        await _states(client, 2)
        session = ryze_lite.engine.session("desk")
        assert session is not None
        second = await session.rotate_qr()
        [rotated] = await _states(client, 1)
        assert rotated["qr"] == second != first
        await session.ask_passkey()
        [passkey] = await _states(client, 1)
        assert passkey["problem"] == "passkey_required" and "passkey" in passkey["reason"]
        # a pairing code still links the device
        await _command(client, "c2", "connect", pairNumber="5511988887777")
        await session.scan()
        [connected] = await _states(client, 1)
        assert connected["state"] == "connected"


async def test_reconnect_through_the_link(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze_lite.new_instance("desk")
    assert (await activate(ryze_lite, "desk")).status_code == 201
    await ryze_lite.connect_phone("desk")
    async with link(ryze_lite, "desk", fake_bridge.token) as ws:
        client = LinkClient(ws)
        await client.resume(0)
        result = await _command(client, "c1", "reconnect")
        assert result["ok"] is True and result["data"]["state"] == "connected"
        # the pairing's own states come first (logged before the link), then the reconnect's
        states = [s["state"] for s in await _states(client, 6)]
        assert states == ["connecting", "qr_ready", "connected", "disconnected", "connecting", "connected"]


async def test_an_unknown_action_is_answered_with_an_error_result(
    ryze_lite: Ryze, fake_bridge: FakeBridge
) -> None:
    await ryze_lite.new_instance("desk")
    assert (await activate(ryze_lite, "desk")).status_code == 201
    async with link(ryze_lite, "desk", fake_bridge.token) as ws:
        client = LinkClient(ws)
        await client.resume(0)
        result = await _command(client, "future-1", "teleport", where="mars")
        assert result == {
            "type": "result",
            "id": "future-1",
            "ok": False,
            "error": "RyzeAPI does not know the command action 'teleport'",
            "retryable": False,
        }
