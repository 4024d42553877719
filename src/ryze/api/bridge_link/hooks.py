"""Instance lifecycle hooks: inline activation on ``POST /api/instance/new`` and teardown on
``DELETE /api/instance/delete/{instance}``. Neither may fail the instance operation, so both
report instead of raising."""

from __future__ import annotations

import logging
from typing import Any

from ryze.api.bridge_link.errors import ModuleError, gate_closed
from ryze.api.bridge_link.service import ChatwootService
from ryze.api.bridge_link.validation import INLINE_FIELDS, parse_activation
from ryze.api.records import InstanceRecord

log = logging.getLogger(__name__)

INLINE_INTERNAL_ERROR = (
    "chatwoot activation failed on an internal error; call POST /api/chatwoot/set to retry"
)


class ChatwootHooks:
    def __init__(self, service: ChatwootService) -> None:
        self.service = service

    async def on_created(self, instance: InstanceRecord, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("chatwootEnabled"):
            return {}
        try:
            if not self.service.config.enabled:
                raise gate_closed()
            inp = parse_activation(body, instance_name=instance.name, names=INLINE_FIELDS)
            done = await self.service.activate(instance.id, instance.name, inp)
        except ModuleError as exc:
            log.warning(
                "inline chatwoot activation failed; the instance is created without it",
                extra={"instance": instance.name, "status": exc.status, "reason": exc.message},
            )
            return {"chatwoot": {"status": "error", "error": exc.message}}
        except Exception:
            log.exception("inline chatwoot activation failed unexpectedly", extra={"instance": instance.name})
            return {"chatwoot": {"status": "error", "error": INLINE_INTERNAL_ERROR}}
        return {
            "chatwoot": {
                "status": "active",
                "bridge_integration_id": done.bridge_integration_id,
                "chatwoot_inbox_id": done.inbox_id,
            }
        }

    async def on_deleting(self, instance: InstanceRecord) -> None:
        try:
            await self.service.teardown(instance.name)
        except Exception:
            # The instance goes regardless; its row cascades away with it. Report, don't block.
            log.exception("chatwoot teardown failed", extra={"instance": instance.name})
