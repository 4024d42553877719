"""HTTP client for the bridge's service API (``/v1/integrations/*``), Bearer ``BRIDGE_TOKEN``.

aiohttp with one pooled session per process (PRODUCT.md picks aiohttp for outbound HTTP). Every
call has its own total budget. Failures come out as two exception types the callers word:
``BridgeTransportError`` (the bridge could not be reached or did not answer in time) and
``BridgeHTTPError`` (it answered non-2xx, usually with a classified ``BridgeErrorBody``).
Request bodies carry the Chatwoot token: they are never logged, and errors never include them.
"""

from __future__ import annotations

from typing import Literal

import aiohttp
from pydantic import ValidationError

from ryze.protocol import (
    ACTIVATE_PATH,
    INTEGRATION_PATH,
    ActivateRequest,
    BridgeErrorBody,
    BridgeFailure,
    IntegrationView,
)


class BridgeTransportError(Exception):
    def __init__(self, kind: Literal["unreachable", "timeout"], detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class BridgeHTTPError(Exception):
    def __init__(self, status: int, failure: BridgeFailure | None, body: str) -> None:
        super().__init__(f"bridge answered HTTP {status}")
        self.status = status
        self.failure = failure
        self.body = body

    @property
    def detail(self) -> str:
        if self.failure is not None:
            return self.failure.detail or self.failure.message
        return f"HTTP {self.status}: {self.body[:500]}"


class BridgeClient:
    def __init__(self, base_url: str, token: str) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: aiohttp sessions must be made inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._token}"},
                connector=aiohttp.TCPConnector(limit=100),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        budget: float,
        body: str | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            async with self._client().request(
                method,
                self._base + path,
                data=body,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=budget),
            ) as resp:
                return resp.status, await resp.read()
        except TimeoutError as exc:
            raise BridgeTransportError(
                "timeout", f"no answer from the integration gateway within {budget:g}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise BridgeTransportError("unreachable", str(exc) or type(exc).__name__) from exc
        except OSError as exc:  # e.g. DNS failures surfacing outside aiohttp's wrappers
            raise BridgeTransportError("unreachable", str(exc) or type(exc).__name__) from exc

    @staticmethod
    def _raise_for(status: int, raw: bytes) -> None:
        if 200 <= status < 300:
            return
        text = raw.decode("utf-8", "replace")
        failure: BridgeFailure | None
        try:
            failure = BridgeErrorBody.model_validate_json(raw).error
        except ValidationError:
            failure = None  # not our contract's error body (a proxy's HTML page, say)
        raise BridgeHTTPError(status, failure, text)

    @staticmethod
    def _view(status: int, raw: bytes) -> IntegrationView:
        try:
            return IntegrationView.model_validate_json(raw)
        except ValidationError as exc:
            raise BridgeHTTPError(status, None, f"unexpected answer body: {exc.errors()[0]['msg']}") from exc

    async def activate(self, request: ActivateRequest, *, budget: float) -> IntegrationView:
        # history_days is additive: left out when the client did not give one (bridge-protocol §2.1)
        unset = {"history_days"} if request.history_days is None else None
        body = request.model_dump_json(exclude=unset)
        status, raw = await self._call("POST", ACTIVATE_PATH, budget=budget, body=body)
        self._raise_for(status, raw)
        return self._view(status, raw)

    async def get(self, integration_id: str, *, budget: float) -> IntegrationView:
        path = INTEGRATION_PATH.format(integration_id=integration_id)
        status, raw = await self._call("GET", path, budget=budget)
        self._raise_for(status, raw)
        return self._view(status, raw)

    async def delete(self, integration_id: str, *, keep_inbox: bool, budget: float) -> None:
        path = INTEGRATION_PATH.format(integration_id=integration_id)
        params = {"keepInbox": "true"} if keep_inbox else None
        status, raw = await self._call("DELETE", path, budget=budget, params=params)
        self._raise_for(status, raw)
