"""The self-check as an operator sees it: activate, then read ``checks`` in GET /api/chatwoot/list."""

from __future__ import annotations

from typing import Any

import pytest

from ryze.devstack import LocalSystem

pytestmark = pytest.mark.e2e


async def test_activation_runs_the_self_check_and_the_list_shows_it(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-selfcheck")
    assert created["chatwoot"]["status"] == "active"

    async def checked() -> dict[str, Any] | None:
        info: dict[str, Any] = await system.api("GET", "/api/chatwoot/list/e2e-selfcheck", expect=200)
        return info if info.get("checks") else None

    info = await system.wait_for(checked, what="the activation's self-check in GET /api/chatwoot/list")
    report = info["checks"]
    assert report["trigger"] == "activation" and report["ran_at"].endswith("Z")
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert list(statuses) == ["token_admin", "inbox", "signing_secret", "webhook_host", "round_trip"]
    # the devstack activates with the emulator's administrator token and its own API inbox
    assert statuses["token_admin"] == statuses["inbox"] == statuses["signing_secret"] == "ok"
    assert all(c["message"] for c in report["checks"])
    # the documented fields are all still there, and the token is not
    assert info["chatwoot_inbox_id"] == created["chatwoot"]["chatwoot_inbox_id"]
    assert {"instance_name", "status", "bridge_integration_id", "last_error", "created_at"} <= set(info)
    assert "chatwoot_api_token" not in info
