"""Token authentication, account membership and the inbox policy (reference §1-§3).

The order matches Rails' before_actions: authenticate the token first (401), then
load the account (404), then check membership (401).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from . import errors
from .params import cast_int
from .seed import Role
from .state import Account, Inbox, Store, User


@dataclass(frozen=True)
class Caller:
    user: User
    account: Account
    role: Role

    @property
    def admin(self) -> bool:
        return self.role == "administrator"

    def can_access(self, inbox: Inbox) -> bool:
        """InboxPolicy#show and conversation access: admins see all, agents their inboxes."""
        return self.admin or self.user.id in inbox.members

    def require_admin(self) -> None:
        if not self.admin:
            raise errors.forbidden()


def token_of(request: Request) -> str | None:
    # Rack turns both `api_access_token` and `Api-Access-Token` into HTTP_API_ACCESS_TOKEN.
    return request.headers.get("api_access_token") or request.headers.get("api-access-token")


def authenticate(store: Store, request: Request) -> Caller:
    token = token_of(request)
    if token is None:
        raise errors.not_signed_in()
    user = store.users_by_token.get(token)
    if user is None:
        raise errors.invalid_token()
    account_id = cast_int(request.path_params.get("account_id"))
    account = store.accounts.get(account_id) if account_id is not None else None
    if account is None:
        raise errors.not_found()
    role = account.roles.get(user.id)
    if role is None:
        raise errors.not_member()
    return Caller(user=user, account=account, role=role)
