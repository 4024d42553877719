"""RyzeAPI configuration: one object, read from the environment (names without prefix)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ryze.common.outbound.policy import AllowList, split_setting


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    # Secrets (and URLs that may embed a password) stay out of repr(): settings objects end up in
    # tracebacks and debug output.
    database_url: str = Field("sqlite:///./data/ryzeapi.db", repr=False)
    data_dir: Path = Path("./data")
    encryption_key: str = Field("", repr=False)  # empty = key file DATA_DIR/encryption.key (embedded default)
    whatsapp_engine: Literal["neonize", "simulated"] = "neonize"
    # neonize only: proxy for whatsmeow's websocket and media traffic (may embed a password).
    whatsapp_proxy: str = Field("", repr=False)
    log_level: str = "INFO"
    rate_limit_per_minute: int = 100  # 0 disables rate limiting
    rate_limit_create_per_minute: int = 20
    instance_quota: int = 100  # instances per account unless the account row says otherwise
    bridge_url: str = ""
    bridge_token: str = Field("", repr=False)
    bridge_internal_ryzeapi_url: str = ""  # empty = BASE_URL
    max_body_bytes: int = 16 * 1024 * 1024  # base64 media travels in JSON bodies
    # Seconds a request body may take to arrive in full (0 = no limit); past it: 408.
    request_body_timeout: float = 60.0
    # Simulated engine only: seconds after a QR is shown until the simulated phone "scans" it.
    # A negative value disables it (the control API's /scan route then completes pairing).
    simulator_auto_connect_seconds: float = 2.0
    # Simulated engine only: "neonize" sends every simulated event through neonize's protobufs and
    # the neonize engine's translators (tests of the relay on the neonize translation's events).
    simulator_wire: Literal["domain", "neonize"] = "domain"
    # Simulated engine only: a JSON file with the chat history every simulated phone starts with
    # (an array of ``POST /_simulator/{instance}/history`` message items), sent as the initial
    # history sync when an instance pairs. Empty = the phones start with no history.
    simulator_history_file: str = ""
    # Simulated engine only: a file the phone network appends each item it received to (JSON lines),
    # so a test harness sees what was sent across a RyzeAPI crash. Empty = none.
    simulator_outbox_log: str = ""
    # Outbound-fetch policy for mediaUrl sends and Chatwoot attachment URLs (docs/security.md):
    # host names, "*.domain" and IP/CIDR entries, comma separated, that may be fetched although
    # they are loopback, private or otherwise internal. Empty = public addresses only.
    fetch_allow: str = ""
    media_max_bytes: int = Field(100 * 1024 * 1024, gt=0)
    media_download_concurrency: int = Field(4, gt=0)  # downloads at once; more wait their turn
    media_download_timeout: float = Field(60.0, gt=0)  # the whole download, redirects included
    media_read_timeout: float = Field(20.0, gt=0)  # the longest silence while reading a body
    # Voice notes that are not OGG/Opus are converted with this ffmpeg (services/voice.py).
    voice_ffmpeg: str = "ffmpeg"
    voice_convert_timeout: float = Field(60.0, gt=0)
    # How long a bridge send_media keeps trying a data_url that answers 404/5xx: Chatwoot hands
    # out attachment URLs before its storage serves them (direct uploads, S3 eventual consistency).
    bridge_media_retry_seconds: float = Field(30.0, ge=0)

    @field_validator("fetch_allow")
    @classmethod
    def _valid_allow_list(cls, value: str) -> str:
        AllowList.parse(split_setting(value))  # a typo must stop the start, not open or close a hole
        return value

    @property
    def bridge_enabled(self) -> bool:
        return bool(self.bridge_url.strip() and self.bridge_token.strip())

    @property
    def bridge_internal_url(self) -> str:
        return (self.bridge_internal_ryzeapi_url.strip() or self.base_url).rstrip("/")

    @property
    def public_base_url(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def key_file(self) -> Path:
        return self.data_dir / "encryption.key"
