"""Wires the Chatwoot module into the RyzeAPI app (filled in by the Chatwoot module work)."""

from __future__ import annotations

from typing import Any


def install(app: Any, services: Any) -> None:
    """Register the module's routes, bus subscriptions and instance hooks on ``app``."""
    del app, services
