"""The bridge's configuration: one pydantic-settings object, environment names prefixed ``BRIDGE_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ryze.common.outbound.policy import AllowList, split_setting


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
    # Outbound-fetch policy for chatwootBaseUrl (docs/security.md): host names, "*.domain" and
    # IP/CIDR entries, comma separated, that may be called although they are loopback, private or
    # otherwise internal (a Chatwoot on the same host or network). Empty = public addresses only.
    fetch_allow: str = ""
    chatwoot_timeout: float = 15.0
    # Chatwoot calls of an activation (a `set` waiting): RyzeAPI's documented 60 s budget
    activate_timeout: float = 60.0
    chatwoot_connections_per_host: int = 64
    # Retries (inbound events and outbound jobs): exponential backoff with jitter, bounded attempts
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 60.0
    max_attempts: int = 8
    # WhatsApp media into Chatwoot: files above this size are shown as a text saying so (Chatwoot's
    # own attachment limit, 40 MB by default); a file RyzeAPI answers 404/5xx for is tried this many
    # times, the waits doubling from media_retry_base_seconds, before a text says it is missing.
    media_max_bytes: int = Field(default=40 * 1024 * 1024, gt=0)
    media_attempts: int = Field(default=6, ge=1)
    media_retry_base_seconds: float = Field(default=0.5, ge=0)
    # A live location's later positions: at most one line per share per this many seconds (its
    # last position, when the share stops, always); the ones in between are not shown.
    live_location_interval: float = Field(default=300.0, ge=0)
    # Contact avatars from WhatsApp profile pictures: each chat's picture is looked at most once
    # per avatar_refresh_seconds (0 = never: contacts keep whatever avatar they have), with at
    # most avatar_concurrency lookups at once per integration, in the background.
    avatar_refresh_seconds: float = Field(default=86_400.0, ge=0)
    avatar_concurrency: int = Field(default=2, ge=1)
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
    # Agent messages of one conversation are sent in Chatwoot's creation order (message id) when
    # their webhooks arrive within this many seconds of each other (Sidekiq delivers concurrently).
    outbound_reorder_window: float = 0.5
    # An agent's reply marks the customer's earlier messages read on WhatsApp (blue ticks).
    mark_read_on_reply: bool = True
    # The connection conversation (docs/control-room.md): a bot contact per integration that posts
    # WhatsApp connection changes and QR codes and answers agents' commands. False: none is made.
    control_room: bool = True
    # Catch-up sweep (docs/bridge.md): at start, and after the webhook route failed, agent messages
    # Chatwoot marked failed because their webhook could not be delivered (or whose webhook never
    # came) are listed through Chatwoot's API and sent, looking back at most this many seconds
    # (0 = no sweep) and at most catchup_max_pages pages of conversations (25 each).
    catchup_window: float = Field(default=3600.0, ge=0)
    catchup_max_pages: int = Field(default=8, ge=1, le=100)
    # Webhooks: a signed one is accepted only with an X-Chatwoot-Timestamp within this many seconds
    # of the bridge's clock, either way (0 = no check); a signature that fails makes the bridge
    # re-read the inbox's secret (reset in Chatwoot?) at most once per interval, waiting at most
    # the budget before answering.
    webhook_replay_window: float = Field(default=300.0, ge=0)
    webhook_secret_recheck_interval: float = 30.0
    webhook_secret_recheck_budget: float = 3.0
    # Self-check (docs/selfcheck.md): how long its round trip waits for the test note's webhook.
    selfcheck_round_trip_timeout: float = Field(default=5.0, gt=0, le=60)

    @property
    def job_retention_seconds(self) -> float:
        """How long a finished outbound job is kept: it is the webhook's de-duplication record.

        A replay is accepted until its timestamp is ``webhook_replay_window`` old, and the original
        may itself have arrived ``webhook_replay_window`` after its timestamp: the record must
        outlive twice the window (plus a minute of slack), whatever ``job_retention_days`` says.
        """
        return max(self.job_retention_days * 86400, 2 * self.webhook_replay_window + 60)

    @field_validator("fetch_allow")
    @classmethod
    def _valid_allow_list(cls, value: str) -> str:
        AllowList.parse(split_setting(value))  # a typo must stop the start, not open or close a hole
        return value

    @property
    def key_file(self) -> Path:
        return self.data_dir / "bridge.key"

    def webhook_url(self, integration_id: str, path_secret: str) -> str:
        return f"{self.public_url.rstrip('/')}/v1/chatwoot/webhook/{integration_id}/{path_secret}"
