from __future__ import annotations

from .harness import Ryze


async def test_app_starts(ryze: Ryze) -> None:
    async with ryze.client() as c:
        r = await c.get("/api/chatwoot/list/nope")
    assert r.status_code == 404, r.text
    assert r.json() == {"success": False, "error": {"message": "instance not found"}}
