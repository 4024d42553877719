"""``ryze bridge``: run the bridge with uvicorn (uvloop + httptools when installed)."""

from __future__ import annotations

import uvicorn

from ryze.bridge.app import create_app
from ryze.bridge.settings import BridgeSettings
from ryze.common import logging as ryze_logging
from ryze.common.lifespan import freeze_gc_after_startup


def serve(settings: BridgeSettings | None = None) -> None:
    settings = settings or BridgeSettings()
    ryze_logging.configure(settings.log_level, service="bridge")
    app = create_app(settings)
    freeze_gc_after_startup(app)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="auto",
        http="auto",
        ws="none",
        lifespan="on",
    )
    uvicorn.Server(config).run()
