"""What can go wrong fetching a URL on someone's behalf, as one exception hierarchy.

Messages are safe to show to the caller who supplied the URL: they never repeat the URL (it may
carry a password), never name the address a host name resolved to, and read the same for every
refused target whether or not something listens there (no port scanning through error texts).
"""

from __future__ import annotations


class OutboundError(Exception):
    """Any failure of the outbound-fetch layer. ``str(exc)`` is the caller-facing reason."""


class InvalidURL(OutboundError):
    """The URL is malformed or unacceptable as written (scheme, credentials, host, port)."""


class TargetRefused(OutboundError):
    """The policy refuses the target (by name or by one of its addresses). Raised before any
    connection is made; ``setting`` names the operator setting that can allow it."""

    def __init__(self, reason: str, *, setting: str) -> None:
        super().__init__(f"{reason}, which the outbound-fetch policy refuses (allow it with {setting})")
        self.reason = reason
        self.setting = setting


class FetchFailed(OutboundError):
    """An allowed target did not give us the body."""


class HTTPStatusError(FetchFailed):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class ConnectFailed(FetchFailed):
    """DNS, connect, TLS or a connection dropped mid-answer. Deliberately one generic text."""

    def __init__(self) -> None:
        super().__init__("connection failed")


class FetchTimeout(FetchFailed):
    def __init__(self) -> None:
        super().__init__("timed out")


class TooLarge(FetchFailed):
    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class TooManyRedirects(FetchFailed):
    def __init__(self, hops: int) -> None:
        super().__init__(f"more than {hops} redirects")


class FetchBusy(OutboundError):
    """Every download slot stayed taken for the whole time-out."""

    def __init__(self) -> None:
        super().__init__("too many downloads in progress")
