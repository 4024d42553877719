"""whatsmeow connection events → ``ConnectionEvent`` (the documented connection states)."""

from __future__ import annotations

from typing import Any

from ryze.engines.base import ConnectionEvent, ConnectionState, Party
from ryze.engines.neonize._neonize import pb

_F = pb.ConnectFailureReason
_LOGOUT_REASONS = frozenset({_F.LOGGED_OUT, _F.MAIN_DEVICE_GONE, _F.UNKNOWN_LOGOUT})
_BAN_TEXT = {
    pb.TemporaryBan.SEND_TO_TOO_MANY_PEOPLE: "sent to too many people",
    pb.TemporaryBan.BLOCKED_BY_USERS: "blocked by too many users",
    pb.TemporaryBan.CREATED_TOO_MANY_GROUPS: "created too many groups",
    pb.TemporaryBan.SENT_TOO_MANY_SAME_MESSAGE: "sent the same message too many times",
    pb.TemporaryBan.BROADCAST_LIST: "broadcast list abuse",
}


def _reason_name(reason: int) -> str:
    try:
        return str(_F.Name(reason)).lower()
    except ValueError:
        return f"reason {reason}"


def connected(_event: Any, me: Party | None) -> ConnectionEvent:
    return ConnectionEvent(state=ConnectionState.CONNECTED, me=me)


def logged_out(event: Any) -> ConnectionEvent:
    where = "on connect" if event.OnConnect else "from the phone"
    reason = _reason_name(event.Reason) if event.Reason else "logged_out"
    return ConnectionEvent(state=ConnectionState.LOGGED_OUT, reason=f"Logged out {where} ({reason})")


def temporary_ban(event: Any) -> ConnectionEvent:
    why = _BAN_TEXT.get(event.Code, "unknown reason")
    expires = f"; expires in {event.Expire} s" if event.Expire else ""
    return ConnectionEvent(state=ConnectionState.TEMP_BANNED, reason=f"Temporarily banned: {why}{expires}")


def connect_failure(event: Any) -> ConnectionEvent:
    text = f"{_reason_name(event.Reason)}{': ' + event.Message if event.Message else ''}"
    if event.Reason in _LOGOUT_REASONS:
        return ConnectionEvent(state=ConnectionState.LOGGED_OUT, reason=f"Connect failure: {text}")
    if event.Reason == _F.TEMP_BANNED:
        return ConnectionEvent(state=ConnectionState.TEMP_BANNED, reason=f"Connect failure: {text}")
    return ConnectionEvent(state=ConnectionState.DISCONNECTED, reason=f"Connect failure: {text}")


def disconnected(_event: Any) -> ConnectionEvent:
    # whatsmeow reconnects by itself after an unexpected disconnect; Connected follows if it can.
    return ConnectionEvent(
        state=ConnectionState.DISCONNECTED, reason="Connection to WhatsApp lost; reconnecting"
    )


def keepalive_timeout(event: Any) -> ConnectionEvent:
    return ConnectionEvent(
        state=ConnectionState.CONNECTING,
        reason=f"WhatsApp did not answer keep-alive pings ({event.ErrorCount} failed)",
    )


def keepalive_restored(_event: Any, me: Party | None) -> ConnectionEvent:
    return ConnectionEvent(state=ConnectionState.CONNECTED, me=me)


def stream_replaced(_event: Any) -> ConnectionEvent:
    return ConnectionEvent(
        state=ConnectionState.DISCONNECTED,
        reason="Another client connected with this session (stream replaced)",
    )


def client_outdated(_event: Any) -> ConnectionEvent:
    return ConnectionEvent(
        state=ConnectionState.DISCONNECTED, reason="WhatsApp rejected the client version (update neonize)"
    )


def translate_connection(event: Any, *, me: Party | None = None) -> ConnectionEvent | None:
    """``None`` for events that do not change the connection state."""
    if isinstance(event, pb.Connected):
        return connected(event, me)
    if isinstance(event, pb.KeepAliveRestored):
        return keepalive_restored(event, me)
    handler = _BY_TYPE.get(type(event))
    return handler(event) if handler is not None else None


_BY_TYPE = {
    pb.LoggedOut: logged_out,
    pb.TemporaryBan: temporary_ban,
    pb.ConnectFailure: connect_failure,
    pb.Disconnected: disconnected,
    pb.KeepAliveTimeout: keepalive_timeout,
    pb.StreamReplaced: stream_replaced,
    pb.ClientOutdated: client_outdated,
}
