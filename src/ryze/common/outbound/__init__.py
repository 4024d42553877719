"""The outbound-fetch policy (server-side request forgery guard) and the downloads made under it.

Every URL Ryze fetches on someone's behalf goes through here: RyzeAPI's ``mediaUrl`` sends and the
Chatwoot attachment URLs the bridge hands it (:class:`Fetcher`), and the bridge's calls to a
``chatwootBaseUrl`` (:class:`PolicyResolver` inside its Chatwoot sessions). See
``docs/security.md`` ("Outbound-fetch policy").
"""

from ryze.common.outbound.errors import (
    ConnectFailed,
    FetchBusy,
    FetchFailed,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    OutboundError,
    TargetRefused,
    TooLarge,
    TooManyRedirects,
)
from ryze.common.outbound.fetch import Fetched, Fetcher, FetchLimits
from ryze.common.outbound.policy import FetchPolicy, refusal_reason
from ryze.common.outbound.resolver import PolicyResolver
from ryze.common.outbound.url import ParsedURL, parse_url

__all__ = [
    "ConnectFailed",
    "FetchBusy",
    "FetchFailed",
    "FetchLimits",
    "FetchPolicy",
    "FetchTimeout",
    "Fetched",
    "Fetcher",
    "HTTPStatusError",
    "InvalidURL",
    "OutboundError",
    "ParsedURL",
    "PolicyResolver",
    "TargetRefused",
    "TooLarge",
    "TooManyRedirects",
    "parse_url",
    "refusal_reason",
]
