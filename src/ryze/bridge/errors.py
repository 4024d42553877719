"""Bridge-internal exceptions."""

from __future__ import annotations

from ryze.protocol import BridgeFailure, FailureKind


class IntegrationBlocked(Exception):
    """Chatwoot refuses the integration as a whole (token revoked, inbox deleted): wait, don't count."""


class BridgeProblem(Exception):
    """A service-API failure, answered as ``BridgeErrorBody`` with ``http_status``."""

    def __init__(self, http_status: int, failure: BridgeFailure) -> None:
        super().__init__(failure.message)
        self.http_status = http_status
        self.failure = failure

    @classmethod
    def not_found(cls, integration_id: str) -> BridgeProblem:
        return cls(
            404, BridgeFailure(kind=FailureKind.NOT_FOUND, message=f"integration {integration_id} not found")
        )
