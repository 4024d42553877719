"""A stock nginx in front of Chatwoot, as far as request headers go (off by default).

nginx's defaults are ``underscores_in_headers off`` and ``ignore_invalid_headers on``: a request
header whose name contains an underscore is dropped silently before it reaches Rails. So a client
sending ``api_access_token`` gets 401 through such a proxy, although Chatwoot itself accepts it
(``AccessTokenAuthHelper`` reads ``request.headers[:api_access_token]`` and falls back to
``HTTP_API_ACCESS_TOKEN``, the Rack key of the hyphenated ``Api-Access-Token``). Chatwoot's own
nginx sample (``deployment/nginx_chatwoot.conf``) has to set ``underscores_in_headers on``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class NginxHeaderMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.drop_underscore_headers = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proxied = scope["type"] == "http" and not scope["path"].startswith("/_emulator")
        if self.drop_underscore_headers and proxied:
            scope = dict(scope)
            scope["headers"] = [(name, value) for name, value in scope["headers"] if b"_" not in name]
        await self.app(scope, receive, send)
