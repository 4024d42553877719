"""``ryze bridge``: run the bridge with uvicorn (uvloop + httptools when installed)."""

from __future__ import annotations

from ryze.bridge.app import create_app
from ryze.bridge.settings import BridgeSettings
from ryze.common import logging as ryze_logging
from ryze.common.lifespan import freeze_gc_after_startup
from ryze.common.serving import serve as serve_app


def serve(settings: BridgeSettings | None = None) -> None:
    settings = settings or BridgeSettings()
    ryze_logging.configure(settings.log_level, service="bridge")
    app = create_app(settings)
    freeze_gc_after_startup(app)
    serve_app(
        app,
        host=settings.host,
        port=settings.port,
        service="bridge",
        loop="auto",
        http="auto",
        ws="none",
        lifespan="on",
    )
