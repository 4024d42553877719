"""Extension points instance creation and deletion call (the Chatwoot module implements them)."""

from __future__ import annotations

from typing import Any, Protocol

from ryze.api.records import InstanceRecord


class InstanceHooks(Protocol):
    async def on_created(self, instance: InstanceRecord, body: dict[str, Any]) -> dict[str, Any]:
        """Act on the creation body (e.g. its ``chatwoot*`` block). The returned keys are merged
        into the creation response (e.g. ``{"chatwoot": {...}}``). Must never raise."""
        ...

    async def on_deleting(self, instance: InstanceRecord) -> None:
        """Tear down what the hook set up, before the instance's rows go. Must never raise."""
        ...
