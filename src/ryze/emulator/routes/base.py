"""Shared plumbing of the REST handlers: auth, params, lookups and Chatwoot's rescue_from."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .. import errors
from ..auth import Caller, authenticate
from ..domain import Chatwoot, InboxLimitReached, NotAuthorized, SourceNotUnique
from ..params import cast_int, parse
from ..state import Conversation, Inbox, Message, Store

if TYPE_CHECKING:
    from ..app import ChatwootEmulator

log = logging.getLogger("ryze.emulator")


@dataclass
class Ctx:
    emu: ChatwootEmulator
    request: Request
    caller: Caller
    params: dict[str, Any]

    @property
    def store(self) -> Store:
        return self.emu.state

    @property
    def cw(self) -> Chatwoot:
        return self.emu.domain

    @property
    def base_url(self) -> str:
        return self.emu.base_url(self.request)

    def path_int(self, name: str) -> int:
        value = cast_int(self.request.path_params.get(name))
        if value is None:
            raise errors.not_found()
        return value

    def inbox(self, inbox_id: int | None = None) -> Inbox:
        iid = self.path_int("inbox_id") if inbox_id is None else inbox_id
        inbox = self.store.inboxes.get(iid)
        if inbox is None or inbox.account_id != self.caller.account.id:
            raise errors.not_found()
        return inbox

    def conversation(self) -> Conversation:
        conv = self.store.conversation(self.caller.account.id, self.path_int("conversation_id"))
        if conv is None:
            raise errors.not_found()
        inbox = self.store.inboxes.get(conv.inbox_id)
        if inbox is None or not self.caller.can_access(inbox):
            raise errors.forbidden()
        return conv

    def message(self, conv: Conversation) -> Message:
        msg = self.store.messages.get(self.path_int("message_id"))
        if msg is None or msg.conversation_pk != conv.id:
            raise errors.not_found()
        return msg


Handler = Callable[[Ctx], Awaitable[Response]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with authentication and Chatwoot's RequestExceptionHandler."""

    async def run(request: Request) -> Response:
        emu: ChatwootEmulator = request.app.state.emulator
        try:
            # ParamsWrapper parses the body before any before_action: bad JSON is a 400 first.
            params = await parse(request)
            caller = authenticate(emu.state, request)
            return await handler(Ctx(emu, request, caller, params))
        except errors.ApiError as exc:
            return exc.response()
        except errors.RecordInvalid as exc:
            return exc.api_error().response()
        except errors.RecordNotFound:
            return errors.not_found().response()
        except NotAuthorized:
            return errors.forbidden().response()
        except InboxLimitReached:
            return errors.inbox_limit().response()
        except SourceNotUnique:
            return errors.ApiError(422, {"error": "source_id should be unique"}).response()
        except (errors.UnhandledError, errors.RecordNotUnique) as exc:
            log.info("emulated 500: %s", exc)
            return errors.internal_error().response()
        except Exception:
            # Anything else is what Rails shows for an unhandled exception in production.
            log.exception("unhandled error in %s", handler.__name__)
            return errors.internal_error().response()

    run.__name__ = handler.__name__
    return run
