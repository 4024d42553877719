"""Serving an ASGI app the way both services do: bind first, then start, and fail fast.

uvicorn binds its socket only after the app's lifespan has started. For RyzeAPI that start
restores every stored WhatsApp session in the background, so a busy port used to be noticed with
reconnects under way: uvicorn logged ``Errno 98``, ran the shutdown, and the process then waited on
threads still connecting (Python 3.11 joins the default executor with no time limit) and never
exited. Binding before anything starts makes a busy port a plain start-up failure: a message and
exit code 1 within a second, so a supervisor notices and restarts.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any, NoReturn

import uvicorn

log = logging.getLogger(__name__)

STARTUP_FAILURE = 3  # uvicorn's own code for a lifespan that failed to start


class BindError(RuntimeError):
    """The listen address could not be bound (in use, not ours, or not an address)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def serve(app: Any, *, host: str, port: int, service: str, **options: Any) -> None:
    """Run ``app`` with uvicorn on ``host:port`` until stopped; exit non-zero if it cannot start."""
    try:
        sock = bind(host, port)
    except BindError as exc:
        log.error("start-up failed", extra={"service": service, "error": str(exc)})
        _exit(1)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, **options)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        log.error("start-up failed", extra={"service": service, "error": "the application did not start"})
        _exit(STARTUP_FAILURE)


def _exit(code: int) -> NoReturn:
    # A failed start has nothing left to save, but a thread may still be blocked in a connect that
    # interpreter shutdown would wait for: leave now, after the log lines are out.
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(code)
