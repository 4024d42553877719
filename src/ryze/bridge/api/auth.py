"""Bearer ``BRIDGE_TOKEN`` on the service API (constant-time compare)."""

from __future__ import annotations

import hmac

from fastapi import Request

from ryze.bridge.errors import BridgeProblem
from ryze.bridge.services import BridgeServices
from ryze.protocol import BridgeFailure, FailureKind


def services(request: Request) -> BridgeServices:
    value: BridgeServices = request.app.state.bridge
    return value


async def require_token(request: Request) -> None:
    expected = services(request).settings.token
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    ok = (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.encode(), expected.encode())
    )
    if not ok:
        raise BridgeProblem(
            401, BridgeFailure(kind=FailureKind.UNAUTHORIZED, message="missing or wrong bridge token")
        )
