"""Probes and the OpenAPI page."""

from __future__ import annotations

from .harness import Api


async def test_healthz(api: Api) -> None:
    resp = await api.client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"success": True, "status": "ok"}


async def test_readyz(api: Api) -> None:
    resp = await api.client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"success": True, "status": "ready", "engine": "simulated"}


async def test_openapi_documents_the_routes(api: Api) -> None:
    assert (await api.client.get("/docs")).status_code == 200
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/instance/new",
        "/api/instance/list",
        "/api/instance/delete/{instance}",
        "/api/instance/connect/{instance}",
        "/api/message/text/{instance}",
        "/api/message/media/{instance}",
    ):
        assert path in paths
