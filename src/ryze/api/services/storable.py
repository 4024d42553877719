"""Text made storable on both databases: U+0000 is replaced by U+FFFD.

PostgreSQL cannot hold the NUL character in ``text`` or ``jsonb`` (asyncpg reports "invalid byte
sequence for encoding UTF8: 0x00"); SQLite can. WhatsApp carries it, and so does a JSON body
(``"\\u0000"``). Replacing it (rather than dropping it) keeps lengths and shows the reader that
something was there; both databases then store, and every subscriber receives, the same text.
What goes to WhatsApp is the text as given: only the stored copy and the event are changed.
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"
REPLACEMENT = "\ufffd"


def storable_text(value: str) -> str:
    return value.replace(NUL, REPLACEMENT) if NUL in value else value


def storable_key(value: str) -> bool:
    """False for a lookup key that cannot be stored, so cannot match (and PostgreSQL would refuse
    the query): the caller answers "not found" without asking the database."""
    return NUL not in value


def storable(value: Any) -> Any:
    """``value`` with U+0000 replaced in every string it holds (dict keys and values, lists)."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(storable(v) for v in value)
    return value
