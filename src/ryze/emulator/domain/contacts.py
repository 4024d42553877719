"""Contacts and ContactInboxBuilder."""

from __future__ import annotations

import secrets
import time
import uuid

from ..errors import RecordInvalid, RecordNotFound, RecordNotUnique
from ..params import Upload, as_dict, cast_bool, cast_int
from ..state import (
    JSON,
    Account,
    Attachment,
    Contact,
    ContactInbox,
    Inbox,
)
from .base import (
    DEVISE_EMAIL,
    E164,
    Core,
    str_or_none,
)

AVATAR_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
AVATAR_MAX_BYTES = 15 * 1024 * 1024


class ContactOps(Core):
    """Contact validations (app/models/contact.rb) and ContactInboxBuilder."""

    def create_contact(
        self, account: Account, params: JSON
    ) -> tuple[Contact, ContactInbox | None, Inbox | None]:
        inbox: Inbox | None = None
        inbox_id = cast_int(params.get("inbox_id"))
        if params.get("inbox_id") not in (None, ""):
            inbox = self.store.inboxes.get(inbox_id) if inbox_id is not None else None
            if inbox is None or inbox.account_id != account.id:
                raise RecordNotFound("Couldn't find Inbox")
        contact = Contact(id=0, account_id=account.id)
        self._assign_contact(contact, params, merge=False)
        self._validate_contact(contact)
        source_id = str_or_none(params.get("source_id"))
        if inbox is not None and source_id is not None:
            self._check_source_free(inbox.id, source_id, contact_id=None)
        contact.id = self.store.next_id("contacts")
        self.store.save_contact(contact)
        ci = self.build_contact_inbox(contact, inbox, source_id) if inbox is not None else None
        return contact, ci, inbox

    def update_contact(self, contact: Contact, params: JSON) -> Contact:
        draft = Contact(**{**contact.__dict__})
        draft.additional_attributes = dict(contact.additional_attributes)
        draft.custom_attributes = dict(contact.custom_attributes)
        self._assign_contact(draft, params, merge=True)
        self._validate_contact(draft)
        avatar = params.get("avatar")
        if isinstance(avatar, Upload):
            draft.avatar = self._avatar(contact, avatar)
        previous = self.store.contact_key_list(contact)
        if contact.avatar is not None and draft.avatar is not contact.avatar:
            self._purge(contact.avatar)
        contact.__dict__.update(draft.__dict__)
        self.store.save_contact(contact, previous)
        return contact

    def _avatar(self, contact: Contact, upload: Upload) -> Attachment:
        """`avatar` (a multipart file, `permitted_params`) assigned to `has_one_attached :avatar`:
        the previous one is replaced. Only images Chatwoot keeps as avatars are accepted (the
        types and size of Avatar::AvatarFromUrlJob, app/jobs/avatar/avatar_from_url_job.rb)."""
        if upload.content_type not in AVATAR_TYPES:
            raise RecordInvalid([("avatar", "Avatar filetype not supported")])
        if len(upload.data) > AVATAR_MAX_BYTES:
            raise RecordInvalid([("avatar", "Avatar size is too big")])
        att = Attachment(
            id=self.store.next_id("attachments"),
            message_id=0,
            account_id=contact.account_id,
            file_type="image",
            filename=upload.filename,
            content_type=upload.content_type,
            data=upload.data,
            signed_id=secrets.token_urlsafe(24),
            key=secrets.token_hex(14),
            created_monotonic=time.monotonic(),
        )
        self.store.attachments_by_signed_id[att.signed_id] = att
        self.store.attachments_by_key[att.key] = att
        return att

    def _purge(self, att: Attachment) -> None:
        self.store.attachments_by_signed_id.pop(att.signed_id, None)
        self.store.attachments_by_key.pop(att.key, None)

    @staticmethod
    def _assign_contact(contact: Contact, params: JSON, *, merge: bool) -> None:
        if "name" in params:
            contact.name = "" if params["name"] is None else str(params["name"])
        if "email" in params:
            email = str_or_none(params["email"])
            contact.email = email.strip().lower() if email else None
        if "phone_number" in params:
            contact.phone_number = str_or_none(params["phone_number"])
        if "identifier" in params:
            contact.identifier = str_or_none(params["identifier"])
        if "blocked" in params:
            contact.blocked = bool(cast_bool(params["blocked"]))
        for key in ("additional_attributes", "custom_attributes"):
            if key in params:
                incoming = as_dict(params[key])
                # ContactsController#update merges both hashes instead of replacing them.
                current: JSON = getattr(contact, key) if merge else {}
                setattr(contact, key, {**current, **incoming})

    def _validate_contact(self, contact: Contact) -> None:
        def taken(attribute: str, value: str) -> bool:
            owner = self.store.contact_with(contact.account_id, attribute, value)
            return owner is not None and owner != contact.id

        errors: list[tuple[str, str]] = []
        if contact.email is not None:
            if taken("email", contact.email):
                errors.append(("email", "Email has already been taken"))
            if not DEVISE_EMAIL.search(contact.email):
                errors.append(("email", "Email Invalid email"))
        if contact.identifier is not None and taken("identifier", contact.identifier):
            errors.append(("identifier", "Identifier has already been taken"))
        if contact.phone_number is not None:
            if taken("phone_number", contact.phone_number):
                errors.append(("phone_number", "Phone number has already been taken"))
            if not E164.search(contact.phone_number):
                errors.append(("phone_number", "Phone number should be in e164 format"))
        if len(contact.name) > 255:
            errors.append(("name", "Name is too long (maximum is 255 characters)"))
        if contact.identifier is not None and len(contact.identifier) > 255:
            errors.append(("identifier", "Identifier is too long (maximum is 255 characters)"))
        if errors:
            raise RecordInvalid(errors)

    def _check_source_free(self, inbox_id: int, source_id: str, contact_id: int | None) -> None:
        ci_id = self.store.contact_inbox_by_source.get((inbox_id, source_id))
        if ci_id is not None and self.store.contact_inboxes[ci_id].contact_id != contact_id:
            # API inboxes are not among the channels whose old row ContactInboxBuilder rewrites.
            raise RecordNotUnique(f"duplicate key value violates unique constraint ({inbox_id}, {source_id})")

    def delete_contact(self, contact: Contact) -> None:
        """ContactsController#destroy: `@contact.destroy!`. Its conversations, contact inboxes and
        messages go with it (app/models/contact.rb, `dependent: :destroy_async`; done at once here,
        as the contact itself 404s at once and nothing reads the orphans meanwhile)."""
        for conv in self.store.conversations_of_contact(contact.id):
            self.store.remove_conversation(conv)
        for ci in self.store.contact_inboxes_of(contact.id):
            self.store.remove_contact_inbox(ci)
        self._drop_contact(contact)

    def merge_contacts(self, base: Contact, mergee: Contact) -> Contact:
        """ContactMergeAction#perform (app/actions/contact_merge_action.rb), one transaction:
        the mergee's conversations, messages (as sender) and contact inboxes move to the base
        contact, the mergee is destroyed, then the base gets the merged attributes (mergee's
        non-blank values deep-merged under the base's: the base wins)."""
        if base.id == mergee.id:
            # Nothing in the action forbids it; destroying the only contact is not worth emulating.
            raise RecordInvalid([("base", "Contacts to merge must differ")])
        for conv in self.store.conversations_of_contact(mergee.id):
            self.store.move_conversation(conv, base.id)
        for msg in self.store.messages.values():
            if msg.sender_type == "Contact" and msg.sender_id == mergee.id:
                msg.sender_id = base.id
        for ci in self.store.contact_inboxes_of(mergee.id):
            self.store.move_contact_inbox(ci, base.id)
        merged = _deep_merge(_mergeable(mergee), _mergeable(base))
        self._drop_contact(mergee)
        previous = self.store.contact_key_list(base)
        for key, value in merged.items():
            setattr(base, key, value)
        self.store.save_contact(base, previous)
        return base

    def _drop_contact(self, contact: Contact) -> None:
        for key in self.store.contact_key_list(contact):
            if self.store.contact_keys.get(key) == contact.id:
                del self.store.contact_keys[key]
        self.store.contacts.pop(contact.id, None)

    def contactable_source_id(self, contact: Contact, inbox: Inbox) -> str:
        """Contacts::ContactableInboxesService#api_contactable_inbox
        (app/services/contacts/contactable_inboxes_service.rb): the source id the dashboard uses
        when an agent starts a conversation in an API inbox — the contact's latest contact inbox
        there, else `SecureRandom.uuid`. So a contact that never wrote through the inbox gets a
        conversation whose source id is a UUID, not a WhatsApp address."""
        mine = [ci for ci in self.store.contact_inboxes_of(contact.id) if ci.inbox_id == inbox.id]
        return mine[-1].source_id if mine else str(uuid.uuid4())

    def build_contact_inbox(
        self, contact: Contact, inbox: Inbox, source_id: str | None, hmac_verified: bool = False
    ) -> ContactInbox:
        """ContactInboxBuilder: reuse (contact, inbox, source_id); a missing source_id is a new UUID."""
        if source_id is None:
            source_id = str(uuid.uuid4())
        ci_id = self.store.contact_inbox_by_source.get((inbox.id, source_id))
        if ci_id is not None:
            existing = self.store.contact_inboxes[ci_id]
            if existing.contact_id == contact.id:
                return existing
            raise RecordNotUnique(f"duplicate key value violates unique constraint ({inbox.id}, {source_id})")
        ci = ContactInbox(
            id=self.store.next_id("contact_inboxes"),
            contact_id=contact.id,
            inbox_id=inbox.id,
            source_id=source_id,
            hmac_verified=hmac_verified,
        )
        self.store.add_contact_inbox(ci)
        return ci


_MERGEABLE = ("identifier", "name", "email", "phone_number", "additional_attributes", "custom_attributes")


def _mergeable(contact: Contact) -> JSON:
    """`attributes.slice(*mergable_attribute_keys).compact_blank`."""
    out: JSON = {}
    for key in _MERGEABLE:
        value = getattr(contact, key)
        if value not in (None, "", {}):
            out[key] = value
    return out


def _deep_merge(under: JSON, over: JSON) -> JSON:
    """ActiveSupport's `Hash#deep_merge`: ``over`` wins, nested hashes merge."""
    out = dict(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
