"""What a converter asks for: a typed *effect* the executor applies against Chatwoot.

Converters are pure (a ``WAMessage`` in, an effect out); they never look anything up. What needs
the mapping table or Chatwoot — the quoted message's Chatwoot id, the reaction a new one replaces,
the revoked message to delete, the bytes of a file — is named here by WhatsApp id or media
reference and resolved by :mod:`ryze.bridge.relay.inbound.executor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# live: a live location's start; live_update / live_end: a later position of it, or its last
MapKind = Literal["message", "reaction", "edit", "revoke", "live", "live_update", "live_end"]


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file of the WhatsApp message, served by RyzeAPI's media route (``MediaInfo.url``)."""

    url: str | None  # None: RyzeAPI offered no URL (the executor says so in a text)
    mimetype: str
    label: str  # what an agent reads: "image", "voice message", "document", ...
    file_name: str
    size: int | None = None  # as WhatsApp announced it, checked before downloading
    voice: bool = False  # a voice note (ptt): Chatwoot shows it as a recorded voice message


@dataclass(frozen=True, slots=True)
class CreateMessage:
    """One Chatwoot message: content, at most one attachment, an optional reply target."""

    content: str
    media: MediaRef | None = None
    # The WhatsApp id this message answers (a quote, or the message an edit corrects): the executor
    # turns it into ``in_reply_to`` when it was relayed, else shows ``quote`` as a quote.
    reply_to: str | None = None
    quote: str | None = None
    kind: MapKind = "message"
    target: str | None = None  # recorded in the mapping (an edit's target)
    attributes: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class React:
    """A reaction to ``target``: replaces the sender's previous one; an empty emoji only removes it."""

    target: str
    emoji: str


@dataclass(frozen=True, slots=True)
class DeleteTarget:
    """A revoke: the target's Chatwoot message is deleted (marked deleted when Chatwoot refuses)."""

    target: str


@dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to show in Chatwoot; the message is mapped as skipped (so a replay skips it too)."""

    reason: str


@dataclass(frozen=True, slots=True)
class LivePosition:
    """A position of a live-location share, tied to the share by chat and sender.

    With no share of the sender running in the conversation it starts one (``started``, a
    message of its own); a later one is a reply to the start (``update``) at most once per the
    bridge's interval, the ones in between only mapped; the last one (``ended``) always is.
    """

    started: str  # the content when this position starts a share
    update: str  # the content of a reply to the share (a later position, or its last)
    ended: bool = False
    reply_to: str | None = None
    quote: str | None = None


Effect = CreateMessage | React | DeleteTarget | LivePosition | Skip
