"""An aiohttp resolver that applies the policy to what it resolves, so the connection is made to
an address that was checked (a name cannot resolve to a public address for the check and to
127.0.0.1 for the connection: there is only one lookup, and its answer is what aiohttp dials).

aiohttp does not call the resolver for an IP literal (``TCPConnector._resolve_host`` returns it as
is, and refuses non-canonical IPv4 spellings since 3.12): literals are judged by
:meth:`FetchPolicy.check_url` before the request, on the canonical form the URL is rebuilt with.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from ryze.common.outbound.policy import FetchPolicy


class PolicyResolver(AbstractResolver):
    def __init__(self, policy: FetchPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # A refused name is refused before any DNS query (metadata names, *.localhost).
        self._policy.check_resolved(host, ())
        if self._inner is None:  # created here: ThreadedResolver binds the running loop
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        self._policy.check_resolved(host, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()
