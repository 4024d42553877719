"""How the Chatwoot client reports its calls to whoever measures them (the bridge's metrics).

The client stays free of any metrics library: it accepts an optional :data:`RequestHook` and calls
it once per request with the method, the path *template*, the HTTP status (``None`` when no answer
came: time-out, connection failure) and the elapsed seconds.
"""

from __future__ import annotations

from collections.abc import Callable

RequestHook = Callable[[str, str, int | None, float], None]


def path_template(path: str) -> str:
    """``/api/v1/accounts/5/conversations/12/messages`` → ``/api/v1/accounts/:id/conversations/:id/messages``.

    Every id in the paths the client builds is a numeric segment; replacing them keeps a metric's
    label set small and free of account, conversation or message ids. Tokens never appear in a
    path (they travel in the ``Api-Access-Token`` header), and query strings are passed apart.
    """
    return "/".join(":id" if segment.isdigit() else segment for segment in path.split("/"))
