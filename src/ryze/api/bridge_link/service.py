"""The module's operations as plain async methods: activate (``set`` and inline), describe
(``list``), deactivate (``delete`` and instance teardown), and the event-log feed.

Routes and hooks only translate. Every failure is a ``ModuleError`` carrying the documented status
and message. The Chatwoot token is encrypted before it touches the database (row id as associated
data), only leaves this process in the activation request to the bridge, and is scrubbed from any
error text that could echo it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson

from ryze.api.bridge_link.bridge_client import BridgeClient, BridgeHTTPError, BridgeTransportError
from ryze.api.bridge_link.config import ChatwootConfig
from ryze.api.bridge_link.errors import (
    NO_INTEGRATION,
    NOTHING_TO_DELETE,
    ModuleError,
    chatwoot_timeout,
    classify_failure,
    gate_closed,
    gateway_unreachable,
)
from ryze.api.bridge_link.event_log import EventLog
from ryze.api.bridge_link.link import LinkHub
from ryze.api.bridge_link.repository import Integration, IntegrationRepository
from ryze.api.bridge_link.validation import ActivationInput
from ryze.common.crypto import SecretBox
from ryze.common.logging import MASK, register_secret
from ryze.protocol import ActivateRequest, EventEnvelope, EventName, IntegrationView, MessageSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Activated:
    bridge_integration_id: str
    inbox_id: int
    inbox_name: str


def rfc3339(value: Any) -> str:
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


def link_payload(envelope: EventEnvelope) -> str:
    """The envelope's JSON without ``instanceData.token`` (= ``model_dump_json(exclude_none=True)``
    of the copy without it). Built as a dict for orjson: this runs for every logged event, and two
    model copies plus pydantic's dump cost several times more (``data`` is already JSON-ready)."""
    instance_data = envelope.instanceData
    try:
        return orjson.dumps(
            {
                "event": envelope.event.value,
                "data": envelope.data,
                "instanceData": {"baseUrl": instance_data.baseUrl, "instance": instance_data.instance},
            }
        ).decode()
    except TypeError:  # a value orjson cannot take (never on RyzeAPI's own envelopes): pydantic can
        without_token = envelope.model_copy(
            update={"instanceData": instance_data.model_copy(update={"token": None})}
        )
        return without_token.model_dump_json(exclude_none=True)


def _sent_by_bridge(envelope: EventEnvelope) -> bool:
    message = envelope.data.get("message")
    return isinstance(message, dict) and message.get("source") == MessageSource.CHATWOOT.value


def _scrub(error: ModuleError, secret: str) -> ModuleError:
    if secret and secret in error.message:
        return ModuleError(error.status, error.message.replace(secret, MASK))
    return error


