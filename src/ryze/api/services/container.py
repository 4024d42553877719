"""Everything a request or a module needs, built once per app (``app.state.services``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ryze.api.db import Database
from ryze.api.events import EventBus
from ryze.api.metrics import ApiMetrics
from ryze.api.services.hooks import InstanceHooks
from ryze.api.settings import ApiSettings
from ryze.common.crypto import SecretBox
from ryze.engines.base import Engine

if TYPE_CHECKING:
    from ryze.api.ratelimit import RateLimiter
    from ryze.api.services.accounts import AccountService
    from ryze.api.services.instances import InstanceService
    from ryze.api.services.messaging import MessagingService
    from ryze.api.services.sessions import SessionManager

LifecycleHook = Callable[[], Awaitable[None]]


@dataclass
class ApiServices:
    settings: ApiSettings
    db: Database
    secret_box: SecretBox
    engine: Engine
    sessions: SessionManager
    messaging: MessagingService
    bus: EventBus
    instances: InstanceService
    accounts: AccountService
    rate_limiter: RateLimiter
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    instance_hooks: list[InstanceHooks] = field(default_factory=list)
    on_startup: list[LifecycleHook] = field(default_factory=list)
    on_shutdown: list[LifecycleHook] = field(default_factory=list)
