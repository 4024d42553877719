"""Structured JSON logs with secrets scrubbed.

Every record is one JSON object per line. ``extra={...}`` fields become top-level keys. Values of
keys that look like secrets are replaced, and known secret *values* registered at start-up (the
bridge token, Chatwoot tokens as they pass through) are masked wherever they appear.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

_SECRET_KEYS = ("token", "secret", "password", "authorization", "api_key", "apikey", "access_token")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_registered: set[str] = set()
_lock = threading.Lock()
MASK = "[redacted]"


def register_secret(value: str | None) -> None:
    """Mask this exact value in every later log line (minimum 6 characters, to avoid noise)."""
    if value and len(value) >= 6:
        with _lock:
            _registered.add(value)


def scrub(text: str) -> str:
    for secret in tuple(_registered):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _clean(key: str, value: Any) -> Any:
    if any(marker in key.lower() for marker in _SECRET_KEYS):
        return MASK
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(key, v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                try:
                    out[key] = _clean(key, value)
                except ReferenceError:  # a weakref proxy whose object is gone (websockets' extra)
                    out[key] = None
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(level: str = "INFO", service: str = "ryze") -> None:
    """Install the JSON handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_ryze", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._ryze = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's access log duplicates what our middleware reports and prints query strings
    # (which may hold a ?token=); keep it quiet.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("ryze").info("logging configured", extra={"service": service})
