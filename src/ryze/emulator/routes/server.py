"""``GET /api`` (the running version) and ``GET /api/v1/profile`` (the token's user and roles)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import errors
from ..auth import token_of
from ..errors import json_response

if TYPE_CHECKING:
    from ..app import ChatwootEmulator


async def api_index(request: Request) -> Response:
    """``app/controllers/api_controller.rb#index``: public (no current user, no subscription check),
    ``{"version": Chatwoot.config[:version], "timestamp": "<UTC, :db format>"}``."""
    emu: ChatwootEmulator = request.app.state.emulator
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    return json_response({"version": emu.version, "timestamp": stamp})


async def profile(request: Request) -> Response:
    """``Api::V1::ProfilesController#show`` → ``app/views/api/v1/models/_user.json.jbuilder``: the
    user, its ``access_token``, the active account's ``role`` and every membership in ``accounts``
    with its own ``role``. Not account-scoped: only the token is checked."""
    emu: ChatwootEmulator = request.app.state.emulator
    token = token_of(request)
    if token is None:
        return errors.not_signed_in().response()
    user = emu.state.users_by_token.get(token)
    if user is None:
        return errors.invalid_token().response()
    memberships = [(a, a.roles[user.id]) for a in emu.state.accounts.values() if user.id in a.roles]
    first = memberships[0] if memberships else None
    return json_response(
        {
            "access_token": user.access_token,
            "account_id": first[0].id if first else None,
            "available_name": user.name,
            "avatar_url": "",
            "confirmed": True,
            "display_name": None,
            "email": user.email,
            "id": user.id,
            "name": user.name,
            "provider": "email",
            "pubsub_token": f"pubsub-{user.id}",
            "role": first[1] if first else None,
            "type": "User",
            "uid": user.email,
            "ui_settings": {},
            "accounts": [
                {
                    "id": account.id,
                    "name": account.name,
                    "status": "active",
                    "active_at": None,
                    "role": role,
                    "permissions": [role],
                    "availability": "online",
                    "availability_status": "online",
                    "auto_offline": True,
                }
                for account, role in memberships
            ],
        }
    )


routes = [
    Route("/api", api_index, methods=["GET"]),
    Route("/api/v1/profile", profile, methods=["GET"]),
]
