"""Bridge tables (SQLite and PostgreSQL). Chatwoot ids are integers, WhatsApp ids strings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


NUL, NUL_REPLACEMENT = "\x00", "\ufffd"


def nul_free(text: str) -> str:
    """The text as it is stored (see :class:`_NulFree`)."""
    return text.replace(NUL, NUL_REPLACEMENT) if NUL in text else text


class _NulFree(TypeDecorator[str]):
    """Text stored without U+0000, which PostgreSQL's ``text``/``varchar`` refuse ("invalid byte
    sequence for encoding UTF8: 0x00") while SQLite keeps it. Texts that come from elsewhere — an
    error RyzeAPI or Chatwoot worded around a message's text, a WhatsApp id, a name — are written
    with U+FFFD in its place on both back ends, so a row never fails to be written for it and both
    databases hold the same text. Comparisons bind through the same type, so a lookup by such a
    value still finds its row. (Webhook bodies are stored as received: valid JSON has no raw NUL,
    only the escape ``\\u0000``, which is kept.) No schema change: the column types are unchanged.
    """

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return nul_free(value) if isinstance(value, str) else value


class NulFreeString(_NulFree):
    impl = String
    cache_ok = True


class NulFreeText(_NulFree):
    impl = Text
    cache_ok = True


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Integration(Base):
    __tablename__ = "bridge_integrations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    instance: Mapped[str] = mapped_column(NulFreeString(255), index=True)
    ryzeapi_url: Mapped[str] = mapped_column(String(2048))
    chatwoot_base_url: Mapped[str] = mapped_column(String(2048))
    chatwoot_account_id: Mapped[int] = mapped_column(BigInteger)
    token_enc: Mapped[str] = mapped_column(Text)  # AES-256-GCM, associated data = id
    inbox_id: Mapped[int] = mapped_column(BigInteger)
    inbox_name: Mapped[str] = mapped_column(NulFreeString(255))
    inbox_secret_enc: Mapped[str] = mapped_column(Text, default="")  # webhook signing secret, encrypted
    path_secret_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the webhook path secret
    sign_messages: Mapped[bool] = mapped_column(Boolean, default=False)
    ignore_groups: Mapped[bool] = mapped_column(Boolean, default=False)
    start_as_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    reopen_resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="paused")
    last_error: Mapped[str] = mapped_column(NulFreeText, default="")
    operator_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # The history import (migration 0003): its window in days (0 = off) and its progress.
    history_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    history_state: Mapped[str] = mapped_column(String(16), default="idle", server_default="idle")
    history_received: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    history_imported: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    history_skipped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    history_duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    history_started_at: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    history_finished_at: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # When this bridge last received one of the inbox's webhooks (unix seconds, 0 = never): where
    # the catch-up sweep starts looking for agent messages whose webhook failed (relay/outbound/catchup.py)
    last_webhook_at: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class Chat(Base):
    """A WhatsApp chat resolved to a Chatwoot contact and (last) conversation."""

    __tablename__ = "bridge_chats"

    integration_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_key: Mapped[str] = mapped_column(NulFreeString(255), primary_key=True)  # the JID used as source_id
    contact_id: Mapped[int] = mapped_column(BigInteger)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # display_id
    conversation_status: Mapped[str] = mapped_column(String(16), default="open")
    updated_at: Mapped[float] = mapped_column(Float)
    # Migration 0003: the contact name the bridge last set (an agent's edit differs from it), and
    # the WhatsApp picture last uploaded as the contact's avatar and when WhatsApp was last asked.
    contact_name: Mapped[str | None] = mapped_column(NulFreeString(255), nullable=True)
    avatar_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    avatar_checked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ChatAlias(Base):
    """Every JID a chat is known by (PN and LID kept together) → its chat_key."""

    __tablename__ = "bridge_chat_aliases"

    integration_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    jid: Mapped[str] = mapped_column(NulFreeString(255), primary_key=True)
    chat_key: Mapped[str] = mapped_column(NulFreeString(255))


class MessageMap(Base):
    """WhatsApp message id (+ part) ↔ Chatwoot message id. The deduplication key of both directions."""

    __tablename__ = "bridge_message_map"
    __table_args__ = (
        UniqueConstraint("integration_id", "wa_message_id", "part", name="uq_bridge_message_map_wa"),
        Index("ix_bridge_message_map_cw", "integration_id", "chatwoot_message_id"),
        Index("ix_bridge_message_map_target", "integration_id", "target_wa_id"),
        # a conversation's messages between two Chatwoot ids (the read marks of an agent's reply)
        Index(
            "ix_bridge_message_map_conversation", "integration_id", "conversation_id", "chatwoot_message_id"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    integration_id: Mapped[str] = mapped_column(String(32))
    wa_message_id: Mapped[str] = mapped_column(NulFreeString(255))
    part: Mapped[int] = mapped_column(Integer, default=0)
    chatwoot_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None: skipped/failed
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chat_jid: Mapped[str] = mapped_column(NulFreeString(255), default="")
    direction: Mapped[str] = mapped_column(String(8))  # in (WA→CW) | out (CW→WA)
    state: Mapped[str] = mapped_column(String(8), default="done")  # done | skipped | failed
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    # What the row is: message | reaction | edit | revoke (migration 0002). A reaction, edit or
    # revoke names the WhatsApp message it acts on; the sender tells whose reaction a change replaces.
    kind: Mapped[str] = mapped_column(String(16), default="message", server_default="message")
    target_wa_id: Mapped[str | None] = mapped_column(NulFreeString(255), nullable=True)
    sender_jid: Mapped[str] = mapped_column(NulFreeString(255), default="", server_default="")
    # The highest receipt applied to the Chatwoot message ("", delivered, read): never downgraded.
    receipt: Mapped[str] = mapped_column(String(16), default="", server_default="")


class InboundFailure(Base):
    """A WhatsApp event given up after bounded retries (poison): visible, and acked."""

    __tablename__ = "bridge_inbound_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    integration_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    wa_message_id: Mapped[str] = mapped_column(NulFreeString(255), default="")
    error: Mapped[str] = mapped_column(NulFreeText)
    created_at: Mapped[float] = mapped_column(Float)


class OutboundJob(Base):
    """A Chatwoot webhook event to turn into link commands (durable queue, Chatwoot → WhatsApp)."""

    __tablename__ = "bridge_outbound_jobs"
    __table_args__ = (
        UniqueConstraint("integration_id", "chatwoot_message_id", "kind", name="uq_bridge_outbound_jobs_msg"),
        Index("ix_bridge_outbound_jobs_pending", "integration_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    integration_id: Mapped[str] = mapped_column(String(32))
    chatwoot_message_id: Mapped[int] = mapped_column(BigInteger)
    conversation_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # send | revoke
    payload: Mapped[str] = mapped_column(Text)  # the webhook body (JSON)
    state: Mapped[str] = mapped_column(String(8), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    parts_done: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    last_error: Mapped[str] = mapped_column(NulFreeText, default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class SelfCheck(Base):
    """The last self-check report of an integration (``protocol.SelfCheckReport`` as JSON)."""

    __tablename__ = "bridge_selfchecks"

    integration_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    report: Mapped[str] = mapped_column(NulFreeText)  # quotes Chatwoot's error texts: NUL-free
    ran_at: Mapped[float] = mapped_column(Float)


class ControlRoomRow(Base):
    """The connection conversation of an integration (``ryze.bridge.control``): its bot contact and
    conversation in Chatwoot, the last connection state posted there (repeats are not posted
    again, across restarts too) and the QR code images still shown (deleted once replaced)."""

    __tablename__ = "bridge_control_rooms"

    integration_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # display_id
    last_state: Mapped[str] = mapped_column(NulFreeText, default="", server_default="")
    qr_message_ids: Mapped[str] = mapped_column(Text, default="", server_default="")  # comma-separated
    updated_at: Mapped[float] = mapped_column(Float)