class ChatwootService:
    def __init__(
        self,
        config: ChatwootConfig,
        repo: IntegrationRepository,
        bridge: BridgeClient,
        secret_box: SecretBox,
        event_log: EventLog,
        hub: LinkHub,
    ) -> None:
        self.config = config
        self.repo = repo
        self.bridge = bridge
        self.box = secret_box
        self.log = event_log
        self.hub = hub
        self._integrated: set[str] = set()  # instances with a row: their events are logged
        self._activating: dict[str, int] = defaultdict(int)  # activations in flight per instance
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def load(self) -> None:
        self._integrated = set(await self.repo.instance_names())
        dropped = await self.log.purge_orphans(self._integrated)
        if dropped:
            log.warning(
                "dropped event logs of instances without an integration", extra={"instances": dropped}
            )

    # -- who gets a log and a link --------------------------------------------------------------

    def tracks(self, instance: str) -> bool:
        """Events are logged, and the bridge may link, for instances with an integration row or
        an activation in progress (the bridge dials the link before activate returns)."""
        return instance in self._integrated or self._activating.get(instance, 0) > 0

    async def on_event(self, instance: str, envelope: EventEnvelope) -> None:
        """EventBus handler: commit the event to the log before returning (durable before offered).
        Messages skip it: their event is written in the message's own transaction (``log_payload``
        through the event log's bus writer)."""
        payload = self.log_payload(instance, envelope)
        if payload is not None:
            await self.log.append(instance, payload)

    def log_payload(self, instance: str, envelope: EventEnvelope) -> str | None:
        """The event log row's payload for ``envelope``, or None when it is not offered to the bridge.
        The instance token stays out of the link: the bridge authenticates with BRIDGE_TOKEN."""
        if not self.tracks(instance):
            return None
        if envelope.event is EventName.MESSAGE_EXCHANGE and _sent_by_bridge(envelope):
            # The bridge's own command sent it: the bridge already has it (it maps the WhatsApp id
            # from the command's result), so it is not offered back: no log row, frame, ack or prune.
            return None
        return link_payload(envelope)

    # -- set / inline ---------------------------------------------------------------------------

    def _request(self, name: str, inp: ActivationInput, replace: str | None) -> ActivateRequest:
        return ActivateRequest(
            instance=name,
            ryzeapi_url=self.config.internal_url,
            chatwoot_base_url=inp.base_url,
            chatwoot_account_id=inp.account_id,
            chatwoot_api_token=inp.api_token,
            inbox_name=inp.inbox_name,
            sign_messages=inp.sign_messages,
            ignore_groups=inp.ignore_groups,
            start_as_pending=inp.start_as_pending,
            reopen_resolved=inp.reopen_resolved,
            replace_integration_id=replace,
            history_days=inp.history_days,
        )

    async def _call_activate(self, request: ActivateRequest, inp: ActivationInput) -> IntegrationView:
        try:
            budget = self.config.activate_timeout + self.config.activate_grace
            return await self.bridge.activate(request, budget=budget)
        except BridgeTransportError as exc:
            if exc.kind == "timeout":
                # The bridge spends its time waiting on Chatwoot: the documented 504 row.
                raise chatwoot_timeout(inp.base_url, exc.detail, self.config.activate_timeout) from exc
            raise gateway_unreachable(exc.detail) from exc
        except BridgeHTTPError as exc:
            if exc.failure is None:
                raise gateway_unreachable(exc.detail) from exc
            raise classify_failure(
                exc.failure, base_url=inp.base_url, account_id=inp.account_id, bridge_status=exc.status,
                budget=self.config.activate_timeout,
            ) from exc  # fmt: skip

    async def activate(self, instance_id: str, name: str, inp: ActivationInput) -> Activated:
        if not self.config.enabled:
            raise gate_closed()
        register_secret(inp.api_token)
        async with self._locks[name]:
            existing = await self.repo.get(name)
            self._activating[name] += 1
            try:
                view = await self._call_activate(
                    self._request(name, inp, existing.bridge_integration_id if existing else None), inp
                )
            except ModuleError as exc:
                log.warning(
                    "chatwoot activation failed",
                    extra={
                        "instance": name,
                        "status": exc.status,
                        "reason": _scrub(exc, inp.api_token).message,
                    },
                )
                if existing is None:
                    await self._forget_pending(name)
                raise _scrub(exc, inp.api_token) from None
            finally:
                self._activating[name] -= 1
                if self._activating[name] <= 0:
                    del self._activating[name]
            row_id = existing.id if existing else uuid.uuid4().hex
            await self.repo.save(
                {
                    "id": row_id,
                    "instance_id": instance_id,
                    "instance_name": name,
                    "bridge_integration_id": view.id,
                    "chatwoot_base_url": inp.base_url,
                    "chatwoot_account_id": inp.account_id,
                    "chatwoot_api_token": self.box.encrypt(inp.api_token, row_id),
                    "chatwoot_inbox_id": view.inbox_id or 0,
                    "chatwoot_inbox_name": view.inbox_name or inp.inbox_name,
                    "status": view.status.value,
                    "last_error": view.last_error,
                    "sign_messages": inp.sign_messages,
                    "ignore_groups": inp.ignore_groups,
                    "start_as_pending": inp.start_as_pending,
                    "reopen_resolved": inp.reopen_resolved,
                },
                exists=existing is not None,
            )
            self._integrated.add(name)
        log.info(
            "chatwoot integration activated",
            extra={"instance": name, "bridge_integration_id": view.id, "inbox_id": view.inbox_id},
        )
        return Activated(view.id, view.inbox_id or 0, view.inbox_name or inp.inbox_name)

    async def _forget_pending(self, name: str) -> None:
        """A first activation failed: drop what was logged for it while it ran."""
        if self._activating.get(name, 0) <= 1 and name not in self._integrated:
            await self.hub.disconnect(name)
            await self.log.purge(name)

    def decrypt_token(self, row: Integration) -> str:
        """The stored Chatwoot token (raises ``CryptoError`` if tampered with or moved)."""
        return self.box.decrypt(row.chatwoot_api_token_enc, row.id)

    # -- list -----------------------------------------------------------------------------------

    async def describe(self, name: str) -> dict[str, Any]:
        if not self.config.enabled:
            raise gate_closed()
        row = await self.repo.get(name)
        if row is None:
            raise ModuleError(404, NO_INTEGRATION)
        body: dict[str, Any] = {
            "instance_name": row.instance_name,
            "status": row.status,
            "bridge_integration_id": row.bridge_integration_id,
            "chatwoot_base_url": row.chatwoot_base_url,
            "chatwoot_account_id": row.chatwoot_account_id,
            "chatwoot_inbox_id": row.chatwoot_inbox_id,
            "chatwoot_inbox_name": row.chatwoot_inbox_name,
            "last_error": row.last_error,
            "created_at": rfc3339(row.created_at),
            "sign_messages": row.sign_messages,
            "ignore_groups": row.ignore_groups,
            "start_as_pending": row.start_as_pending,
            "reopen_resolved": row.reopen_resolved,
        }
        try:
            live = await self.bridge.get(row.bridge_integration_id, budget=self.config.status_timeout)
        except BridgeTransportError as exc:
            log.warning("live integration status unavailable", extra={"instance": name, "reason": exc.detail})
            return body
        except BridgeHTTPError as exc:
            if exc.status == 404:
                body["status"] = "error"
                body["last_error"] = (
                    "the integration gateway no longer knows this integration — "
                    f"call POST /api/chatwoot/set/{name} to activate it again"
                )
            else:
                log.warning(
                    "live integration status unavailable", extra={"instance": name, "reason": exc.detail}
                )
            return body
        body["status"] = live.status.value
        body["last_error"] = live.last_error
        if live.checks is not None:  # the bridge's last self-check (additive: docs/selfcheck.md)
            body["checks"] = live.checks.model_dump(mode="json")
        if live.history is not None:  # additive: the history import's progress (bridge.md)
            body["history"] = live.history.model_dump(mode="json")
        if row.chatwoot_inbox_id == 0 and live.inbox_id > 0:
            await self.repo.set_inbox_id(row.id, live.inbox_id)
            body["chatwoot_inbox_id"] = live.inbox_id
        return body

    # -- delete / teardown ----------------------------------------------------------------------

    async def deactivate(self, name: str, *, keep_inbox: bool) -> None:
        if not self.config.enabled:
            raise gate_closed()
        async with self._locks[name]:
            row = await self.repo.get(name)
            if row is None:
                raise ModuleError(404, NOTHING_TO_DELETE)
            await self._remove(row, keep_inbox=keep_inbox)

    async def teardown(self, name: str) -> None:
        """Instance deletion: same as ``delete`` (inbox deleted), silently nothing without a row."""
        async with self._locks[name]:
            row = await self.repo.get(name)
            if row is not None:
                await self._remove(row, keep_inbox=False)
            else:
                await self.log.purge(name)

    async def _remove(self, row: Integration, *, keep_inbox: bool) -> None:
        name = row.instance_name
        self._integrated.discard(name)  # stop logging first: nothing new for a dying link
        if self.config.enabled:
            try:
                await self.bridge.delete(
                    row.bridge_integration_id, keep_inbox=keep_inbox, budget=self.config.delete_timeout
                )
            except BridgeHTTPError as exc:
                if exc.status != 404:  # 404: already gone on the bridge, which is what we want
                    log.warning(
                        "bridge refused to delete the integration; removing it locally anyway",
                        extra={"instance": name, "bridge_status": exc.status, "reason": exc.detail},
                    )
            except BridgeTransportError as exc:
                log.warning(
                    "bridge unreachable while deleting the integration; removing it locally anyway",
                    extra={"instance": name, "reason": exc.detail},
                )
        await self.repo.delete(name)
        await self.hub.disconnect(name)
        await self.log.purge(name)
        log.info(
            "chatwoot integration deactivated",
            extra={
                "instance": name,
                "bridge_integration_id": row.bridge_integration_id,
                "keep_inbox": keep_inbox,
            },
        )
