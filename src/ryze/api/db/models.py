"""ORM tables of RyzeAPI's core (migration ``0001_core``).

The core does not know its modules: a module's tables share this ``Base`` and register on it when
the module imports its own models (the Chatwoot module: ``ryze/api/chatwoot/models.py``, imported
by the module's code that ``install`` builds). The schema itself comes from the Alembic revisions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class AccountRow(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of TokenAccount
    instance_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None = INSTANCE_QUOTA
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InstanceRow(Base):
    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of TokenInstance
    # The token itself, AES-256-GCM (row id as associated data): event envelopes carry it.
    token_enc: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="disconnected")
    number_jid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    profile_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The documented creation blocks (proxy, webhook, websocket, settings, s3), secrets encrypted.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MessageRow(Base):
    """Every message an instance sent or received (for ``replyTo``, media downloads and lookups)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("instance_id", "wa_id", name="uq_messages_instance_wa_id"),
        Index("ix_messages_instance_chat_ts", "instance_id", "chat_jid", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    wa_id: Mapped[str] = mapped_column(String(128))
    chat_jid: Mapped[str] = mapped_column(String(128))
    sender_jid: Mapped[str] = mapped_column(String(128))
    from_me: Mapped[bool] = mapped_column(Boolean)
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text: Mapped[str] = mapped_column(Text, default="")
    target_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    media_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    media_mimetype: Mapped[str | None] = mapped_column(String(200), nullable=True)
    media_file_name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    media_handle: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the WAMessage as published
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
