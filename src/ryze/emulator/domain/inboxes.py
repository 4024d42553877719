"""Inbox create/update/delete (InboxesController, Channel::Api)."""

from __future__ import annotations

import secrets
from typing import Any

from ..errors import RecordInvalid, UnhandledError
from ..params import as_dict, cast_bool
from ..state import (
    JSON,
    Account,
    Inbox,
)
from ..views import INBOX_SETTING_DEFAULTS
from .base import (
    INBOX_SETTING_KEYS,
    WEBHOOK_URL_LIMIT,
    Core,
    InboxLimitReached,
    blank,
)


class InboxOps(Core):
    """InboxesController#create/update/destroy/reset_secret for API channels."""

    def create_inbox(self, account: Account, params: JSON) -> Inbox:
        # validate_limit is a before_action: the 402 comes before any body check.
        if (
            account.inbox_limit is not None
            and len(self.store.account_inboxes(account.id)) >= account.inbox_limit
        ):
            raise InboxLimitReached
        channel = params.get("channel")
        if not isinstance(channel, dict):
            # `params[:channel].permit(...)` on nil: NoMethodError, a 500 in production.
            raise UnhandledError("undefined method `permit' for nil")
        if channel.get("type") != "api":
            # Only API channels are emulated; an unknown type builds no channel at all.
            raise RecordInvalid([("channel", "Channel must exist")])
        settings = dict(INBOX_SETTING_DEFAULTS)
        self._apply_inbox_settings(settings, params)
        name = params.get("name")
        additional = as_dict(channel.get("additional_attributes"))
        webhook_url = str(channel.get("webhook_url") or "")
        self._validate_inbox(name, webhook_url, additional)
        inbox = Inbox(
            id=self.store.next_id("inboxes"),
            account_id=account.id,
            channel_id=self.store.next_id("channel_api"),
            name=str(name),
            webhook_url=webhook_url,
            hmac_mandatory=bool(cast_bool(channel.get("hmac_mandatory"))),
            additional_attributes=additional,
            identifier=secrets.token_urlsafe(18),
            hmac_token=secrets.token_urlsafe(18),
            # Channel::Api `has_secure_token :secret` (v4.13+); none on an older Chatwoot
            secret=secrets.token_urlsafe(24) if self.settings.webhook_signing else "",
            settings=settings,
        )
        self.store.inboxes[inbox.id] = inbox
        return inbox

    def update_inbox(self, inbox: Inbox, params: JSON) -> Inbox:
        settings = dict(inbox.settings)
        self._apply_inbox_settings(settings, params)
        name = params.get("name", inbox.name)
        channel = params.get("channel") if isinstance(params.get("channel"), dict) else {}
        assert isinstance(channel, dict)
        webhook_url = str(channel["webhook_url"] or "") if "webhook_url" in channel else inbox.webhook_url
        additional = (
            as_dict(channel["additional_attributes"])
            if "additional_attributes" in channel
            else inbox.additional_attributes
        )
        self._validate_inbox(name, webhook_url, additional)
        inbox.name = str(name)
        inbox.settings = settings
        inbox.webhook_url = webhook_url
        inbox.additional_attributes = additional
        if "hmac_mandatory" in channel:
            inbox.hmac_mandatory = bool(cast_bool(channel["hmac_mandatory"]))
        return inbox

    def delete_inbox(self, inbox_id: int) -> None:
        """DeleteObjectJob#perform (app/jobs/delete_object_job.rb): the heavy associations first
        (conversations, then contact inboxes), then the inbox. It runs in a job some time after
        the DELETE answered, so until then the inbox works and its webhooks fire; a job for an
        inbox already gone does nothing."""
        if inbox_id not in self.store.inboxes:
            return
        for conv in [c for c in self.store.conversations.values() if c.inbox_id == inbox_id]:
            self.store.remove_conversation(conv)
        for ci in [c for c in self.store.contact_inboxes.values() if c.inbox_id == inbox_id]:
            self.store.remove_contact_inbox(ci)
        del self.store.inboxes[inbox_id]

    def reset_secret(self, inbox: Inbox) -> Inbox:
        """InboxesController#reset_secret → ``channel.reset_secret!`` (v4.13+): a new random secure
        token signs every webhook from now on; the old one stops verifying at once."""
        inbox.secret = secrets.token_urlsafe(24)
        return inbox

    @staticmethod
    def _apply_inbox_settings(settings: JSON, params: JSON) -> None:
        for key in INBOX_SETTING_KEYS:
            if key in params:
                value = params[key]
                if isinstance(INBOX_SETTING_DEFAULTS[key], bool):
                    value = bool(cast_bool(value))
                settings[key] = value

    @staticmethod
    def _validate_inbox(name: Any, webhook_url: str, additional: JSON) -> None:
        errors: list[tuple[str, str]] = []
        if blank(name):
            errors.append(("name", "Name can't be blank"))
        elif len(str(name)) > 255:
            errors.append(("name", "Name is too long (maximum is 255 characters)"))
        if len(webhook_url) > WEBHOOK_URL_LIMIT:
            errors.append(("webhook_url", "Webhook url is too long (maximum is 2048 characters)"))
        window = additional.get("agent_reply_time_window")
        if window is not None and (not isinstance(window, int) or isinstance(window, bool) or window <= 0):
            errors.append(("agent_reply_time_window", "Agent reply time window must be greater than 0"))
        if errors:
            raise RecordInvalid(errors)
