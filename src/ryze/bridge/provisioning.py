"""Integration lifecycle: activate (create or update in place), show, delete, pause, resume."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import replace

from ryze.bridge.control.selfchecks import SelfChecks
from ryze.bridge.errors import BridgeProblem
from ryze.bridge.relay.history.progress import DEFAULT_HISTORY_DAYS, HISTORY_PROGRESS_FIELDS, history_view
from ryze.bridge.runtime import INBOX_SECRET_AD, IntegrationRuntime
from ryze.bridge.runtimes import IntegrationManager
from ryze.bridge.settings import BridgeSettings
from ryze.bridge.store.repositories import IntegrationRecord, Repositories
from ryze.chatwoot import (
    ChatwootClient,
    ChatwootError,
    ChatwootHTTPError,
    ChatwootNotFound,
    ChatwootRefused,
    ChatwootSessions,
    ChatwootTimeout,
    ChatwootUnreachable,
    error_summary,
)
from ryze.common.crypto import SecretBox
from ryze.common.logging import register_secret
from ryze.common.outbound import OutboundError
from ryze.protocol import (
    ActivateRequest,
    BridgeFailure,
    DeleteResult,
    FailureKind,
    IntegrationStatus,
    IntegrationView,
    is_header_token,
    is_http_url,
)

log = logging.getLogger(__name__)


def hash_path_secret(path_secret: str) -> str:
    return hashlib.sha256(path_secret.encode()).hexdigest()


# The Detail of an error whose body is not Chatwoot's: a base URL can point at any web server, and
# its pages must not come back to the caller through ours.
BODY_NOT_SHOWN = "(the answer is not a Chatwoot error body and is not shown)"


def classify(exc: ChatwootError) -> BridgeProblem:
    """A Chatwoot failure as the bridge reports it: kind, Chatwoot status, endpoint and the error
    text of Chatwoot's body (never another server's body)."""
    if isinstance(exc, ChatwootRefused):
        return _invalid(f"chatwootBaseUrl {exc}")
    if isinstance(exc, ChatwootTimeout):
        return _chatwoot_problem(504, FailureKind.CHATWOOT_TIMEOUT, exc, str(exc))
    if isinstance(exc, ChatwootUnreachable):
        return _chatwoot_problem(502, FailureKind.CHATWOOT_UNREACHABLE, exc, str(exc))
    if isinstance(exc, ChatwootHTTPError):
        message = f"Chatwoot answered {exc.status} to {exc.endpoint}"
        return _chatwoot_problem(502, FailureKind.CHATWOOT_HTTP, exc, message, chatwoot_status=exc.status)
    return _chatwoot_problem(502, FailureKind.CHATWOOT_HTTP, exc, str(exc))


def _chatwoot_problem(
    http_status: int,
    kind: FailureKind,
    exc: ChatwootError,
    message: str,
    *,
    chatwoot_status: int | None = None,
) -> BridgeProblem:
    # Unreachable: the text is aiohttp's about the connection, not something the target sent.
    detail = (
        exc.body if kind is FailureKind.CHATWOOT_UNREACHABLE else error_summary(exc.body) or BODY_NOT_SHOWN
    )
    return BridgeProblem(
        http_status,
        BridgeFailure(
            kind=kind,
            message=message,
            chatwoot_status=chatwoot_status,
            detail=detail,
            chatwoot_endpoint=exc.endpoint or None,
        ),
    )


def _invalid(message: str) -> BridgeProblem:
    return BridgeProblem(400, BridgeFailure(kind=FailureKind.INVALID_REQUEST, message=message))


def _same_base(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


class Provisioner:
    def __init__(
        self,
        *,
        settings: BridgeSettings,
        repos: Repositories,
        sessions: ChatwootSessions,
        box: SecretBox,
        manager: IntegrationManager,
        selfchecks: SelfChecks | None = None,
    ) -> None:
        self.settings = settings
        self.repos = repos
        self.sessions = sessions
        self.box = box
        self.manager = manager
        self.selfchecks = selfchecks

    def _with_checks(self, view: IntegrationView) -> IntegrationView:
        return view if self.selfchecks is None else self.selfchecks.decorate(view)

    def _client(
        self, base_url: str, account_id: int, token: str, *, timeout: float | None = None
    ) -> ChatwootClient:
        return self.sessions.client(
            base_url, account_id, token, timeout=timeout or self.settings.chatwoot_timeout
        )

    def _activation_client(self, req: ActivateRequest) -> ChatwootClient:
        # An activation is a user waiting on `set`, whose documented budget is 60 s: its Chatwoot
        # calls get that budget (BRIDGE_ACTIVATE_TIMEOUT), not the relay's per-call 15 s, so the
        # 504 "did not answer within 60s" comes after 60 s.
        return self._client(
            req.chatwoot_base_url,
            req.chatwoot_account_id,
            req.chatwoot_api_token,
            timeout=self.settings.activate_timeout,
        )

    # ------------------------------------------------------------------ activate

    async def activate(self, req: ActivateRequest) -> IntegrationView:
        req = self._validate(req)
        register_secret(req.chatwoot_api_token)
        if req.replace_integration_id:
            old = await self.repos.integrations.get(req.replace_integration_id)
            if old is not None:
                updated = await self._update_in_place(old, req)
                if updated is not None:
                    return updated
                view = await self._create(req)
                await self._remove(old, keep_inbox=False)
                return view
        return await self._create(req)

    def _validate(self, req: ActivateRequest) -> ActivateRequest:
        """Check ``req``; returns it with the base URL in its canonical form (the one judged)."""
        # Named as the caller of RyzeAPI's set spelled it: RyzeAPI relays the message as is.
        try:
            base = self.sessions.policy.check_url(req.chatwoot_base_url, allow_query=False)
        except OutboundError as exc:
            # The reason only: the URL may carry credentials.
            log.info(
                "activation refused: chatwootBaseUrl", extra={"instance": req.instance, "error": str(exc)}
            )
            raise _invalid(f"chatwootBaseUrl {exc}") from exc
        if req.chatwoot_account_id <= 0:
            raise _invalid("chatwoot_account_id must be a positive integer")
        if not req.chatwoot_api_token.strip():
            raise _invalid("chatwoot_api_token is required")
        if not is_header_token(req.chatwoot_api_token):
            raise _invalid("chatwoot_api_token must be printable ASCII without spaces")
        if not req.inbox_name.strip() or len(req.inbox_name) > 255:
            raise _invalid("inbox_name must be 1 to 255 characters")
        if "\x00" in req.inbox_name or "\x00" in req.instance:
            raise _invalid("inbox_name and instance must not contain U+0000")
        if not req.instance.strip():
            raise _invalid("instance is required")
        if not is_http_url(req.ryzeapi_url):
            raise _invalid("ryzeapi_url must start with http:// or https://")
        return req.model_copy(update={"chatwoot_base_url": base.url.rstrip("/")})

    async def _create(self, req: ActivateRequest) -> IntegrationView:
        integration_id = uuid.uuid4().hex
        path_secret = secrets.token_urlsafe(32)
        client = self._activation_client(req)
        try:
            inbox = await client.create_api_inbox(
                req.inbox_name,
                self.settings.webhook_url(integration_id, path_secret),
                reply_time_window_hours=24,
            )
        except ChatwootError as exc:
            log.info(
                "activation refused by Chatwoot", extra={"instance": req.instance, "error": str(exc)[:300]}
            )
            raise classify(exc) from exc
        now = time.time()
        record = IntegrationRecord(
            id=integration_id,
            instance=req.instance,
            ryzeapi_url=req.ryzeapi_url,
            chatwoot_base_url=req.chatwoot_base_url.rstrip("/"),
            chatwoot_account_id=req.chatwoot_account_id,
            token_enc=self.box.encrypt(req.chatwoot_api_token, integration_id),
            inbox_id=inbox.id,
            inbox_name=inbox.name,
            inbox_secret_enc=self.box.encrypt(inbox.secret, INBOX_SECRET_AD.format(id=integration_id))
            if inbox.secret
            else "",
            path_secret_hash=hash_path_secret(path_secret),
            sign_messages=req.sign_messages,
            ignore_groups=req.ignore_groups,
            start_as_pending=req.start_as_pending,
            reopen_resolved=req.reopen_resolved,
            status=IntegrationStatus.PAUSED.value,
            last_error="",
            operator_paused=False,
            watermark=0,
            created_at=now,
            updated_at=now,
            history_days=DEFAULT_HISTORY_DAYS if req.history_days is None else req.history_days,
        )
        try:
            await self.repos.integrations.insert(record)
        except Exception:
            try:  # do not leave an inbox nobody relays for
                await client.delete_inbox(inbox.id)
            except ChatwootError as cleanup:
                log.warning(
                    "could not remove the inbox of a failed activation",
                    extra={"integration_id": record.id, "inbox_id": inbox.id, "error": str(cleanup)[:300]},
                )
            raise
        runtime = await self.manager.add(record)
        log.info(
            "integration activated",
            extra={"integration_id": integration_id, "instance": req.instance, "inbox_id": inbox.id},
        )
        return await self._answer(runtime, activated=True)

    async def _update_in_place(self, old: IntegrationRecord, req: ActivateRequest) -> IntegrationView | None:
        if (
            not _same_base(old.chatwoot_base_url, req.chatwoot_base_url)
            or old.chatwoot_account_id != req.chatwoot_account_id
        ):
            return None
        client = self._activation_client(req)
        try:
            inbox = await client.show_inbox(old.inbox_id)
            if inbox.name != req.inbox_name:
                inbox = await client.update_inbox(old.inbox_id, name=req.inbox_name)
        except ChatwootNotFound:
            return None  # the inbox is gone: provision a new one
        except ChatwootError as exc:
            raise classify(exc) from exc
        secret_enc = old.inbox_secret_enc
        if inbox.secret:
            secret_enc = self.box.encrypt(inbox.secret, INBOX_SECRET_AD.format(id=old.id))
        record = replace(
            old,
            instance=req.instance,
            ryzeapi_url=req.ryzeapi_url,
            token_enc=self.box.encrypt(req.chatwoot_api_token, old.id),
            inbox_name=inbox.name,
            inbox_secret_enc=secret_enc,
            sign_messages=req.sign_messages,
            ignore_groups=req.ignore_groups,
            start_as_pending=req.start_as_pending,
            reopen_resolved=req.reopen_resolved,
            operator_paused=False,
            updated_at=time.time(),
            history_days=old.history_days if req.history_days is None else req.history_days,
        )
        values = record.values()
        values.pop("id")
        values.pop("watermark")  # the running link owns it
        for key in HISTORY_PROGRESS_FIELDS:  # and the history import its progress
            values.pop(key)
        await self.repos.integrations.update(old.id, **values)
        current = await self.repos.integrations.get(old.id)
        runtime = await self.manager.add(current or record)
        log.info("integration updated in place", extra={"integration_id": old.id, "inbox_id": old.inbox_id})
        return await self._answer(runtime, activated=True)

    async def _answer(self, runtime: IntegrationRuntime, *, activated: bool = False) -> IntegrationView:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.link.ready.wait(), self.settings.activate_link_wait)
        if activated and self.selfchecks is not None:
            self.selfchecks.schedule(runtime)  # in the background: the answer does not wait for it
        view = self._with_checks(runtime.view())
        if (
            not view.link_connected
            and view.status == IntegrationStatus.PAUSED
            and not runtime.record.operator_paused
        ):
            # the link is still being established (RyzeAPI may accept it only once it stored the answer)
            view = view.model_copy(update={"status": IntegrationStatus.ACTIVE, "last_error": ""})
        return view

    # ------------------------------------------------------------------ show / delete / pause / resume

    async def get(self, integration_id: str) -> IntegrationView:
        runtime = self.manager.get(integration_id)
        if runtime is not None:
            return self._with_checks(runtime.view())
        record = await self.repos.integrations.get(integration_id)
        if record is None:
            raise BridgeProblem.not_found(integration_id)
        view = IntegrationView(
            id=record.id,
            instance=record.instance,
            status=IntegrationStatus(record.status),
            last_error=record.last_error,
            inbox_id=record.inbox_id,
            inbox_name=record.inbox_name,
            chatwoot_base_url=record.chatwoot_base_url,
            chatwoot_account_id=record.chatwoot_account_id,
            sign_messages=record.sign_messages,
            ignore_groups=record.ignore_groups,
            start_as_pending=record.start_as_pending,
            reopen_resolved=record.reopen_resolved,
            last_acked_seq=record.watermark,
            history=history_view(record),
        )
        return self._with_checks(view)

    async def delete(self, integration_id: str, *, keep_inbox: bool) -> DeleteResult:
        record = await self.repos.integrations.get(integration_id)
        if record is None:
            raise BridgeProblem.not_found(integration_id)
        return await self._remove(record, keep_inbox=keep_inbox)

    async def _remove(self, record: IntegrationRecord, *, keep_inbox: bool) -> DeleteResult:
        await self.manager.remove(record.id)
        inbox_deleted = False
        if not keep_inbox:
            try:
                token = self.box.decrypt(record.token_enc, record.id)
                await self._client(record.chatwoot_base_url, record.chatwoot_account_id, token).delete_inbox(
                    record.inbox_id
                )
                inbox_deleted = True
            except ChatwootNotFound:
                log.info(
                    "inbox already gone", extra={"integration_id": record.id, "inbox_id": record.inbox_id}
                )
            except Exception as exc:  # the integration is removed anyway; the inbox stays behind
                log.warning(
                    "could not delete the inbox", extra={"integration_id": record.id, "error": str(exc)[:300]}
                )
        await self.repos.integrations.delete(record.id)
        if self.selfchecks is not None:
            self.selfchecks.forget(record.id)
        log.info("integration deleted", extra={"integration_id": record.id, "inbox_deleted": inbox_deleted})
        return DeleteResult(deleted=True, inbox_deleted=inbox_deleted)

    async def pause(self, integration_id: str) -> IntegrationView:
        runtime = await self._runtime(integration_id)
        await runtime.pause()
        return self._with_checks(runtime.view())

    async def selfcheck(self, integration_id: str) -> IntegrationView:
        """Run the self-check now (``POST /v1/integrations/{id}/selfcheck``) and answer with its report."""
        runtime = await self._runtime(integration_id)
        if self.selfchecks is not None:
            await self.selfchecks.run(runtime, "on_demand")
        return self._with_checks(runtime.view())

    async def resume(self, integration_id: str) -> IntegrationView:
        runtime = await self._runtime(integration_id)
        await runtime.resume()
        return await self._answer(runtime)

    async def history_resync(self, integration_id: str) -> str:
        runtime = await self._runtime(integration_id)
        return await runtime.history_resync()()

    async def _runtime(self, integration_id: str) -> IntegrationRuntime:
        runtime = self.manager.get(integration_id)
        if runtime is not None:
            return runtime
        record = await self.repos.integrations.get(integration_id)
        if record is None:
            raise BridgeProblem.not_found(integration_id)
        return await self.manager.add(record)
