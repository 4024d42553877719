"""The bridge's configuration: one pydantic-settings object, environment names prefixed ``BRIDGE_``."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRIDGE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8090
    token: str = ""
    public_url: str = "http://127.0.0.1:8090"
    database_url: str = "sqlite:///./data/bridge.db"
    data_dir: Path = Path("./data")
    encryption_key: str = ""
    log_level: str = "INFO"
    # Seconds a request body (webhook or service API) may take to arrive in full (0 = no limit).
    request_body_timeout: float = 30.0

    # Chatwoot calls
    chatwoot_timeout: float = 15.0
    # Chatwoot calls of an activation (a `set` waiting): RyzeAPI's documented 60 s budget
    activate_timeout: float = 60.0
    chatwoot_connections_per_host: int = 64
    # Retries (inbound events and outbound jobs): exponential backoff with jitter, bounded attempts
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 60.0
    max_attempts: int = 8
    # WS link
    link_backoff_base: float = 0.5
    link_backoff_max: float = 30.0
    link_ping_interval: float = 20.0
    link_max_inflight: int = 512  # events read but not yet acked; beyond this the socket is not read
    command_timeout: float = 30.0
    relink_spread_seconds: float = 20.0  # start-up re-link of every integration is spread over this window
    activate_link_wait: float = 2.0  # how long activate waits for the link's ready frame before answering
    # Outbound worker
    max_chat_lanes: int = 64  # concurrent per-chat lanes per integration
    job_retention_days: float = 7.0  # finished outbound jobs are pruned at start after this long

    @property
    def key_file(self) -> Path:
        return self.data_dir / "bridge.key"

    def webhook_url(self, integration_id: str, path_secret: str) -> str:
        return f"{self.public_url.rstrip('/')}/v1/chatwoot/webhook/{integration_id}/{path_secret}"
