"""The module's public error strings (version A of the docs, em dashes included) and the mapping
from a classified bridge failure to the documented ``set`` error table (PRODUCT.md §3).

The strings are API contract: clients match on them. Keep them byte-for-byte.
"""

from __future__ import annotations

from ryze.protocol import BridgeFailure, FailureKind

GATE_MESSAGE = "integration gateway not configured (set BRIDGE_URL and BRIDGE_TOKEN)"
INSTANCE_NOT_FOUND = "instance not found"
NO_INTEGRATION = "no chatwoot integration for this instance"
NOTHING_TO_DELETE = "no chatwoot integration to delete"
ACTIVATED = "chatwoot integration activated"
DEACTIVATED = "chatwoot integration deactivated"

# Chatwoot answers a valid token without admin rights on the account with this 401 body; the docs
# want it reported as the 403 row, not as a bad token.
NOT_ADMIN_MARKER = "You are not authorized to do this action"

_MAX_DETAIL = 2000


class ModuleError(Exception):
    """A failure with its documented HTTP status and message. Routes turn it into ``ApiError``;
    inline activation reports ``message`` as ``chatwoot.error``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _detail(raw: str) -> str:
    text = " ".join(raw.split()) if raw else ""
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "…"
    return text or "(no detail)"


def gate_closed() -> ModuleError:
    return ModuleError(503, GATE_MESSAGE)


def invalid_body(what: str) -> ModuleError:
    return ModuleError(400, f"invalid body: {what}")


def account_not_found(base_url: str, account_id: int, raw: str) -> ModuleError:
    return ModuleError(
        400,
        f"Chatwoot account or endpoint not found — verify chatwootBaseUrl ({base_url}) and "
        f"chatwootAccountId ({account_id}). Detail: {_detail(raw)}",
    )


def request_invalid(raw: str) -> ModuleError:
    return ModuleError(
        400, f"Chatwoot rejected the request as invalid — verify the inbox settings. Detail: {_detail(raw)}"
    )


def token_rejected(raw: str) -> ModuleError:
    return ModuleError(
        401, f"Chatwoot rejected the API token — verify chatwootApiToken. Detail: {_detail(raw)}"
    )


def access_denied(account_id: int, raw: str) -> ModuleError:
    return ModuleError(
        403,
        "Chatwoot denied the request — verify the API token has admin scope on account "
        f"{account_id}. Detail: {_detail(raw)}",
    )


def chatwoot_unreachable(base_url: str, raw: str) -> ModuleError:
    return ModuleError(
        502, f"Chatwoot unreachable — verify chatwootBaseUrl ({base_url}). Detail: {_detail(raw)}"
    )


def gateway_unreachable(raw: str) -> ModuleError:
    return ModuleError(502, f"integration gateway unreachable. Detail: {_detail(raw)}")


def chatwoot_timeout(base_url: str, raw: str, budget: float = 60.0) -> ModuleError:
    return ModuleError(
        504,
        f"Chatwoot did not answer within {budget:g}s — verify chatwootBaseUrl ({base_url}). "
        f"Detail: {_detail(raw)}",
    )


def _is_inbox_call(endpoint: str | None) -> bool:
    # A 422 on the inbox creation is a payload problem; a 422 anywhere else (profile, account
    # lookup) means the account/endpoint pair is wrong. Without an endpoint we cannot tell, and the
    # plain "invalid" row is the documented meaning of a 422.
    return endpoint is None or "/inboxes" in endpoint


def classify_failure(
    failure: BridgeFailure, *, base_url: str, account_id: int, bridge_status: int, budget: float = 60.0
) -> ModuleError:
    """Word a failure the bridge classified (``BridgeErrorBody``) as the documented ``set`` error."""
    raw = failure.detail or failure.message
    if failure.kind is FailureKind.CHATWOOT_HTTP:
        status = failure.chatwoot_status or 0
        if status == 401 and NOT_ADMIN_MARKER.lower() in raw.lower():
            return access_denied(account_id, raw)
        if status == 401:
            return token_rejected(raw)
        if status == 403:
            return access_denied(account_id, raw)
        if status == 404:
            return account_not_found(base_url, account_id, raw)
        if status == 422:
            if _is_inbox_call(failure.chatwoot_endpoint):
                return request_invalid(raw)
            return account_not_found(base_url, account_id, raw)
        # 5xx, 429 and anything else: Chatwoot is there but not serving us; a gateway error.
        return chatwoot_unreachable(base_url, f"HTTP {status}: {raw}" if status else raw)
    if failure.kind is FailureKind.CHATWOOT_UNREACHABLE:
        return chatwoot_unreachable(base_url, raw)
    if failure.kind is FailureKind.CHATWOOT_TIMEOUT:
        return chatwoot_timeout(base_url, raw, budget)
    if failure.kind is FailureKind.INVALID_REQUEST:
        return invalid_body(failure.message)
    # not_found / unauthorized / internal: the bridge itself failed us.
    return gateway_unreachable(f"bridge answered {bridge_status} ({failure.kind.value}): {raw}")
