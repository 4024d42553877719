"""Request bodies of the public routes. Strict types: a wrong type is a 400, never coerced.

Unknown keys are ignored (the documented bodies have many optional blocks; clients send subsets).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class CreateInstanceBody(_Body):
    name: str | None = None
    token: str | None = None
    # proxy
    proxyEnabled: bool = False
    proxyHost: str | None = None
    proxyPort: str | None = None
    proxyProtocol: str | None = None
    proxyUsername: str | None = None
    proxyPassword: str | None = None
    # webhook (label "default")
    webhookEnabled: bool = False
    webhookURL: str | None = None
    webhookAuthorization: str | None = None
    webhookByEvents: bool = False
    webhookEvents: list[str] | None = None
    webhookMediaBase64: bool = False
    # websocket
    websocketEnabled: bool = False
    websocketEvents: list[str] | None = None
    websocketMediaBase64: bool = False
    # chatwoot (handed to the instance hooks; the Chatwoot module validates it)
    chatwootEnabled: bool = False
    chatwootBaseUrl: str | None = None
    chatwootAccountId: int | None = None
    chatwootApiToken: str | None = None
    chatwootInboxName: str | None = None
    chatwootSignMessages: bool = False
    chatwootIgnoreGroups: bool = False
    chatwootStartAsPending: bool = False
    chatwootReopenResolved: bool = False
    chatwootHistoryDays: int | None = None  # additive: days of WhatsApp history imported (0 = off)
    # settings
    autoRejectCalls: bool = False
    callRejectMessage: str | None = None
    ignoreGroupMessages: bool = False
    keepOnlineStatus: bool = False
    autoReadMessages: bool = False
    disableHistorySync: bool = True
    ignoreStatus: bool = False
    # s3
    s3Enabled: bool = False
    s3Region: str | None = None
    s3Bucket: str | None = None
    s3AccessKey: str | None = None
    s3SecretKey: str | None = None
    s3Endpoint: str | None = None
    s3PathPrefix: str | None = None


class SendTextBody(_Body):
    number: str
    message: str
    delay: int | None = None
    linkPreview: bool = False
    replyTo: str | None = None
    mention: list[str] | None = None
    source: str | None = None


class SendMediaBody(_Body):
    number: str
    mediaType: Literal["image", "video", "audio", "document"]
    mediaUrl: str | None = None
    mediaBase64: str | None = None
    message: str | None = None  # caption
    mimeType: str | None = None
    fileName: str | None = None
    isVoice: bool | None = None  # audio: defaults to a voice note (PTT) when omitted
    delay: int | None = None
    replyTo: str | None = None
    source: str | None = None
