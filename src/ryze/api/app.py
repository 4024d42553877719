"""The RyzeAPI application: wiring settings, storage, engine, services, routes and middleware."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI

from ryze.api.bodylimit import BodyLimitMiddleware
from ryze.api.bridge_link import module as chatwoot_module
from ryze.api.db import Database
from ryze.api.errors import error_body, install_error_handlers, install_websocket_not_found
from ryze.api.events import EventBus
from ryze.api.metrics import ApiMetrics, MetricsMiddleware
from ryze.api.openapi import install_openapi
from ryze.api.ratelimit import RateLimiter, RateLimitMiddleware
from ryze.api.routes import health, instances, messages, simulator
from ryze.api.services.accounts import AccountService
from ryze.api.services.container import ApiServices
from ryze.api.services.ingest import InboundPipeline
from ryze.api.services.instances import InstanceService
from ryze.api.services.media import build_fetcher
from ryze.api.services.messaging import MessagingService
from ryze.api.services.sessions import SessionManager
from ryze.api.services.store import MessageStore
from ryze.api.services.voice import VoiceTranscoder
from ryze.api.settings import ApiSettings
from ryze.common.bodytimeout import BodyTimeoutMiddleware
from ryze.common.crypto import SecretBox
from ryze.common.database import is_sqlite
from ryze.common.files import private_dir
from ryze.common.logging import register_secret
from ryze.engines.base import Engine, ReportsThreads
from ryze.engines.simulated import Inbound, SimulatedEngine

log = logging.getLogger(__name__)


def build_engine(settings: ApiSettings) -> Engine:
    """The configured WhatsApp engine (neonize is imported only when chosen: it loads a Go runtime)."""
    if settings.whatsapp_engine == "simulated":
        delay = settings.simulator_auto_connect_seconds
        return SimulatedEngine(
            auto_connect_seconds=delay if delay >= 0 else None,
            wire=settings.simulator_wire,
            default_history=_simulator_history(settings.simulator_history_file),
            outbox_log=Path(settings.simulator_outbox_log) if settings.simulator_outbox_log else None,
        )
    neonize: Any = importlib.import_module("ryze.engines.neonize")
    # whatsmeow keeps its keys in SQLite files under DATA_DIR, or in per-instance schemas of the
    # PostgreSQL database when RyzeAPI itself runs on PostgreSQL.
    pg_url = None if is_sqlite(settings.database_url) else settings.database_url
    engine: Engine = neonize.NeonizeEngine(
        data_dir=settings.data_dir, database_url=pg_url, proxy=settings.whatsapp_proxy or None
    )
    return engine


def _simulator_history(path: str) -> list[Inbound]:
    """The simulated phones' initial history (``SIMULATOR_HISTORY_FILE``); a bad file stops the
    start-up with its reason rather than silently starting without history."""
    if not path:
        return []
    from ryze.api.routes.simulator import history_items  # the control API's own message shape

    return [item.to_inbound() for item in history_items.validate_json(Path(path).read_bytes())]


def build_services(settings: ApiSettings, engine: Engine) -> ApiServices:
    private_dir(settings.data_dir, tighten=True)  # key file, WhatsApp device keys, the default database
    db = Database(settings.database_url)
    secret_box = SecretBox.from_setting(settings.encryption_key, settings.key_file)
    bus = EventBus()
    metrics = ApiMetrics()
    instances_service = InstanceService(db, secret_box, settings)
    store = MessageStore(db)
    pipeline = InboundPipeline(settings, instances_service, store, bus, metrics=metrics)
    sessions = SessionManager(engine, pipeline)
    metrics.watch_threads(engine.thread_counts if isinstance(engine, ReportsThreads) else None)
    return ApiServices(
        settings=settings,
        db=db,
        secret_box=secret_box,
        engine=engine,
        sessions=sessions,
        messaging=MessagingService(
            instances_service,
            sessions,
            store,
            pipeline,
            fetcher=build_fetcher(settings),
            metrics=metrics,
            voice=VoiceTranscoder(settings.voice_ffmpeg, timeout=settings.voice_convert_timeout),
        ),
        bus=bus,
        instances=instances_service,
        accounts=AccountService(db),
        rate_limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_create_per_minute),
        metrics=metrics,
    )


def create_app(settings: ApiSettings, *, engine: Engine | None = None) -> FastAPI:
    for key in settings.encryption_key.split(","):  # each key of a "new,old" rotation list
        register_secret(key.strip())
    services = build_services(settings, engine or build_engine(settings))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.db.upgrade()
        await services.sessions.restore(await services.instances.all(), services.instances)
        for hook in services.on_startup:
            await hook()
        log.info(
            "ryzeapi started",
            extra={"engine": services.engine.name, "bridge_enabled": settings.bridge_enabled},
        )
        try:
            yield
        finally:
            for hook in reversed(services.on_shutdown):
                await hook()
            await services.sessions.aclose()
            await services.messaging.store.aclose()
            await services.db.aclose()

    app = FastAPI(
        title="RyzeAPI",
        version="0.1.0",
        description="Self-hosted WhatsApp HTTP API. Auth: header `token` (or `Authorization: Bearer`).",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.services = services
    install_error_handlers(app)
    install_websocket_not_found(app)
    install_openapi(app)
    app.include_router(health.router)
    app.include_router(instances.router)
    app.include_router(messages.router)
    if isinstance(services.engine, SimulatedEngine):
        app.include_router(simulator.router)
    chatwoot_module.install(app, services)
    # The middleware added last runs first: the metrics count every answer, the rate limiter wraps
    # the rest (its headers reach every response, the 413 included), the body limit guards the routes.
    # Innermost: the body must arrive in time; the body limit around it counts what it reads.
    app.add_middleware(
        BodyTimeoutMiddleware,
        timeout=settings.request_body_timeout,
        error_body=lambda message: orjson.dumps(error_body(message)),
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitMiddleware, limiter=services.rate_limiter)
    # Outermost: it sees the rate limiter's 429s and the body limit's 413s too.
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    return app
